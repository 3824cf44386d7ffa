"""The mempool at its edges: selection at the limit, partial removal of a sender's transactions,
the restore path that drops stale and duplicate rows, capacity at N, and what each refusal says."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator

import pytest
from timing import wait_until

from node.chain.mempool import Mempool
from node.core import keys
from node.core.block import ZERO_HASH, BlockHeader, list_root
from node.core.codec import pack_u64
from node.core.errors import InvalidTransaction, LimitExceeded
from node.core.tx import Signer, Transaction, sign_tx
from node.state.chain_store import ChainStore, root_of
from node.state.kv import MemoryKV

A = Signer.from_seed(b"a")
B = Signer.from_seed(b"b")


def tx(s: Signer, nonce: int, chain_id: int = 9) -> Transaction:
    return sign_tx(s, chain_id=chain_id, nonce=nonce, to=keys.COUNTER_DEMO, method="increment",
                   args=b"k", write_set=(keys.storage_key(keys.COUNTER_DEMO, b"k"),))


def pool(store: ChainStore | None = None, max_txs: int = 100) -> Mempool:
    return Mempool(store or ChainStore(MemoryKV()), chain_id=9, max_txs=max_txs)


def commit_nonces(store: ChainStore, nonces: dict[bytes, int]) -> None:
    """Commit a block that sets senders' nonces (what executing their transactions does)."""
    writes: dict[bytes, bytes | None] = {keys.nonce_key(a): pack_u64(n)
                                         for a, n in nonces.items()}
    acc = store.next_accumulator(writes)
    head = store.head
    number = head.number + 1 if head else 0
    store.commit_block(BlockHeader(number, head.hash if head else ZERO_HASH, 0, list_root([]),
                                   list_root([]), root_of(acc), 0, 0), [], [], writes, acc, [])


def test_pending_returns_the_oldest_up_to_the_limit() -> None:
    p = pool()
    order = [tx(A, 0), tx(B, 0), tx(A, 1), tx(B, 1), tx(A, 2)]
    for t in order:
        p.submit_tx(t)
    hashes = [t.hash for t in order]
    assert [e.tx.hash for e in p.pending(4)] == hashes[:4]  # limit reached: stops there
    assert [e.tx.hash for e in p.pending(5)] == hashes
    assert [e.tx.hash for e in p.pending(6)] == hashes
    assert p.pending(1)[0].tx.hash == hashes[0] and p.pending(0) == []
    assert [e.seq for e in p.pending(5)] == [0, 1, 2, 3, 4]


def test_removing_part_of_a_senders_transactions_keeps_the_rest_in_line() -> None:
    store = ChainStore(MemoryKV())
    p = pool(store)
    a0, a1, a2, b0 = tx(A, 0), tx(A, 1), tx(A, 2), tx(B, 0)
    for t in (a0, a1, a2, b0):
        p.submit_tx(t)
    first = [e for e in p.pending(10) if e.tx in (a0, b0)]
    commit_nonces(store, {A.address: 1, B.address: 1})  # the block that included a0 and b0
    p.remove(first)
    assert len(p) == 2 and p.get(a0.hash) is None and p.get(a1.hash) == a1
    assert p.next_nonce(A.address) == 3  # a1, a2 still pending: the pool's count goes on
    assert p.next_nonce(B.address) == 1  # nothing pending: the committed nonce
    p.remove(first)  # removing them again changes nothing
    assert len(p) == 2 and p.next_nonce(A.address) == 3
    p.submit_tx(tx(A, 3))
    rest = [e for e in p.pending(10) if e.tx in (a1, a2)]
    p.remove(rest[:1])
    assert p.next_nonce(A.address) == 4 and [e.tx for e in p.pending(10)] == [a2, tx(A, 3)]
    commit_nonces(store, {A.address: 4})
    p.remove(p.pending(10))
    assert len(p) == 0 and p.next_nonce(A.address) == 4  # back to committed state
    with pytest.raises(InvalidTransaction, match="nonce_too_low"):
        p.submit_tx(tx(A, 3))
    assert p.submit_tx(tx(A, 4)) == tx(A, 4).hash


