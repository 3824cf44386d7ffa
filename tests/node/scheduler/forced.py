"""Forced interleavings for Block-STM tests: a block whose tx 1 reads what tx 0 writes, and an
executor that makes tx 0's first execution wait until tx 1's has returned, so tx 1 always reads
before tx 0 wrote: its validation fails exactly once, whatever the thread timing."""

from __future__ import annotations

import threading

from sched_model import ADD, READ, ScriptExecutor, TxSpec, build_block

from node.core.execution import BlockContext, StateReader, TxOutcome
from node.core.tx import Transaction


def conflict_block(n: int) -> list[Transaction]:
    """tx 0 adds to key 0, tx 1 reads key 0 and adds to key 1, the rest add to their own key."""
    specs = [TxSpec(0, 0, (((ADD, 0, 5),),), frozenset(), frozenset(), 100_000),
             TxSpec(1, 0, (((READ, 0, 0), (ADD, 1, 1)),), frozenset(), frozenset(), 100_000)]
    specs += [TxSpec(i, 0, (((ADD, i, 1),),), frozenset(), frozenset(), 100_000)
              for i in range(2, n)]
    return list(build_block(n, {}, specs).txs)


class Ordered:
    """Runs scripts; the first execution of tx 0 waits until tx 1's first one has returned."""

    def __init__(self, txs: list[Transaction]) -> None:
        self.first, self.second = txs[0].hash, txs[1].hash
        self.second_done = threading.Event()
        self.waited = False
        self.inner = ScriptExecutor()
        self.runs: dict[bytes, int] = {}
        self.contexts: set[BlockContext] = set()
        self._lock = threading.Lock()

    def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
        with self._lock:
            self.runs[tx.hash] = self.runs.get(tx.hash, 0) + 1
            self.contexts.add(ctx)
            first_run = self.runs[tx.hash] == 1
        if tx.hash == self.first and first_run:
            self.waited = self.second_done.wait(timeout=30)
        out = self.inner.execute(tx, state, ctx)
        if tx.hash == self.second:
            self.second_done.set()
        return out
