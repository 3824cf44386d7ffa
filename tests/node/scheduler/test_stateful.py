"""Stateful test: a chain of blocks through the node's state store, parallel vs Serial.

Two ``ChainStore``s over the in-memory reference KV (``node.state``; the RocksDB backend has the
same interface) each commit every block: one executed by Serial, one by a strategy and worker
count drawn per block. Headers (state root, receipts root) must be identical after every block,
and the native token's supply must equal what was minted.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sched_model import CTX, MINT_AUTHORITY, assert_same, reference_executor, transfer_tx

from node.chain.mempool import PoolEntry
from node.chain.producer import BlockProducer
from node.core import keys
from node.core.codec import unpack_u64
from node.core.execution import BlockContext, BlockExecution, BlockExecutor, StateReader, TxStatus
from node.core.tx import Transaction
from node.scheduler.registry import create
from node.scheduler.serial import Serial
from node.state.chain_store import ChainStore
from node.state.kv import MemoryKV

STRATEGIES = ("SolanaParallel", "AptosBlockSTM", "SuiObjectDAG")
SUPPLY_PREFIX = keys.balance_key(bytes(20))[: -20]


class Recording:
    """A strategy that keeps its last :class:`BlockExecution` (the producer commits it)."""

    def __init__(self, inner: BlockExecutor) -> None:
        self.inner = inner
        self.name = inner.name
        self.last: BlockExecution | None = None

    def execute_block(
        self, txs: Sequence[Transaction], state: StateReader, ctx: BlockContext
    ) -> BlockExecution:
        self.last = self.inner.execute_block(txs, state, ctx)
        return self.last

    def close(self) -> None:
        self.inner.close()


def producer(store: ChainStore, strategy: BlockExecutor) -> BlockProducer:
    p = BlockProducer(store, strategy, chain_id=CTX.chain_id)
    p.genesis({}, CTX.timestamp_ms)
    return p


class ChainOfBlocks(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.executor = reference_executor()
        self.serial_store = ChainStore(MemoryKV())
        self.parallel_store = ChainStore(MemoryKV())
        self.serial = Recording(Serial(self.executor))
        self.serial_producer = producer(self.serial_store, self.serial)
        self.parallel_producer = producer(self.parallel_store, Serial(self.executor))
        self.nonces: dict[int, int] = {}
        self.minted = 0
        self.number = 0

    @initialize(accounts=st.integers(2, 200))
    def setup(self, accounts: int) -> None:
        self.accounts = accounts

    def _block(self, rnd: st.DataObject, n: int) -> list[Transaction]:
        txs = []
        for _ in range(n):
            s = rnd.draw(st.integers(0, self.accounts - 1))
            t = rnd.draw(st.integers(0, self.accounts - 1))
            mint = s == MINT_AUTHORITY and rnd.draw(st.booleans())
            nonce = self.nonces.get(s, 0)
            txs.append(
                transfer_tx(
                    s,
                    nonce,
                    t,
                    rnd.draw(st.integers(0, 500)),
                    rnd.draw(st.integers(0, 30)) > 0,
                    "mint" if mint else "transfer",
                )
            )
            self.nonces[s] = nonce + 1
        return txs

    @rule(
        data=st.data(),
        n=st.integers(1, 120),
        strategy=st.sampled_from(STRATEGIES),
        workers=st.sampled_from((1, 2, 4, 8)),
    )
    def run_block(self, data: st.DataObject, n: int, strategy: str, workers: int) -> None:
        txs = self._block(data, n)
        self.number += 1
        entries = [PoolEntry(i, tx) for i, tx in enumerate(txs)]
        now_ms = CTX.timestamp_ms + self.number
        a = self.serial_producer.build(entries, now_ms)
        s = Recording(create(strategy, self.executor, workers))
        self.parallel_producer.executor = s
        try:
            b = self.parallel_producer.build(entries, now_ms)
        finally:
            s.close()
        assert self.serial.last is not None and s.last is not None
        expected = self.serial.last
        assert_same(expected, s.last, f"block {self.number}: {strategy} workers={workers}")
        for tx, o in zip(txs, expected.outcomes, strict=True):
            if tx.method == "mint" and o.status == TxStatus.SUCCESS:
                self.minted += unpack_u64(tx.args[20:])
            assert o.status != TxStatus.INVALID  # nonces are tracked exactly here
        assert a.header.number == self.number and a.header == b.header, (
            f"block {self.number}: headers differ"
        )

    @invariant()
    def same_state_root(self) -> None:
        assert self.serial_store.state_root() == self.parallel_store.state_root()

    @invariant()
    def supply_is_what_was_minted(self) -> None:
        total = sum(unpack_u64(v) for _, v in self.parallel_store.iter_state(SUPPLY_PREFIX))
        assert total == self.minted


ChainOfBlocks.TestCase.settings = settings(
    max_examples=max(5, settings().max_examples // 5), stateful_step_count=6, deadline=None
)
test_chain_of_blocks = ChainOfBlocks.TestCase