def test_restore_drops_stale_and_duplicate_rows_and_numbers_on() -> None:
    store = ChainStore(MemoryKV())
    commit_nonces(store, {A.address: 1})
    store.pool_put(5, tx(A, 0).raw)  # already executed: stale
    store.pool_put(6, tx(A, 1).raw)
    store.pool_put(7, tx(A, 1).raw)  # the same transaction twice: a duplicate
    store.pool_put(9, tx(B, 0).raw)
    p = pool(store)
    assert p.restore() == 2
    assert store.pool_load() == [(6, tx(A, 1).raw), (9, tx(B, 0).raw)]  # the dropped rows go
    assert [(e.seq, e.tx) for e in p.pending(10)] == [(6, tx(A, 1)), (9, tx(B, 0))]
    assert p.next_nonce(A.address) == 2 and p.next_nonce(B.address) == 1
    p.submit_tx(tx(A, 2))
    assert store.pool_load()[-1] == (10, tx(A, 2).raw)  # after the highest restored seq


def test_restore_numbers_after_a_dropped_row_too() -> None:
    store = ChainStore(MemoryKV())
    commit_nonces(store, {A.address: 1})
    store.pool_put(0, tx(B, 0).raw)
    store.pool_put(8, tx(A, 0).raw)  # stale, and the highest seq
    p = pool(store)
    assert p.restore() == 1
    p.submit_tx(tx(B, 1))
    assert [s for s, _ in store.pool_load()] == [0, 9]  # 8 is never reused


@pytest.mark.parametrize("n", [1, 2, 3])
def test_capacity_admits_n_and_refuses_the_next(n: int) -> None:
    p = pool(max_txs=n)
    for i in range(n):
        p.submit_tx(tx(A, i))
    with pytest.raises(LimitExceeded, match=rf"^mempool full \({n} transactions\)$"):
        p.submit_tx(tx(A, n))
    assert p.submit_tx(tx(A, 0)) == tx(A, 0).hash  # already pending: no capacity needed
    out = pool(max_txs=n).submit_many([tx(B, i) for i in range(n + 1)])
    assert out[:n] == [tx(B, i).hash for i in range(n)]
    assert isinstance(out[n], LimitExceeded)


def test_refusals_say_why() -> None:
    store = ChainStore(MemoryKV())
    commit_nonces(store, {A.address: 2})
    p = pool(store)
    with pytest.raises(InvalidTransaction) as e:
        p.submit_tx(tx(A, 1))
    assert str(e.value) == "nonce_too_low: nonce 1 already used (next is 2): replay"
    with pytest.raises(InvalidTransaction) as e:
        p.submit_tx(tx(A, 4))
    assert str(e.value) == "nonce_gap: nonce 4 leaves a gap (next is 2)"
    with pytest.raises(InvalidTransaction) as e:
        p.submit_tx(tx(A, 2, chain_id=8))
    assert str(e.value) == "wrong_chain: chain_id 8 != 9"
    assert p.committed_nonce(A.address) == 2 and p.committed_nonce(B.address) == 0
    assert p.get(b"\x00" * 32) is None and len(p) == 0


def test_submit_many_checks_signatures_unless_told_they_were() -> None:
    good = tx(A, 0)
    forged = dataclasses.replace(good, signature=tx(B, 0).signature)
    out = pool().submit_many([forged])
    assert isinstance(out[0], InvalidTransaction) and out[0].cause == "bad_signature"
    p = pool()
    assert p.submit_many([forged], signatures_checked=True) == [forged.hash]
    assert p.get(forged.hash) == forged
    with pytest.raises(InvalidTransaction, match="bad_signature"):
        pool().submit_tx(forged)


def test_submit_many_follows_a_senders_nonces_within_the_list() -> None:
    store = ChainStore(MemoryKV())
    p = pool(store)
    p.submit_tx(tx(A, 0))
    out = p.submit_many([tx(A, 1), tx(A, 1), tx(A, 3), tx(A, 2), tx(B, 0)])
    assert out[0] == out[1] == tx(A, 1).hash  # twice in one call: once admitted
    assert isinstance(out[2], InvalidTransaction) and out[2].cause == "nonce_gap"
    assert out[3:] == [tx(A, 2).hash, tx(B, 0).hash]
    assert [s for s, _ in store.pool_load()] == [0, 1, 2, 3]
    assert p.next_nonce(A.address) == 3 and len(p) == 4
    assert p.submit_many([]) == [] and len(store.pool_load()) == 4


def test_removing_a_gone_entry_skips_it_and_goes_on() -> None:
    p = pool()
    a0, a1 = tx(A, 0), tx(A, 1)
    p.submit_tx(a0)
    p.submit_tx(a1)
    first, second = p.pending(2)
    p.remove([first])
    p.remove([first, second])  # first is gone already: second is still removed
    assert len(p) == 0 and p.get(a1.hash) is None


