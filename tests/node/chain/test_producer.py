"""Block production (node.chain.producer): genesis once, each block's header from what it ran
(number, parent, timestamp never going back, roots, gas), system writes applied before the
block's transactions, and everything committed in one batch with the pool rows it consumed."""

from __future__ import annotations

import orjson
import pytest

from node.chain.mempool import Mempool
from node.chain.producer import BlockProducer
from node.core import keys
from node.core.block import ZERO_HASH, list_root
from node.core.codec import pack_u64, unpack_u64
from node.core.execution import TxStatus
from node.core.tx import Signer, Transaction, sign_tx
from node.scheduler.serial import Serial
from node.state.chain_store import ChainStore, root_of
from node.state.kv import MemoryKV
from node.vm.reference import ReferenceExecutor

A = Signer.from_seed(b"producer")
SLOT = b"k"
COUNTER = keys.storage_key(keys.COUNTER_DEMO, SLOT)


def inc(nonce: int, delta: int = 1) -> Transaction:
    return sign_tx(A, chain_id=9, nonce=nonce, to=keys.COUNTER_DEMO, method="increment",
                   args=SLOT + pack_u64(delta), write_set=(COUNTER,))


def setup() -> tuple[ChainStore, Mempool, BlockProducer]:
    store = ChainStore(MemoryKV())
    prod = BlockProducer(store, Serial(ReferenceExecutor(bytes(20))), chain_id=9)
    return store, Mempool(store, chain_id=9, max_txs=100), prod


def test_genesis_is_committed_once() -> None:
    store, _, prod = setup()
    g = prod.genesis({b"g": b"1"}, 1_000)
    assert (g.number, g.parent_hash, g.timestamp_ms, g.tx_count, g.gas_used) == (
        0, ZERO_HASH, 1_000, 0, 0)
    assert g.tx_root == g.receipts_root == list_root([])
    assert g.state_root == root_of(store.next_accumulator({})) == store.state_root()
    assert store.head == g and store.get(b"g") == b"1"
    again = prod.genesis({b"g": b"2", b"h": b"3"}, 5_000)  # a chain exists: nothing written
    assert again == g and store.get(b"g") == b"1" and store.get(b"h") is None


def test_building_needs_a_genesis() -> None:
    _, _, prod = setup()
    with pytest.raises(RuntimeError, match=r"^no genesis block: call genesis\(\) first$"):
        prod.build([], 1)


def test_a_block_commits_what_it_ran() -> None:
    store, pool, prod = setup()
    g = prod.genesis({}, 1_000)
    for n in range(3):
        pool.submit_tx(inc(n, delta=n + 1))
    entries = pool.pending(2)
    block = prod.build(entries, 2_000)
    h = block.header
    assert (h.number, h.parent_hash, h.timestamp_ms, h.tx_count) == (1, g.hash, 2_000, 2)
    assert block.txs == tuple(e.tx for e in entries)
    assert h.tx_root == list_root(e.tx.raw for e in entries)
    assert h.receipts_root == list_root(r.encode() for r in block.receipts)
    assert [(r.index, r.block_number, r.tx_hash, r.status) for r in block.receipts] == [
        (0, 1, entries[0].tx.hash, TxStatus.SUCCESS), (1, 1, entries[1].tx.hash,
                                                       TxStatus.SUCCESS)]
    assert h.gas_used == sum(r.gas_used for r in block.receipts) > 0
    assert store.head == h and h.state_root == store.state_root()
    assert unpack_u64(store.get(COUNTER)) == 1 + 2
    assert store.block_tx_hashes(1) == [e.tx.hash for e in entries]
    assert [s for s, _ in store.pool_load()] == [2]  # the consumed rows went with the block
    assert orjson.loads(store.block_stats(1) or b"null") == block.stats.as_dict()


def test_timestamps_never_go_back() -> None:
    _, _, prod = setup()
    prod.genesis({}, 5_000)
    assert prod.build([], 4_000).header.timestamp_ms == 5_001  # the clock went back
    assert prod.build([], 5_001).header.timestamp_ms == 5_002  # the same millisecond
    assert prod.build([], 9_000).header.timestamp_ms == 9_000


def test_system_writes_apply_before_the_blocks_transactions() -> None:
    store, pool, prod = setup()
    prod.genesis({}, 1)
    pool.submit_tx(inc(0, delta=1))
    block = prod.build(pool.pending(1), 2, system_writes={COUNTER: pack_u64(41),
                                                           b"sys": b"v"})
    assert block.receipts[0].return_data == pack_u64(42)  # it saw the system write
    assert unpack_u64(store.get(COUNTER)) == 42 and store.get(b"sys") == b"v"
    assert block.header.state_root == store.state_root()
    empty = prod.build([], 3, system_writes={b"sys": None})  # alone, and a delete
    assert store.get(b"sys") is None and empty.header.state_root == store.state_root()
    assert prod.build([], 4, system_writes={}).header.state_root == store.state_root()


def test_the_block_context_is_what_the_header_says() -> None:
    from node.core.execution import BlockContext, BlockExecution, StateReader

    seen: list[BlockContext] = []

    class Recording:
        name = "recording"
        inner = Serial(ReferenceExecutor(bytes(20)))

        def execute_block(self, txs: list[Transaction], state: StateReader,
                          ctx: BlockContext) -> BlockExecution:
            seen.append(ctx)
            return self.inner.execute_block(txs, state, ctx)

        def close(self) -> None:
            pass

    store = ChainStore(MemoryKV())
    prod = BlockProducer(store, Recording(), chain_id=9)  # type: ignore[arg-type]
    prod.genesis({}, 10)
    pool = Mempool(store, chain_id=9, max_txs=10)
    pool.submit_tx(inc(0))
    block = prod.build(pool.pending(1), 3)
    assert seen == [BlockContext(number=1, timestamp_ms=11, chain_id=9)]
    assert (block.header.number, block.header.timestamp_ms) == (1, 11)
