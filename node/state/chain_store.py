"""The chain store: state, blocks, receipts and the durable mempool over one :class:`KV`.

Layout (one keyspace, one-byte namespace prefixes)::

    S + state key            -> value            (the state; see node.core.keys)
    P + seq(u64)             -> raw tx           (durable mempool, in arrival order)
    H + number(u64)          -> header encoding
    K + block hash           -> number(u64)
    L + number(u64)          -> concatenated 32-byte tx hashes of the block
    T + tx hash              -> number(u64) + index(u32) + raw tx
    R + tx hash              -> receipt encoding
    G + tx hash              -> cumulative gas used(u64) + first log index(u32) in its block
    E + number(u64)          -> execution digest of the block (node.core.block.execution_digest)
    B + number(u64)          -> block execution stats (JSON; measurements, not consensus data)
    M + name                 -> metadata (head, state accumulator, next mempool sequence number,
                                chain parameters)
    X + key                  -> auxiliary caches outside consensus (e.g. compiled contracts)

State root (documented commitment): ``acc = sum(int(SHA3(u32(len k) + k + v)) for every live
(k, v)) mod 2**256`` and ``state_root = SHA3(b"dubhe-state-root-v1" + acc.to_bytes(32))``. It is
identical for identical state whatever the write order, and is updated incrementally per block
(subtract the old entry's hash, add the new one's). It is an additive multiset hash: it commits to
the state but gives no inclusion proofs, and is not meant to resist an adversary choosing keys.
Known answers another implementation can check itself against: docs/state-root.md.

``commit_block`` writes the header, receipts, tx locations, state changes, accumulator, head and
the removal of the included mempool entries in **one** atomic batch: after a crash a transaction
is either in a block or still pending, never both and never lost. It also stores what readers
would otherwise recompute from the whole block: each receipt's cumulative gas and first log
index (``G``), so one receipt costs a constant number of reads (:meth:`ChainStore.stored_receipt`)
and a block's receipts a number linear in its size (:meth:`ChainStore.block_receipts`), and the
block's execution digest (``E``). Blocks committed before ``G``/``E`` existed are still served:
their positions are recomputed from the earlier receipts and their digest from the receipts.

Durability: every write goes through a :mod:`~node.state.writer` (inline, or fsync'd with group
commit) and, on RocksDB, records what it acknowledges or announces in the journal
(:mod:`node.state.journal`): each mempool write an ``ACK`` (its sequence numbers and transaction
hashes; the batch also stores the next sequence number, ``Mseq``, so sequence numbers are never
reused and the database's watermark can be compared with the journal's), each block a ``BLOCK``.
Methods that write return once the write is durable; :meth:`ChainStore.pool_put_many_async`
returns a future instead, for the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

from node.core.block import BlockHeader, execution_digest
from node.core.codec import U64, sha3
from node.core.execution import Receipt
from node.state.journal import Journal, Record, ack_record, block_record
from node.state.kv import KV, MemoryKV
from node.state.writer import GroupCommitWriter, InlineWriter, StorageStats, Writer

log = logging.getLogger("node.storage")

_LOC = struct.Struct(">QI")
_POS = struct.Struct(">QI")  # cumulative gas used, first log index
_MOD = 2**256

NS_STATE = b"S"
NS_POOL = b"P"
NS_HEADER = b"H"
NS_HASH = b"K"
NS_BLOCK_TXS = b"L"
NS_TX = b"T"
NS_RECEIPT = b"R"
NS_RECEIPT_POS = b"G"
NS_DIGEST = b"E"
NS_STATS = b"B"
META_HEAD = b"Mhead"
META_ACC = b"Macc"
META_SEQ = b"Mseq"
META_PARAM = b"Mparam/"
NS_AUX = b"X"


def entry_hash(key: bytes, value: bytes) -> int:
    return int.from_bytes(sha3(struct.pack(">I", len(key)) + key + value), "big")


def root_of(acc: int) -> bytes:
    return sha3(b"dubhe-state-root-v1" + acc.to_bytes(32, "big"))


@dataclass(frozen=True, slots=True)
class TxLocation:
    number: int
    index: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    """A receipt with what serving it needs: the raw transaction (sender, target), the gas used
    by this and every earlier transaction of its block, and the block-wide index of its first
    event (Ethereum's ``cumulativeGasUsed`` and ``logIndex``)."""

    receipt: Receipt
    raw_tx: bytes
    cumulative_gas: int
    first_log_index: int


class ChainStore:
    """Blocks, receipts, state and the durable mempool. Thread-safe for one writer, many readers.

    ``get`` implements :class:`~node.core.execution.StateReader` over *committed* state.
    ``sync_writes`` selects the group-commit writer (fsync'd); ``journal`` (RocksDB only) is the
    open acknowledgement journal, ``stats`` the counters ``/metrics`` shows.
    """

    def __init__(
        self,
        kv: KV,
        *,
        sync_writes: bool = False,
        journal: Journal | None = None,
        stats: StorageStats | None = None,
    ) -> None:
        self.kv = kv
        self.sync = sync_writes
        self.journal = journal
        self.stats = stats or StorageStats()
        self.writer: Writer = (
            GroupCommitWriter(kv, journal, stats=self.stats)
            if sync_writes
            else InlineWriter(kv, journal)
        )
        self._lock = threading.Lock()
        self._rotating = False
        self._rotation: threading.Thread | None = None
        raw_acc = self.kv.get(META_ACC)
        self._acc = int.from_bytes(raw_acc, "big") if raw_acc else 0
        raw_head = self.kv.get(META_HEAD)
        self._head: BlockHeader | None = None
        if raw_head is not None:
            self._head = self.header(U64.unpack(raw_head)[0])

    # -- state ----------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        return self.kv.get(NS_STATE + key)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        return self.kv.get_many([NS_STATE + k for k in keys])

    def state_root(self) -> bytes:
        return root_of(self._acc)

    def next_accumulator(self, writes: Mapping[bytes, bytes | None]) -> int:
        """The accumulator after applying ``writes`` to committed state (nothing is written)."""
        acc = self._acc
        ks = list(writes)
        olds = self.get_many(ks)
        for k, old in zip(ks, olds, strict=True):
            new = writes[k]
            if old is not None:
                acc -= entry_hash(k, old)
            if new is not None:
                acc += entry_hash(k, new)
        return acc % _MOD

    def iter_state(self, prefix: bytes = b"") -> Iterable[tuple[bytes, bytes]]:
        for k, v in self.kv.iter_prefix(NS_STATE + prefix):
            yield k[1:], v

    # -- blocks ---------------------------------------------------------------------------
    @property
    def head(self) -> BlockHeader | None:
        return self._head

    def header(self, number: int) -> BlockHeader | None:
        raw = self.kv.get(NS_HEADER + U64.pack(number))
        return BlockHeader.decode(raw) if raw is not None else None

    def number_of(self, block_hash: bytes) -> int | None:
        raw = self.kv.get(NS_HASH + block_hash)
        return int(U64.unpack(raw)[0]) if raw is not None else None

    def block_tx_hashes(self, number: int) -> list[bytes]:
        raw = self.kv.get(NS_BLOCK_TXS + U64.pack(number)) or b""
        return [raw[i : i + 32] for i in range(0, len(raw), 32)]

    def block_stats(self, number: int) -> bytes | None:
        """The JSON execution stats of a block (strategy, efficiency, conflicts...), if recorded."""
        return self.kv.get(NS_STATS + U64.pack(number))

    def tx_location(self, tx_hash: bytes) -> TxLocation | None:
        raw = self.kv.get(NS_TX + tx_hash)
        if raw is None:
            return None
        number, index = _LOC.unpack_from(raw)
        return TxLocation(number, index, raw[_LOC.size :])

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        raw = self.kv.get(NS_RECEIPT + tx_hash)
        return Receipt.decode(raw) if raw is not None else None

    def stored_receipt(self, tx_hash: bytes) -> StoredReceipt | None:
        """The receipt of ``tx_hash`` with its position data: three keys read, whatever the
        size of its block (plus, for blocks committed before positions were stored, the
        earlier receipts of the block)."""
        raw_rc, raw_pos, raw_loc = self.kv.get_many(
            [NS_RECEIPT + tx_hash, NS_RECEIPT_POS + tx_hash, NS_TX + tx_hash]
        )
        if raw_rc is None or raw_loc is None:
            return None
        rc = Receipt.decode(raw_rc)
        raw_tx = raw_loc[_LOC.size :]
        if raw_pos is not None:
            cumulative, first_log = _POS.unpack(raw_pos)
            return StoredReceipt(rc, raw_tx, cumulative, first_log)
        cumulative, first_log = 0, 0  # legacy block: add up the receipts before this one
        earlier = self.block_tx_hashes(rc.block_number)[: rc.index]
        for raw in self.kv.get_many([NS_RECEIPT + h for h in earlier]):
            if raw is not None:
                prior = Receipt.decode(raw)
                cumulative += prior.gas_used
                first_log += len(prior.events)
        return StoredReceipt(rc, raw_tx, cumulative + rc.gas_used, first_log)

    def block_receipts(self, number: int) -> list[StoredReceipt] | None:
        """Every receipt of block ``number`` in block order (None when there is no such block):
        ``2 + 2 x transactions`` keys read."""
        raw_hashes = self.kv.get(NS_BLOCK_TXS + U64.pack(number))
        if raw_hashes is None:
            return None
        hashes = [raw_hashes[i : i + 32] for i in range(0, len(raw_hashes), 32)]
        raws = self.kv.get_many(
            [NS_RECEIPT + h for h in hashes] + [NS_TX + h for h in hashes]
        )
        n = len(hashes)
        out: list[StoredReceipt] = []
        cumulative, first_log = 0, 0
        for raw_rc, raw_loc in zip(raws[:n], raws[n:], strict=True):
            if raw_rc is None or raw_loc is None:
                raise LookupError(f"block {number}: a receipt or transaction is missing")
            rc = Receipt.decode(raw_rc)
            cumulative += rc.gas_used
            out.append(StoredReceipt(rc, raw_loc[_LOC.size :], cumulative, first_log))
            first_log += len(rc.events)
        return out

    def execution_digest(self, number: int) -> bytes | None:
        """The execution digest of block ``number`` (None when there is no such block)."""
        raw = self.kv.get(NS_DIGEST + U64.pack(number))
        if raw is not None:
            return raw
        receipts = self.block_receipts(number)  # a block committed before digests were stored
        return None if receipts is None else execution_digest(r.receipt for r in receipts)

    def commit_block(
        self,
        header: BlockHeader,
        txs: list[tuple[bytes, bytes]],
        receipts: list[Receipt],
        writes: Mapping[bytes, bytes | None],
        acc: int,
        pool_seqs: Iterable[int],
        stats: bytes | None = None,
    ) -> None:
        """Atomically commit a block. ``txs`` is ``[(tx_hash, raw)]`` in block order; ``acc`` is
        :meth:`next_accumulator` of ``writes`` (its root must be ``header.state_root``);
        ``pool_seqs`` are the mempool entries the block consumes."""
        if root_of(acc) != header.state_root:
            raise ValueError("header.state_root does not match the accumulator")
        ops: dict[bytes, bytes | None] = {}
        num = U64.pack(header.number)
        ops[NS_HEADER + num] = header.encode()
        ops[NS_HASH + header.hash] = num
        ops[NS_BLOCK_TXS + num] = b"".join(h for h, _ in txs)
        ops[NS_DIGEST + num] = execution_digest(receipts)
        if stats is not None:
            ops[NS_STATS + num] = stats
        cumulative, first_log = 0, 0
        for i, ((h, raw), rc) in enumerate(zip(txs, receipts, strict=True)):
            ops[NS_TX + h] = _LOC.pack(header.number, i) + raw
            ops[NS_RECEIPT + h] = rc.encode()
            cumulative += rc.gas_used
            ops[NS_RECEIPT_POS + h] = _POS.pack(cumulative, first_log)
            first_log += len(rc.events)
        for k, v in writes.items():
            ops[NS_STATE + k] = v
        for seq in pool_seqs:
            ops[NS_POOL + U64.pack(seq)] = None
        ops[META_ACC] = acc.to_bytes(32, "big")
        ops[META_HEAD] = num
        with self._lock:
            self._write(ops, [block_record(header.number, header.hash, (h for h, _ in txs))])
            self._acc = acc
            self._head = header

    # -- chain parameters and auxiliary data ----------------------------------------------
    def param(self, name: str) -> bytes | None:
        """A chain parameter fixed at genesis (e.g. the VM the chain was created with)."""
        return self.kv.get(META_PARAM + name.encode())

    def set_param(self, name: str, value: bytes) -> None:
        self._write({META_PARAM + name.encode(): value})

    def aux_get(self, key: bytes) -> bytes | None:
        """Non-consensus data (caches): never part of the state root."""
        return self.kv.get(NS_AUX + key)

    def aux_put(self, key: bytes, value: bytes) -> None:
        """Written directly, never fsync'd: a cache lost in a crash is rebuilt."""
        self.kv.write({NS_AUX + key: value})

    def aux_iter(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        return [(k[1:], v) for k, v in self.kv.iter_prefix(NS_AUX + prefix)]

    # -- mempool --------------------------------------------------------------------------
    def pool_put(self, seq: int, raw: bytes) -> None:
        """Persist an accepted transaction before it is acknowledged (returns once durable)."""
        self.pool_put_many([(seq, raw)])

    def pool_put_many(self, entries: Iterable[tuple[int, bytes]]) -> None:
        """Persist accepted transactions ``[(seq, raw)]`` in one atomic write batch: after a
        crash either all of them are pending or none. Returns once durable."""
        self.pool_put_many_async(entries).result()

    def pool_put_many_async(self, entries: Iterable[tuple[int, bytes]]) -> Future[None]:
        """:meth:`pool_put_many` without waiting: the future resolves once the transactions are
        durable (at once, already resolved, with the inline writer). Sequence numbers must be
        consecutive and increasing across calls."""
        items = list(entries)
        if not items:
            done: Future[None] = Future()
            done.set_result(None)
            return done
        return self._submit(*self._pool_ops(items))

    def pool_put_many_aio(self, entries: list[tuple[int, bytes]]) -> asyncio.Future[None]:
        """:meth:`pool_put_many_async` for the running event loop: an asyncio future (a finished
        group commit wakes the loop once for all its writes)."""
        if not entries:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        ops, records = self._pool_ops(entries)
        fut = self.writer.submit_aio(ops, records)
        self._maybe_rotate()
        return fut

    def _pool_ops(
        self, items: list[tuple[int, bytes]]
    ) -> tuple[dict[bytes, bytes | None], list[Record]]:
        ops: dict[bytes, bytes | None] = {NS_POOL + U64.pack(seq): raw for seq, raw in items}
        ops[META_SEQ] = U64.pack(items[-1][0] + 1)
        return ops, [ack_record(items[0][0], [sha3(raw) for _, raw in items])]

    def next_seq(self) -> int:
        """The mempool sequence number after the last one ever stored (0 for a new store)."""
        raw = self.kv.get(META_SEQ)
        return int(U64.unpack(raw)[0]) if raw is not None else 0

    def pool_load(self) -> list[tuple[int, bytes]]:
        return [(int(U64.unpack(k[1:])[0]), v) for k, v in self.kv.iter_prefix(NS_POOL)]

    def pool_delete(self, seqs: Iterable[int]) -> None:
        self._write({NS_POOL + U64.pack(s): None for s in seqs})

    # -- durability -----------------------------------------------------------------------
    def _submit(self, ops: Mapping[bytes, bytes | None], records: list[Record]) -> Future[None]:
        fut = self.writer.submit(ops, records)
        if records:
            self._maybe_rotate()
        return fut

    def _maybe_rotate(self) -> None:
        j = self.journal
        if j is not None and j.size > j.max_bytes and not self._rotating:
            self._rotating = True
            self._rotation = threading.Thread(target=self._rotate_journal,
                                              name="journal-rotation", daemon=True)
            self._rotation.start()

    def _write(
        self, ops: Mapping[bytes, bytes | None], records: list[Record] | None = None
    ) -> None:
        self._submit(ops, records or []).result()

    def _rotate_journal(self) -> None:
        """Restart the journal once RocksDB has flushed what its older records cover."""
        j = self.journal
        assert j is not None
        try:
            offset, mark = j.rotation_point()
            self.kv.flush()
            j.rotate(offset, mark)
            log.info("journal restarted at block %s, sequence %d", mark.head, mark.next_seq)
        except Exception:
            log.exception("journal rotation failed; it keeps growing")
        finally:
            self._rotating = False

    def close(self) -> None:
        """Write what is queued (and finish a journal rotation), then close the journal and the
        store."""
        self.writer.close()
        if self._rotation is not None:
            self._rotation.join()
        if self.journal is not None:
            self.journal.close()
        self.kv.close()


def open_memory_store() -> ChainStore:
    """The in-memory reference store (nothing survives a restart; nothing to sync)."""
    return ChainStore(MemoryKV())