def test_with_nothing_pending_the_next_nonce_is_the_committed_one() -> None:
    store = ChainStore(MemoryKV())
    commit_nonces(store, {A.address: 3})
    p = pool(store)
    for n in (3, 4, 5):
        p.submit_tx(tx(A, n))
    entries = p.pending(10)
    p.remove(entries[:2])
    assert p.next_nonce(A.address) == 6  # one still pending
    p.remove(entries[2:])  # dropped without a block: the committed nonce again
    assert p.next_nonce(A.address) == 3 and len(p) == 0
    assert p.submit_tx(tx(A, 3)) == tx(A, 3).hash


def test_restore_of_rows_written_before_sequence_numbers_were_kept() -> None:
    from node.core.codec import U64

    store = ChainStore(MemoryKV())
    store.kv.write({b"P" + U64.pack(9): tx(A, 0).raw})  # a row, and no stored next sequence
    p = pool(store)
    assert p.restore() == 1
    p.submit_tx(tx(A, 1))
    assert [s for s, _ in store.pool_load()] == [9, 10]


class FailingKV(MemoryKV):
    """MemoryKV whose writes fail while ``fail`` is set (a disk error)."""

    fail = False

    def write(self, ops: dict[bytes, bytes | None], *, sync: bool = False) -> None:  # type: ignore[override]
        if self.fail:
            raise OSError("disk on fire")
        super().write(ops, sync=sync)


def test_a_failed_group_commit_un_admits_only_what_it_carried() -> None:
    from node.core.errors import StorageError

    kv = FailingKV()
    store = ChainStore(kv, sync_writes=True)  # the group-commit writer thread
    try:
        p = pool(store)
        for t in (tx(A, 0), tx(B, 0), tx(B, 1)):
            p.submit_tx(t)
        kv.fail = True
        with pytest.raises(StorageError, match="disk on fire"):
            p.submit_many([tx(A, 1), tx(A, 2), tx(B, 2)])
        # what was durable stays; the failed write's transactions are forgotten, and each
        # sender's next nonce follows its own transactions still pending
        assert [e.tx for e in p.pending(10)] == [tx(A, 0), tx(B, 0), tx(B, 1)]
        assert p.next_nonce(A.address) == 1 and p.next_nonce(B.address) == 2
        assert p.get(tx(A, 1).hash) is None
        kv.fail = False
        assert p.submit_many([tx(A, 1), tx(B, 2)]) == [tx(A, 1).hash, tx(B, 2).hash]
        seqs = [s for s, _ in store.pool_load()]
        assert len(p) == 5 and seqs[:3] == [0, 1, 2] and 2 < seqs[3] < seqs[4]  # increasing
    finally:
        store.close()


def test_a_failed_group_commit_forgets_a_sender_with_nothing_left() -> None:
    from node.core.errors import StorageError

    kv = FailingKV()
    store = ChainStore(kv, sync_writes=True)
    commit_nonces(store, {B.address: 2})
    try:
        p = pool(store)
        kv.fail = True
        with pytest.raises(StorageError):
            p.submit_tx(tx(B, 2))
        assert len(p) == 0 and p.next_nonce(B.address) == 2  # back to the committed nonce
        kv.fail = False
        assert p.submit_tx(tx(B, 2)) == tx(B, 2).hash and p.next_nonce(B.address) == 3
        p.remove(p.pending(1))  # nothing pending again: the committed nonce
        assert len(p) == 0 and p.next_nonce(B.address) == 2
    finally:
        store.close()


def test_the_event_loop_submits_wait_for_durability() -> None:
    async def main() -> None:
        store = ChainStore(MemoryKV(), sync_writes=True)
        try:
            p = pool(store)
            h = await p.asubmit_tx(tx(A, 0))
            assert h == tx(A, 0).hash and store.pool_load()[0][1] == tx(A, 0).raw
            out = await p.asubmit_many([tx(A, 1), tx(A, 1), tx(B, 5)])
            assert out[:2] == [tx(A, 1).hash] * 2 and isinstance(out[2], InvalidTransaction)
            # two concurrent submissions of one transaction: both answered once it is durable
            a, b = await asyncio.gather(p.asubmit_tx(tx(B, 0)), p.asubmit_tx(tx(B, 0)))
            assert a == b == tx(B, 0).hash and len(p) == 3
            with pytest.raises(InvalidTransaction, match="nonce_gap"):
                await p.asubmit_tx(tx(A, 9))
            forged = dataclasses.replace(tx(A, 2), signature=tx(B, 0).signature)
            refused = (await p.asubmit_many([forged]))[0]  # signatures are checked by default
            assert isinstance(refused, InvalidTransaction) and refused.cause == "bad_signature"
            assert await p.asubmit_many([forged], signatures_checked=True) == [forged.hash]
        finally:
            store.close()

    asyncio.run(main())


