"""Mempool admission rules, durability and restore."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import pytest

from node.chain.mempool import Mempool
from node.chain.producer import BlockProducer
from node.core import keys
from node.core.errors import InvalidTransaction, LimitExceeded, NodeError, StorageError
from node.core.tx import Signer, Transaction, sign_tx
from node.scheduler.serial import Serial
from node.state.chain_store import ChainStore
from node.state.kv import MemoryKV
from node.state.rocks import RocksKV
from node.vm.reference import ReferenceExecutor

A = Signer.from_seed(b"a")
B = Signer.from_seed(b"b")


def tx(s: Signer, nonce: int, chain_id: int = 9) -> bytes:
    return sign_tx(s, chain_id=chain_id, nonce=nonce, to=keys.COUNTER_DEMO, method="increment",
                   args=b"k" + (1).to_bytes(8, "big"),
                   write_set=(keys.storage_key(keys.COUNTER_DEMO, b"k"),)).raw


def pool(store: ChainStore | None = None, max_txs: int = 100) -> Mempool:
    return Mempool(store or ChainStore(MemoryKV()), chain_id=9, max_txs=max_txs)


def test_nonce_sequence_and_rejections() -> None:
    p = pool()
    h0 = p.submit(tx(A, 0))
    assert p.submit(tx(A, 0)) == h0  # identical resubmission is idempotent
    p.submit(tx(A, 1))
    with pytest.raises(InvalidTransaction) as e:
        p.submit(tx(A, 3))
    assert e.value.cause == "nonce_gap"
    with pytest.raises(InvalidTransaction) as e:
        p.submit(tx(B, 1))
    assert e.value.cause == "nonce_gap"
    assert p.next_nonce(A.address) == 2 and len(p) == 2


def test_replay_after_inclusion_is_rejected() -> None:
    store = ChainStore(MemoryKV())
    p = pool(store)
    prod = BlockProducer(store, Serial(ReferenceExecutor(bytes(20))), chain_id=9)
    prod.genesis({}, 0)
    p.submit(tx(A, 0))
    entries = p.pending(10)
    prod.build(entries, 1)
    p.remove(entries)
    assert p.next_nonce(A.address) == 1
    with pytest.raises(InvalidTransaction) as e:
        p.submit(tx(A, 0))
    assert e.value.cause == "nonce_too_low"


def test_wrong_chain_and_bad_signature() -> None:
    p = pool()
    with pytest.raises(InvalidTransaction) as e:
        p.submit(tx(A, 0, chain_id=1))
    assert e.value.cause == "wrong_chain"
    raw = bytearray(tx(A, 0))
    raw[-40] ^= 1  # inside R: still a canonical encoding, but no longer the signature
    with pytest.raises(InvalidTransaction) as e:
        p.submit(bytes(raw))
    assert e.value.cause == "bad_signature"
    assert len(p) == 0


def test_capacity() -> None:
    p = pool(max_txs=1)
    p.submit(tx(A, 0))
    with pytest.raises(LimitExceeded):
        p.submit(tx(B, 0))


def test_restore_after_restart(tmp_path: Path) -> None:
    store = ChainStore(RocksKV(tmp_path))
    p = pool(store)
    hashes = [p.submit(tx(A, n)) for n in range(3)]
    store.close()
    store2 = ChainStore(RocksKV(tmp_path))
    p2 = pool(store2)
    assert p2.restore() == 3
    assert [e.tx.hash for e in p2.pending(10)] == hashes
    assert p2.next_nonce(A.address) == 3
    p2.submit(tx(A, 3))  # sequence numbers continue after the restored ones
    assert [e.seq for e in p2.pending(10)] == [0, 1, 2, 3]
    store2.close()


class CountingWrites(MemoryKV):
    """MemoryKV counting write batches; ``fail`` makes the next write raise (a disk error)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.fail = False

    def write(self, ops: Mapping[bytes, bytes | None], *, sync: bool = False) -> None:
        if self.fail:
            raise StorageError("disk on fire")
        self.writes += 1
        super().write(ops, sync=sync)


def test_submit_many_admits_in_order_in_one_write_with_per_item_errors() -> None:
    kv = CountingWrites()
    store = ChainStore(kv)
    p = pool(store, max_txs=5)
    p.submit(tx(A, 0))
    before = kv.writes
    bad_sig = Transaction.decode(tx(B, 5))
    bad_sig = dataclasses.replace(bad_sig, signature=Transaction.decode(tx(B, 6)).signature)
    items: list[Transaction | NodeError] = [
        Transaction.decode(tx(A, 0)),  # already pending: its hash again (idempotent)
        Transaction.decode(tx(A, 1)),
        Transaction.decode(tx(A, 2)),  # follows the previous item of the same sender
        Transaction.decode(tx(A, 2)),  # twice in one list: one admission, the same hash
        Transaction.decode(tx(A, 4)),  # a gap
        Transaction.decode(tx(B, 0, chain_id=8)),
        bad_sig,
        InvalidTransaction("malformed", "passed through"),
        Transaction.decode(tx(B, 0)),
        Transaction.decode(tx(B, 1)),
        Transaction.decode(tx(B, 2)),  # the pool holds 5: full
    ]
    out = p.submit_many(items)
    assert kv.writes == before + 1  # every accepted transaction in one write batch
    hashes = [r for r in out if isinstance(r, bytes)]
    assert hashes == [Transaction.decode(tx(A, n)).hash for n in (0, 1, 2, 2)] + [
        Transaction.decode(tx(B, n)).hash for n in (0, 1)
    ]
    causes = [r.cause if isinstance(r, InvalidTransaction) else type(r).__name__
              for r in out if not isinstance(r, bytes)]
    assert causes == ["nonce_gap", "wrong_chain", "bad_signature", "malformed", "LimitExceeded"]
    assert len(p) == 5 and p.next_nonce(A.address) == 3 and p.next_nonce(B.address) == 2
    # durable: a restarted pool (same store) has exactly them, in arrival order
    again = pool(store)
    assert again.restore() == 5
    assert [e.tx.nonce for e in again.pending(10)] == [0, 1, 2, 0, 1]


def test_submit_many_admits_nothing_when_the_write_fails() -> None:
    kv = CountingWrites()
    store = ChainStore(kv)
    p = pool(store)
    kv.fail = True
    with pytest.raises(StorageError):
        p.submit_many([Transaction.decode(tx(A, 0)), Transaction.decode(tx(A, 1))])
    kv.fail = False
    assert len(p) == 0 and p.next_nonce(A.address) == 0 and pool(store).restore() == 0
    assert p.submit_many([Transaction.decode(tx(A, 0))]) == [Transaction.decode(tx(A, 0)).hash]
