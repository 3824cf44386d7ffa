"""The durable mempool: admission rules, per-sender nonce tracking, FIFO selection.

Admission (:meth:`Mempool.submit`) checks, in order: structure and size, chain id, signature,
nonce, capacity; then persists the transaction (``ChainStore.pool_put``) *before* returning its
hash, so an acknowledged transaction survives a ``kill -9`` (and, with ``sync_writes``, an OS
crash). Nonces must be exactly the next one
for the sender (committed nonce + pending count): lower is a replay, higher is a gap; both are
rejected. Resubmitting an identical pending transaction returns its hash again (idempotent).

:meth:`Mempool.submit_many` admits a list under the same rules, item by item (a sender's
transactions in one list may follow each other), and persists every accepted one in **one**
write batch before returning: one RocksDB write (WAL append) instead of one per transaction.

On the event loop, :meth:`Mempool.asubmit_tx` and :meth:`Mempool.asubmit_many` admit at once
(the transactions are pending, a sender's next nonce counts them) and wait for the write without
blocking the loop, so concurrent submissions share one fsync (group commit,
:mod:`node.state.writer`). Their callers acknowledge only after they return. If the write fails
the transactions are forgotten again and the call raises StorageError (-32020). The synchronous
:meth:`submit_tx` / :meth:`submit_many` block until durable (tests and tools); they refuse
(RuntimeError, nothing admitted) a transaction whose write an event-loop call started.

Sequence numbers are never reused: they continue from the store's ``next_seq`` after a restart,
so the acknowledgement journal can name each acknowledged transaction by its number.

Threading: call every method from one thread (the event loop). The block producer executes on
another thread but hands results back to the loop before calling :meth:`remove`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from node.core import keys
from node.core.codec import unpack_u64
from node.core.errors import InvalidTransaction, LimitExceeded, NodeError, StorageError
from node.core.tx import Transaction
from node.state.chain_store import ChainStore

#: A write's completion: a concurrent future (blocking callers) or an asyncio one (the loop).
Durable = Future[None] | asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class PoolEntry:
    seq: int
    tx: Transaction


class Mempool:
    def __init__(self, store: ChainStore, *, chain_id: int, max_txs: int) -> None:
        self.store = store
        self.chain_id = chain_id
        self.max_txs = max_txs
        self._entries: dict[int, PoolEntry] = {}  # seq -> entry, in arrival order
        self._by_hash: dict[bytes, PoolEntry] = {}
        self._next_nonce: dict[bytes, int] = {}  # sender -> next acceptable nonce (if pending)
        self._pending_count: dict[bytes, int] = {}
        self._inflight: dict[bytes, Durable] = {}  # tx hash -> its write, until durable
        self._seq = 0

    def __len__(self) -> int:
        return len(self._entries)

    def committed_nonce(self, sender: bytes) -> int:
        raw = self.store.get(keys.nonce_key(sender))
        return unpack_u64(raw)

    def next_nonce(self, sender: bytes) -> int:
        """The nonce the sender's next transaction must carry."""
        n = self._next_nonce.get(sender)
        return n if n is not None else self.committed_nonce(sender)

    def get(self, tx_hash: bytes) -> Transaction | None:
        e = self._by_hash.get(tx_hash)
        return e.tx if e else None

    def restore(self) -> int:
        """Reload persisted pending transactions after a restart; returns how many."""
        self._seq = max(self._seq, self.store.next_seq())
        for seq, raw in self.store.pool_load():
            tx = Transaction.decode(raw)
            self._seq = max(self._seq, seq + 1)
            if tx.nonce < self.next_nonce(tx.sender) or tx.hash in self._by_hash:
                # Already executed (cannot happen with atomic commits) or duplicated: drop it.
                self.store.pool_delete([seq])
                continue
            self._index(PoolEntry(seq, tx))
        return len(self._entries)

    def submit(self, raw: bytes) -> bytes:
        """Admit a raw signed transaction; returns its hash. Raises
        InvalidTransaction/LimitExceeded."""
        return self.submit_tx(Transaction.decode(raw))

    def submit_tx(self, tx: Transaction) -> bytes:
        """Admit ``tx``; returns its hash once it is durable (blocking)."""
        out = self.submit_many([tx])[0]
        if isinstance(out, NodeError):
            raise out
        return out

    async def asubmit_tx(self, tx: Transaction) -> bytes:
        """:meth:`submit_tx` for the event loop: returns once durable, without blocking it."""
        out = (await self.asubmit_many([tx]))[0]
        if isinstance(out, NodeError):
            raise out
        return out

    def submit_many(
        self, txs: Sequence[Transaction | NodeError], *, signatures_checked: bool = False
    ) -> list[bytes | NodeError]:
        """Admit ``txs`` in order; per item its hash or the error that refused it (items given
        as errors, e.g. undecodable ones, are passed through). Every accepted transaction is
        persisted in one atomic write batch before this returns (blocking); if that write
        fails, it raises and nothing was admitted.

        ``signatures_checked=True`` skips signature verification: only for transactions whose
        ``verify_signature()`` the caller has already run (off the event loop, say)."""
        out, accepted, durable, others = self._admit(txs, signatures_checked)
        for f in others:
            f.exception()  # (blocks until that write is done)
        self._settle(accepted, durable, others)
        return out

    async def asubmit_many(
        self, txs: Sequence[Transaction | NodeError], *, signatures_checked: bool = False
    ) -> list[bytes | NodeError]:
        """:meth:`submit_many` for the event loop: admitted at once, returns once durable
        without blocking the loop (concurrent calls share the fsync)."""
        out, accepted, durable, others = self._admit(txs, signatures_checked, aio=True)
        try:
            for f in (durable, *others):
                if not f.done():
                    await asyncio.shield(f if isinstance(f, asyncio.Future)
                                         else asyncio.wrap_future(f))
        except asyncio.CancelledError:
            # The write goes on; settle its entries when it ends (a failed one is forgotten).
            if isinstance(durable, asyncio.Future):
                durable.add_done_callback(lambda f: self._written(accepted, f))
            else:
                loop = asyncio.get_running_loop()
                durable.add_done_callback(
                    lambda f: loop.call_soon_threadsafe(self._written, accepted, f)
                )
            raise
        except Exception:  # a failed write: _settle below forgets its entries and raises
            pass
        self._settle(accepted, durable, others)
        return out

    def _settle(
        self, accepted: list[PoolEntry], durable: Durable, others: list[Durable]
    ) -> None:
        """Raise the write's error (after forgetting its entries), if it failed; also when a
        write this call's already-pending items wait for failed."""
        self._written(accepted, durable)
        err = durable.exception()
        for f in others:
            err = err or f.exception()
        if err is not None:
            raise err if isinstance(err, StorageError) else StorageError(str(err))

    def _written(self, accepted: list[PoolEntry], durable: Durable) -> None:
        """The write of ``accepted`` ended: no longer in flight; forgotten if it failed."""
        for a in accepted:
            if self._inflight.get(a.tx.hash) is durable:
                del self._inflight[a.tx.hash]
        if durable.exception() is not None:
            self._forget(accepted)

    def _admit(
        self, txs: Sequence[Transaction | NodeError], signatures_checked: bool, aio: bool = False
    ) -> tuple[list[bytes | NodeError], list[PoolEntry], Durable, list[Durable]]:
        """Check and index ``txs``, starting the write of the accepted ones. Returns the results,
        the accepted entries, their write, and the writes still in flight of items that were
        already pending (an identical resubmission is acknowledged once durable too)."""
        out: list[bytes | NodeError] = []
        others: list[Durable] = []
        accepted: list[PoolEntry] = []
        hashes: set[bytes] = set()
        nxt: dict[bytes, int] = {}  # sender -> next nonce, counting this call's accepted items
        seq = self._seq
        for tx in txs:
            if isinstance(tx, NodeError):
                out.append(tx)
                continue
            if tx.hash in hashes:  # twice in this call: admitted once, the same hash twice
                out.append(tx.hash)
                continue
            try:
                pending = len(self._entries) + len(accepted)
                if not self._check(tx, nxt.get(tx.sender), pending, not signatures_checked):
                    accepted.append(PoolEntry(seq, tx))
                    hashes.add(tx.hash)
                    nxt[tx.sender] = tx.nonce + 1
                    seq += 1
                elif (f := self._inflight.get(tx.hash)) is not None:
                    if not aio and isinstance(f, asyncio.Future) and not f.done():
                        # a blocking call cannot wait for the loop's write (it would deadlock
                        # the loop); refused before anything of this call is admitted
                        raise RuntimeError(
                            f"submit_many: transaction {tx.hash.hex()} is being written by an "
                            "event-loop submission; call asubmit_many from the loop instead")
                    others.append(f)
                out.append(tx.hash)
            except (InvalidTransaction, LimitExceeded) as e:
                out.append(e)
        # durable before the acknowledgement, all or nothing
        entries = [(a.seq, a.tx.raw) for a in accepted]
        durable: Durable = (self.store.pool_put_many_aio(entries) if aio
                            else self.store.pool_put_many_async(entries))
        if accepted and not (durable.done() and durable.exception() is not None):
            self._seq = seq
            for a in accepted:
                self._index(a)
                if not durable.done():
                    self._inflight[a.tx.hash] = durable
        return out, accepted, durable, others

    def _check(
        self, tx: Transaction, expected: int | None, pending: int, verify: bool = True
    ) -> bool:
        """Admission rules for ``tx`` given the sender's ``expected`` nonce (None: from the pool
        and committed state) and the ``pending`` count; True when the transaction is already
        pending (nothing to do). Raises InvalidTransaction or LimitExceeded."""
        if tx.chain_id != self.chain_id:
            raise InvalidTransaction("wrong_chain", f"chain_id {tx.chain_id} != {self.chain_id}")
        if tx.hash in self._by_hash:
            return True
        if verify:
            tx.verify_signature()
        if expected is None:
            expected = self.next_nonce(tx.sender)
        if tx.nonce < expected:
            raise InvalidTransaction(
                "nonce_too_low", f"nonce {tx.nonce} already used (next is {expected}): replay"
            )
        if tx.nonce > expected:
            raise InvalidTransaction(
                "nonce_gap", f"nonce {tx.nonce} leaves a gap (next is {expected})"
            )
        if pending >= self.max_txs:
            raise LimitExceeded(f"mempool full ({self.max_txs} transactions)")
        return False

    def _index(self, e: PoolEntry) -> None:
        self._entries[e.seq] = e
        self._by_hash[e.tx.hash] = e
        s = e.tx.sender
        self._next_nonce[s] = e.tx.nonce + 1
        self._pending_count[s] = self._pending_count.get(s, 0) + 1

    def pending(self, limit: int, max_bytes: int | None = None) -> list[PoolEntry]:
        """The oldest entries, at most ``limit`` of them and at most ``max_bytes`` of raw
        transactions (per-sender nonce order is arrival order, so selection stops at the first
        entry that does not fit rather than skipping it)."""
        out: list[PoolEntry] = []
        size = 0
        for e in self._entries.values():
            if len(out) >= limit:
                break
            if max_bytes is not None:
                size += len(e.tx.raw)
                if size > max_bytes and out:
                    break
            out.append(e)
        return out

    def _forget(self, entries: list[PoolEntry]) -> None:
        """Un-admit entries whose write failed (any order; a sender's next nonce is recomputed
        from what stays pending)."""
        senders = set()
        for e in entries:
            if self._entries.pop(e.seq, None) is not None:
                del self._by_hash[e.tx.hash]
                senders.add(e.tx.sender)
        for s in senders:
            left = [e.tx.nonce for e in self._entries.values() if e.tx.sender == s]
            if left:
                self._next_nonce[s] = max(left) + 1
                self._pending_count[s] = len(left)
            else:
                self._next_nonce.pop(s, None)
                self._pending_count.pop(s, None)

    def remove(self, entries: list[PoolEntry]) -> None:
        """Forget entries that a committed block included (their store rows are already gone)."""
        for e in entries:
            if self._entries.pop(e.seq, None) is None:
                continue
            del self._by_hash[e.tx.hash]
            s = e.tx.sender
            left = self._pending_count[s] - 1
            if left:
                self._pending_count[s] = left
            else:
                del self._pending_count[s]
                del self._next_nonce[s]
