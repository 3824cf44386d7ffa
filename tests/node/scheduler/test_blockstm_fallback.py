"""Block-STM's aborts and its contention fallback, driven deterministically.

Whether a real run crosses the abort threshold depends on thread timing; here the interleaving
is forced instead. :class:`Ordered` makes transaction 0's first execution wait until
transaction 1 has executed, so transaction 1 always reads the key 0 writes before 0 wrote it:
its validation fails exactly once. ``fallback_after`` (the threshold seam) then decides, with
nothing left to chance, whether that one abort abandons the block."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from forced import Ordered, conflict_block
from sched_model import CTX, DictState, ScriptExecutor, assert_same

from node.core.execution import BlockContext, BlockExecution, StateReader, TxOutcome
from node.core.tx import Transaction
from node.scheduler.blockstm import EXECUTED, READY_TO_EXECUTE, AptosBlockSTM, Scheduler
from node.scheduler.serial import Serial


def run(n: int, **kw: Any) -> tuple[BlockExecution, Ordered, list[Transaction]]:
    txs = conflict_block(n)
    serial = Serial(ScriptExecutor()).execute_block(txs, DictState(), CTX)
    ex = Ordered(txs)
    stm = AptosBlockSTM(ex, workers=2, **kw)
    try:
        got = stm.execute_block(txs, DictState(), CTX)
    finally:
        stm.close()
    assert ex.waited, "tx 1 never ran while tx 0 waited: the two workers did not both start"
    assert_same(serial, got, "AptosBlockSTM")
    return got, ex, txs


def test_one_forced_conflict_is_one_abort_and_one_re_execution() -> None:
    got, ex, txs = run(40)
    st = got.stats
    assert st.aborts == 1
    assert st.executions == 40 + 1  # every transaction once, tx 1 twice
    assert ex.runs[txs[1].hash] == 2 and ex.runs[txs[0].hash] == 1
    assert all(ex.runs[t.hash] == 1 for t in txs[2:])
    assert not st.sequential_fallback and st.path == "strategy"


def test_reaching_the_threshold_abandons_the_block_for_an_in_order_run() -> None:
    got, ex, _ = run(40, fallback_after=1)
    st = got.stats
    assert st.sequential_fallback and st.path == "contention-fallback"
    assert st.aborts == 1  # abandoned at the first abort: no second one
    speculative = st.executions - 40
    assert 2 <= speculative <= 40 + 1  # the abandoned run's executions, then all 40 in order
    assert st.worker_txs[0] == 40  # the in-order run is on the coordinator
    assert sum(ex.runs.values()) == st.executions
    assert ex.contexts == {CTX}  # the in-order run sees the block's context too
    assert (st.strategy, st.workers, st.txs) == ("AptosBlockSTM", 2, 40)
    assert 0 < st.exec_seconds < 60 and 0 < st.serial_equivalent_seconds < 60


def test_one_abort_short_of_the_threshold_finishes_the_run() -> None:
    got, _, _ = run(40, fallback_after=2)
    st = got.stats
    assert st.aborts == 1 and st.executions == 41 and not st.sequential_fallback


@pytest.mark.parametrize(("n", "abandoned"), [(8, True), (4, False)])
def test_the_fallback_is_only_taken_in_the_blocks_first_quarter(n: int, abandoned: bool) -> None:
    """The abort comes with the frontier at tx 1: within the first quarter of 8, not of 4."""
    got, _, _ = run(n, fallback_after=1)
    st = got.stats
    assert st.aborts == 1 and st.sequential_fallback is abandoned
    if not abandoned:
        assert st.executions == n + 1


def test_the_switch_off_ignores_the_threshold() -> None:
    got, _, _ = run(40, fallback_after=1, contention_fallback=False)
    st = got.stats
    assert st.aborts == 1 and st.executions == 41 and not st.sequential_fallback


def test_only_the_current_executed_incarnation_can_be_aborted() -> None:
    sched = Scheduler(100, window=8, fallback_after=3)
    assert sched.fallback_after == 3
    sched.status[5] = EXECUTED
    assert not sched.try_validation_abort(5, 1)  # a stale incarnation number
    sched.status[6] = READY_TO_EXECUTE
    assert not sched.try_validation_abort(6, 0)  # not executed (yet)
    assert sched.aborts == 0 and sched.window == 8
    sched.frontier = 9
    assert sched.try_validation_abort(5, 0)
    assert sched.aborts == 1 and sched.window == 4 and sched.frontier == 5
    assert not sched.try_validation_abort(5, 0)  # already aborting
    assert sched.aborts == 1 and not sched.abandoned
    assert Scheduler(100, window=8).fallback_after == 32  # the default is untouched
    assert Scheduler(100, window=None, fallback_after=1).fallback_after is None  # no window


def test_workers_window_and_closing() -> None:
    with pytest.raises(ValueError, match=r"^workers must be >= 1$"):
        AptosBlockSTM(ScriptExecutor(), 0)
    one = AptosBlockSTM(ScriptExecutor())
    assert one.workers == 1 and one.window == 4  # 4 per worker by default
    assert AptosBlockSTM(ScriptExecutor(), 3).window == 12
    assert AptosBlockSTM(ScriptExecutor(), 3, window=0).window == 0  # the paper as is
    threads: set[threading.Thread] = set()

    class Noting(ScriptExecutor):
        def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
            threads.add(threading.current_thread())
            return super().execute(tx, state, ctx)

    stm = AptosBlockSTM(Noting(), 2)
    txs = conflict_block(8)
    expected = Serial(ScriptExecutor()).execute_block(txs, DictState(), CTX)
    got = stm.execute_block(txs, DictState(), CTX)
    assert_same(expected, got, "first")
    # executions per worker: the coordinator, then worker 1 and 2, each thread numbered once
    assert len(got.stats.worker_txs) == 3 and sum(got.stats.worker_txs) == got.stats.executions
    again = stm.execute_block(txs, DictState(), CTX).stats
    assert len(again.worker_txs) == 3  # the same pool threads keep their numbers
    workers = threads - {threading.current_thread()}
    assert workers  # its pool threads ran transactions
    stm.close()
    assert not [t for t in workers if t.is_alive()]  # closing waits for them to end
    stm.close()  # twice is fine
    assert_same(expected, stm.execute_block(txs, DictState(), CTX), "after close")  # new pool
    stm.close()
