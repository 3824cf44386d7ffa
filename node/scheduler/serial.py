"""Serial: the reference strategy. Executes in block order; every other strategy must match it."""

from __future__ import annotations

import time
from collections.abc import Sequence

from node.core.access import Overlay
from node.core.execution import (
    BlockContext,
    BlockExecution,
    BlockStats,
    StateReader,
    TxExecutor,
    TxOutcome,
)
from node.core.tx import Transaction


def run_in_order(
    executor: TxExecutor, txs: Sequence[Transaction], view: Overlay, ctx: BlockContext
) -> list[TxOutcome]:
    """Execute ``txs`` one after the other against ``view``, applying each one's writes to it:
    the reference computation every strategy must equal (also their in-order fallbacks)."""
    outcomes: list[TxOutcome] = []
    execute = executor.execute
    apply = view.writes.update
    for tx in txs:
        o = execute(tx, view, ctx)
        apply(o.writes)
        outcomes.append(o)
    return outcomes


class Serial:
    name = "Serial"

    def __init__(self, executor: TxExecutor, workers: int = 1) -> None:
        self.executor = executor
        self.workers = 1

    def execute_block(
        self, txs: Sequence[Transaction], state: StateReader, ctx: BlockContext
    ) -> BlockExecution:
        t0 = time.perf_counter()
        view = Overlay(state)
        outcomes = run_in_order(self.executor, txs, view, ctx)
        dt = time.perf_counter() - t0
        stats = BlockStats(
            strategy=self.name, workers=1, txs=len(txs), exec_seconds=dt,
            serial_equivalent_seconds=dt, executions=len(txs), worker_txs=[len(txs)],
        )
        return BlockExecution(tuple(outcomes), view.writes, stats)

    def close(self) -> None:
        pass
