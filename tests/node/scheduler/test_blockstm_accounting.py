"""What Block-STM reports about a block besides its outcomes: worker numbers that tell the pool
threads apart, busy time summed over every execution (also on the contention fallback), an
executor's own exception passed through unchanged, and the speculation window's TCP-like
regrowth after an abort. Interleavings are forced with a barrier, not left to thread timing."""

from __future__ import annotations

import threading
import time

import pytest
from forced import Ordered, conflict_block
from sched_model import ADD, CTX, DictState, ScriptExecutor, TxSpec, assert_same, build_block

from node.core.execution import BlockContext, StateReader, TxOutcome
from node.core.tx import Transaction
from node.scheduler.blockstm import AptosBlockSTM, Scheduler
from node.scheduler.serial import Serial

SLEEP_S = 0.002


def independent_block(n: int) -> list[Transaction]:
    """``n`` transactions, each adding to its own key: no conflict, no abort."""
    specs = [TxSpec(i, 0, (((ADD, i, 1),),), frozenset(), frozenset(), 100_000)
             for i in range(n)]
    return list(build_block(n, {}, specs).txs)


class Slow:
    """Runs scripts; each execution takes at least ``SLEEP_S``."""

    def __init__(self) -> None:
        self.inner = ScriptExecutor()

    def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
        time.sleep(SLEEP_S)
        return self.inner.execute(tx, state, ctx)


class Rendezvous:
    """The first execution on each of two pool threads waits for the other: both threads of a
    two-worker pool run a transaction, whatever the scheduling."""

    def __init__(self) -> None:
        self.inner = ScriptExecutor()
        self.barrier = threading.Barrier(2, timeout=20)
        self.met: set[int] = set()
        self.names: set[str] = set()
        self.lock = threading.Lock()

    def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
        me = threading.get_ident()
        with self.lock:
            self.names.add(threading.current_thread().name)
            first = me not in self.met and len(self.met) < 2
            self.met.add(me)
        if first:
            self.barrier.wait()  # BrokenBarrierError (a failure) if the other never comes
        return self.inner.execute(tx, state, ctx)


def test_each_pool_thread_has_its_own_worker_number() -> None:
    txs = independent_block(8)
    ex = Rendezvous()
    stm = AptosBlockSTM(ex, 2)
    try:
        got = stm.execute_block(txs, DictState(), CTX)
    finally:
        stm.close()
    # the pool's threads say whose they are (py-spy, thread dumps)
    assert len(ex.names) == 2 and all(n.startswith("blockstm_") for n in ex.names), ex.names
    assert_same(Serial(ScriptExecutor()).execute_block(txs, DictState(), CTX), got, "rendezvous")
    per = got.stats.worker_txs
    # [coordinator, worker 1, worker 2]: the coordinator only waits, both workers ran something
    assert len(per) == 3 and per[0] == 0 and per[1] >= 1 and per[2] >= 1, per
    assert sum(per) == got.stats.executions == 8
    assert got.stats.chunks == 2  # two worker runs that executed something


@pytest.mark.parametrize("workers", [1, 2])
def test_busy_time_adds_up_every_execution(workers: int) -> None:
    txs = independent_block(8)
    stm = AptosBlockSTM(Slow(), workers)
    try:
        st = stm.execute_block(txs, DictState(), CTX).stats
    finally:
        stm.close()
    assert st.executions == 8 and st.aborts == 0
    assert st.serial_equivalent_seconds >= 8 * SLEEP_S
    # no thread is busy for longer than the block took, which is its own duration
    assert st.serial_equivalent_seconds <= st.exec_seconds * max(workers, 1)
    assert 8 * SLEEP_S / max(workers, 1) <= st.exec_seconds < 60


def test_the_contention_fallback_counts_the_in_order_run_too() -> None:
    """One forced abort with ``fallback_after=1`` abandons the block: its busy time is the
    speculative executions' plus the whole in-order run (at least ``n`` executions)."""
    txs = conflict_block(8)
    ex = Ordered(txs)
    inner = ex.inner

    class SlowOrdered(ScriptExecutor):
        def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
            time.sleep(SLEEP_S)
            return inner.execute(tx, state, ctx)

    ex.inner = SlowOrdered()
    stm = AptosBlockSTM(ex, 2, fallback_after=1)
    try:
        got = stm.execute_block(txs, DictState(), CTX)
    finally:
        stm.close()
    st = got.stats
    assert st.sequential_fallback and st.aborts >= 1
    assert_same(Serial(ScriptExecutor()).execute_block(txs, DictState(), CTX), got, "fallback")
    assert st.executions >= len(txs) + 2  # the in-order run and the two that met
    assert st.serial_equivalent_seconds >= st.executions * SLEEP_S
    assert st.serial_equivalent_seconds <= st.exec_seconds * 3  # two workers + the fallback