class GatedKV(MemoryKV):
    """MemoryKV whose writes wait for ``gate`` (a write in flight) and may then fail."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = 0
        self.fail = False

    def write(self, ops: dict[bytes, bytes | None], *, sync: bool = False) -> None:  # type: ignore[override]
        self.waiting += 1
        self.gate.wait(30)
        self.waiting -= 1
        if self.fail:
            raise OSError("disk on fire")
        super().write(ops, sync=sync)


@contextlib.asynccontextmanager
async def held_write(fail: bool = False) -> AsyncIterator[tuple[GatedKV, Mempool,
                                                                asyncio.Task[bytes]]]:
    """A pool on a GatedKV, and the task of a first submission of ``tx(A, 0)`` whose write is
    held at the gate (it fails once let through if ``fail``); the store is closed on exit."""
    kv = GatedKV()
    store = ChainStore(kv, sync_writes=True)
    try:
        p = pool(store)
        kv.gate.clear()
        kv.fail = fail
        first = asyncio.create_task(p.asubmit_tx(tx(A, 0)))
        await wait_until(lambda: kv.waiting, what="the write held")
        yield kv, p, first
    finally:
        store.close()


def test_an_identical_submission_waits_for_the_write_in_flight() -> None:
    async def main() -> None:
        async with held_write() as (kv, p, first):
            second = asyncio.create_task(p.asubmit_tx(tx(A, 0)))
            await asyncio.sleep(0)
            assert not first.done() and not second.done()  # neither before it is durable
            kv.gate.set()
            assert await first == await second == tx(A, 0).hash

    asyncio.run(main())


def test_when_the_write_in_flight_fails_every_submission_of_it_fails() -> None:
    """And the transaction is forgotten: it was never durable (it once stayed admitted, so a
    block could include what the client had been told failed)."""
    from node.core.errors import StorageError

    async def main() -> None:
        async with held_write(fail=True) as (kv, p, first):
            second = asyncio.create_task(p.asubmit_tx(tx(A, 0)))
            await asyncio.sleep(0)
            kv.gate.set()
            for t in (first, second):
                with pytest.raises(StorageError, match="disk on fire"):
                    await t
            assert len(p) == 0 and p.next_nonce(A.address) == 0

    asyncio.run(main())


@pytest.mark.parametrize("fails", [False, True])
def test_a_cancelled_submission_is_settled_when_its_write_ends(fails: bool) -> None:
    """The caller went away (a closed connection): the write goes on, and a failed one's
    transaction is forgotten as if the caller had waited."""

    async def main() -> None:
        async with held_write(fail=fails) as (kv, p, task):
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert len(p) == 1  # admitted, its write still going
            kv.gate.set()
            await wait_until(lambda: not kv.waiting, what="the write ended")
            await wait_until(lambda: len(p) == (0 if fails else 1), what="settled")
            assert p.next_nonce(A.address) == (0 if fails else 1)
            if not fails:  # durable: a resubmission is answered at once
                assert await p.asubmit_tx(tx(A, 0)) == tx(A, 0).hash

    asyncio.run(main())


def test_pending_stops_at_the_byte_limit_but_always_takes_one() -> None:
    p = pool()
    order = [tx(A, 0), tx(B, 0), tx(A, 1), tx(B, 1)]
    for t in order:
        p.submit_tx(t)
    size = len(order[0].raw)
    assert all(len(t.raw) == size for t in order)
    for n in (1, 2, 3):  # exactly n transactions' bytes: n of them; one byte less: n - 1
        assert [e.tx for e in p.pending(10, max_bytes=n * size)] == order[:n]
        assert [e.tx for e in p.pending(10, max_bytes=n * size - 1)] == order[:max(n - 1, 1)]
    assert [e.tx for e in p.pending(10, max_bytes=1)] == order[:1]  # one, even if too big
    assert [e.tx for e in p.pending(2, max_bytes=10 * size)] == order[:2]  # the count too
    assert [e.tx for e in p.pending(10)] == order  # no byte limit
