"""Stateful test: a chain of blocks through the node's state store, parallel vs Serial.

Two ``ChainStore``s over the in-memory reference KV (``node.state``; the RocksDB backend has the
same interface) each commit every block: one executed by Serial, one by a strategy and worker
count drawn per block. Headers (state root, receipts root) must be identical after every block,
and the native token's supply must equal what was minted.
"""

from __future__ import annotations

import struct

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sched_model import CTX, MINT_AUTHORITY, assert_same, reference_executor, transfer_tx

from node.core import keys
from node.core.block import ZERO_HASH, BlockHeader, list_root
from node.core.execution import BlockContext, BlockExecution, Receipt, TxStatus
from node.core.tx import Transaction
from node.scheduler.registry import create
from node.scheduler.serial import Serial
from node.state.chain_store import ChainStore, root_of
from node.state.kv import MemoryKV

_U64 = struct.Struct(">Q")
STRATEGIES = ("SolanaParallel", "AptosBlockSTM", "SuiObjectDAG")
SUPPLY_PREFIX = keys.balance_key(bytes(20))[: -20]


def commit(store: ChainStore, number: int, txs: list[Transaction], result: BlockExecution) -> BlockHeader:
    receipts = [Receipt.from_outcome(tx.hash, number, i, o) for i, (tx, o) in enumerate(zip(txs, result.outcomes, strict=True))]
    acc = store.next_accumulator(result.writes)
    head = store.head
    header = BlockHeader(
        number=number, parent_hash=head.hash if head else ZERO_HASH, timestamp_ms=CTX.timestamp_ms + number,
        tx_root=list_root(tx.raw for tx in txs), receipts_root=list_root(r.encode() for r in receipts),
        state_root=root_of(acc), tx_count=len(txs), gas_used=sum(o.gas_used for o in result.outcomes),
    )
    store.commit_block(header, [(tx.hash, tx.raw) for tx in txs], receipts, result.writes, acc, [])
    return header


class ChainOfBlocks(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.executor = reference_executor()
        self.serial_store = ChainStore(MemoryKV())
        self.parallel_store = ChainStore(MemoryKV())
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
            txs.append(transfer_tx(s, nonce, t, rnd.draw(st.integers(0, 500)), rnd.draw(st.integers(0, 30)) > 0, "mint" if mint else "transfer"))
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
        ctx = BlockContext(self.number, CTX.timestamp_ms + self.number, CTX.chain_id)
        expected = Serial(self.executor).execute_block(txs, self.serial_store, ctx)
        s = create(strategy, self.executor, workers)
        try:
            got = s.execute_block(txs, self.parallel_store, ctx)
        finally:
            s.close()
        assert_same(expected, got, f"block {self.number}: {strategy} workers={workers}")
        for tx, o in zip(txs, expected.outcomes, strict=True):
            if tx.method == "mint" and o.status == TxStatus.SUCCESS:
                self.minted += _U64.unpack(tx.args[20:])[0]
            assert o.status != TxStatus.INVALID  # nonces are tracked exactly here
        a = commit(self.serial_store, self.number, txs, expected)
        b = commit(self.parallel_store, self.number, txs, got)
        assert a == b, f"block {self.number}: headers differ"

    @invariant()
    def same_state_root(self) -> None:
        assert self.serial_store.state_root() == self.parallel_store.state_root()

    @invariant()
    def supply_is_what_was_minted(self) -> None:
        total = sum(_U64.unpack(v)[0] for _, v in self.parallel_store.iter_state(SUPPLY_PREFIX))
        assert total == self.minted


ChainOfBlocks.TestCase.settings = settings(
    max_examples=max(5, settings().max_examples // 5), stateful_step_count=6, deadline=None
)
test_chain_of_blocks = ChainOfBlocks.TestCase