class Boom(Exception):
    pass


class Raising:
    """Runs scripts, but raises ``error`` for one transaction (an executor bug)."""

    def __init__(self, bad: bytes, error: BaseException) -> None:
        self.bad = bad
        self.error = error
        self.inner = ScriptExecutor()

    def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
        if tx.hash == self.bad:
            raise self.error
        return self.inner.execute(tx, state, ctx)


@pytest.mark.parametrize("workers", [1, 2])
def test_an_executor_exception_reaches_the_caller_unchanged(workers: int) -> None:
    txs = independent_block(6)
    stm = AptosBlockSTM(Raising(txs[3].hash, Boom("executor bug at the bad transaction")), workers)
    try:
        with pytest.raises(Boom, match=r"^executor bug at the bad transaction$"):
            stm.execute_block(txs, DictState(), CTX)
    finally:
        stm.close()


def test_after_an_abort_the_window_regrows_one_step_per_window_of_progress() -> None:
    """An abort halves the window and starts its credit again from zero: the window grows back
    by one only after a whole (new) window's worth of transactions has passed the frontier."""
    s = Scheduler(100, window=8)
    s.finish_execution(10, 0, False)
    assert s.try_validation_abort(10, 0) and s.window == 4
    for i in range(3):  # three frontier steps: credit 3 of the 4 needed
        s.finish_execution(i, 0, False)
    assert s.frontier == 3 and s.window == 4
    s.finish_execution(20, 0, False)
    assert s.try_validation_abort(20, 0) and s.window == 2  # the credit of 3 is gone too
    s.finish_execution(3, 0, False)
    assert s.frontier == 4 and s.window == 2  # 1 step of the 2 needed
    s.finish_execution(4, 0, False)
    assert s.frontier == 5 and s.window == 3  # 2 of 2: one more
    assert s.aborts == 2


@pytest.mark.parametrize(("n", "on_pool"), [(1, False), (2, True), (3, True)])
def test_a_block_of_one_runs_on_the_caller_and_two_or_more_on_the_pool(n: int,
                                                                      on_pool: bool) -> None:
    txs = independent_block(n)
    stm = AptosBlockSTM(ScriptExecutor(), 2)
    try:
        st = stm.execute_block(txs, DictState(), CTX).stats
    finally:
        stm.close()
    assert sum(st.worker_txs) == n and len(st.worker_txs) == 3
    assert (st.worker_txs[0] == 0) is on_pool, st.worker_txs


class SchedulerBug(BaseException):
    """Not an Exception: what the executor cannot turn into an outcome (like an internal
    failure of the scheduler itself) stops every worker."""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("workers", [1, 2])
def test_a_base_exception_in_a_worker_stops_the_block_and_reaches_the_caller(
    workers: int,
) -> None:
    txs = independent_block(16)
    stm = AptosBlockSTM(Raising(txs[5].hash, SchedulerBug("stop everyone")), workers)
    try:
        with pytest.raises(SchedulerBug, match=r"^stop everyone$"):
            stm.execute_block(txs, DictState(), CTX)
        # the pool is still usable afterwards
        ok = stm.execute_block(independent_block(4), DictState(), CTX)
        assert len(ok.outcomes) == 4
    finally:
        stm.close()


def test_a_pool_wider_than_the_block_still_reports_every_worker() -> None:
    """Four workers, two transactions: two pool runs; the per-worker list has a slot for each
    of the four workers (and the coordinator), the idle ones at zero."""
    stm = AptosBlockSTM(ScriptExecutor(), 4)
    try:
        st = stm.execute_block(independent_block(2), DictState(), CTX).stats
    finally:
        stm.close()
    assert len(st.worker_txs) == 5 and sum(st.worker_txs) == 2 and st.worker_txs[0] == 0
