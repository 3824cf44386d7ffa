"""Unit tests of the strategies' parts: batches, the DAG, MVMemory, the scheduler, the registry,
the declaration guard and the per-block metrics."""

from __future__ import annotations

import dataclasses
import time

import pytest
from sched_model import (
    ADD,
    CTX,
    READ,
    DictState,
    ScriptExecutor,
    TxSpec,
    assert_same,
    build_block,
    reference_executor,
    script_executor,
    sender_address,
    transfer_tx,
)

from node.core import keys
from node.core.execution import BlockContext, StateReader, TxOutcome
from node.core.tx import Transaction
from node.scheduler import objectdag, registry, sealevel
from node.scheduler._common import declared_sets
from node.scheduler.blockstm import (
    ESTIMATE,
    EXECUTED,
    AptosBlockSTM,
    MVMemory,
    ReadError,
    Scheduler,
)
from node.scheduler.serial import Serial
from node.vm.reference import ReferenceExecutor

PARALLEL = ("SolanaParallel", "AptosBlockSTM", "SuiObjectDAG")


def spec(sender: int, *ops: tuple[int, int, int]) -> TxSpec:
    return TxSpec(sender, 0, (tuple(ops),), frozenset(), frozenset(), 100_000)


def chain_block(n: int) -> list[Transaction]:
    """n transactions from n senders all incrementing key 0."""
    return list(build_block(4, {}, [spec(i, (ADD, 0, 1)) for i in range(n)]).txs)


def independent_block(n: int) -> list[Transaction]:
    return list(build_block(n, {}, [spec(i, (ADD, i, 1)) for i in range(n)]).txs)


# -- Sealevel batches ------------------------------------------------------------------------------
def test_sealevel_batches_follow_locks() -> None:
    txs = list(build_block(8, {}, [
        spec(0, (READ, 1, 0)),      # reader of 1: batch 0
        spec(1, (READ, 1, 0)),      # many readers: batch 0
        spec(2, (ADD, 1, 1)),       # writer after readers: batch 1
        spec(3, (ADD, 2, 1)),       # independent: batch 0
        spec(4, (READ, 1, 0)),      # reader after writer: batch 2
        spec(5, (ADD, 2, 1)),       # writer after writer of 2: batch 1
    ]).txs)
    assert sealevel.batches(declared_sets(txs)) == [0, 0, 1, 0, 2, 1]


def test_sealevel_chain_defers_everything_after_the_first() -> None:
    txs = chain_block(10)
    r = registry.create("SolanaParallel", ScriptExecutor(), 2).execute_block(txs, DictState(), CTX)
    assert r.stats.deferrals == 9 and r.stats.dag_depth == 10 and r.stats.dag_width == 1
    assert r.stats.conflict_rate == pytest.approx(0.9)


# -- object DAG ------------------------------------------------------------------------------------
def test_dag_shape() -> None:
    chain = chain_block(7)
    d = objectdag.build(chain, declared_sets(chain))
    assert (d.depth, d.width) == (7, 1)
    assert d.indegree == [0] + [1] * 6
    ind = independent_block(9)
    d = objectdag.build(ind, declared_sets(ind))
    assert (d.depth, d.width, d.fast_path) == (1, 9, 9)


def test_dag_write_after_read_edges() -> None:
    txs = list(
        build_block(4, {}, [spec(0, (READ, 1, 0)), spec(1, (READ, 1, 0)), spec(2, (ADD, 1, 5))]).txs
    )
    d = objectdag.build(txs, declared_sets(txs))
    assert d.successors[0] == [2] and d.successors[1] == [2] and d.indegree[2] == 2


# -- Block-STM parts -------------------------------------------------------------------------------
def test_mvmemory_reads_highest_lower_writer_and_estimates() -> None:
    mv = MVMemory(5)
    k = b"k"
    assert mv.read(k, 3) is None
    assert mv.record(1, 0, [], {k: b"a"}) is True
    assert mv.record(3, 0, [], {k: b"c"}) is True
    assert mv.read(k, 1) is None
    assert mv.read(k, 3) == ((1, 0), b"a")
    assert mv.read(k, 4) == ((3, 0), b"c")
    mv.convert_writes_to_estimates(3)
    with pytest.raises(ReadError) as e:
        mv.read(k, 4)
    assert e.value.blocking == 3
    # A new incarnation writing the same keys is not a new location; dropping a key removes it.
    assert mv.record(3, 1, [], {k: b"d"}) is False
    assert mv.record(3, 2, [], {}) is False
    assert mv.read(k, 4) == ((1, 0), b"a")
    assert repr(ESTIMATE) == "ESTIMATE"


def test_mvmemory_validation() -> None:
    mv = MVMemory(3)
    mv.record(0, 0, [], {b"x": b"1"})
    mv.record(2, 0, [(b"x", (0, 0)), (b"y", None)], {})
    assert mv.validate_read_set(2)
    mv.record(1, 0, [], {b"y": b"2"})  # tx 1 now writes y: tx 2 read storage for y
    assert not mv.validate_read_set(2)


def test_scheduler_runs_each_transaction_and_finishes() -> None:
    s = Scheduler(3)
    seen = []
    task = s.next_task()
    while task is not None:
        kind, idx, inc = task
        if kind == 0:
            seen.append(idx)
            task = s.finish_execution(idx, inc, wrote_new_location=True)
        else:
            task = s.finish_validation(idx, aborted=False)
        if task is None:
            task = s.next_task()
    assert seen == [0, 1, 2] and s.done_marker


def test_blockstm_single_worker_executes_each_once() -> None:
    txs = chain_block(20)
    r = registry.create("AptosBlockSTM", ScriptExecutor(), 1).execute_block(txs, DictState(), CTX)
    assert r.stats.executions == 20 and r.stats.aborts == 0 and r.stats.re_executions == 0


# -- registry --------------------------------------------------------------------------------------
def test_registry_names_and_errors() -> None:
    assert set(registry.STRATEGIES) == {"Serial", *PARALLEL}
    for name in registry.STRATEGIES:
        s = registry.create(name, ScriptExecutor(), 2)
        assert s.name == name
        s.close()
    with pytest.raises(KeyError, match="choose one of"):
        registry.create("Nope", ScriptExecutor(), 2)
    with pytest.raises(ValueError, match="executor_factory"):
        registry.create("SolanaParallel", ScriptExecutor(), 2, substrate="processes")
    with pytest.raises(ValueError, match="unknown substrate"):
        registry.create("SolanaParallel", ScriptExecutor(), 2, substrate="gpu")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", PARALLEL)
def test_empty_block(name: str) -> None:
    r = registry.create(name, ScriptExecutor(), 4).execute_block([], DictState(), CTX)
    assert r.outcomes == () and dict(r.writes) == {} and r.stats.txs == 0


# -- the declaration guard -------------------------------------------------------------------------
CODE_KEY = keys.code_key(bytes(19) + b"\x07")


@dataclasses.dataclass
class SystemKeyExecutor:
    """A VM-like executor that reads the contract's code key itself (undeclared) and, for txs
    whose first op key is 0, also writes it (an undeclared system write, like a deploy)."""

    inner: ScriptExecutor = dataclasses.field(default_factory=ScriptExecutor)

    def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
        code = state.get(CODE_KEY) or b""
        o = self.inner.execute(tx, state, ctx)
        writes = dict(o.writes)
        if tx.args[-6:-4] == b"\x00\x00":  # first op's key index is 0
            writes[CODE_KEY] = code + b"+"
        return dataclasses.replace(
            o, return_data=o.return_data + code, writes=writes, reads=(*o.reads, CODE_KEY)
        )


def system_key_executor() -> SystemKeyExecutor:
    return SystemKeyExecutor()


@pytest.mark.parametrize("name", ("SolanaParallel", "SuiObjectDAG"))
@pytest.mark.parametrize("substrate", ("threads", "processes"))
def test_undeclared_system_writes_fall_back_to_block_order(name: str, substrate: str) -> None:
    specs = [spec(i, (ADD, (i * 7) % 5, 1)) for i in range(40)]
    txs = list(build_block(5, {}, specs).txs)
    ex = SystemKeyExecutor()
    state = DictState({CODE_KEY: b"code"})
    expected = Serial(ex).execute_block(txs, state, CTX)
    s = registry.create(name, ex, 2, executor_factory=system_key_executor, substrate=substrate,  # type: ignore[arg-type]
                        mp_context="fork")
    try:
        got = s.execute_block(txs, state, CTX)
    finally:
        s.close()
    assert_same(expected, got, f"{name}/{substrate}")
    assert got.stats.executions == 2 * len(txs)  # the guard re-ran the block


def test_process_substrate_without_system_writes_runs_once() -> None:
    txs = independent_block(50)
    s = registry.create("SuiObjectDAG", ScriptExecutor(), 2, executor_factory=script_executor,
                        substrate="processes", mp_context="fork")
    try:
        got = s.execute_block(txs, DictState(), CTX)
    finally:
        s.close()
    assert_same(Serial(ScriptExecutor()).execute_block(txs, DictState(), CTX), got, "processes")
    assert got.stats.executions == 50 and got.stats.serial_equivalent_seconds > 0


# -- metrics ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PARALLEL)
def test_block_stats(name: str) -> None:
    txs = independent_block(64)
    r = registry.create(name, ScriptExecutor(), 2).execute_block(txs, DictState(), CTX)
    st = r.stats
    assert st.strategy == name and st.workers == 2 and st.txs == 64
    assert st.exec_seconds > 0 and st.serial_equivalent_seconds > 0 and st.parallel_efficiency > 0
    assert st.executions >= 64
    d = st.as_dict()
    assert {"parallelEfficiency", "conflictRate", "reExecutions"} <= set(d)
    if name != "AptosBlockSTM":
        assert st.conflict_rate == 0 and (st.dag_depth, st.dag_width) == (1, 64)


class _Yielding:
    """Yields the GIL at every state read so two worker threads really interleave."""

    def __init__(self, inner: ReferenceExecutor) -> None:
        self.inner = inner

    def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
        return self.inner.execute(tx, _YieldingReads(state), ctx)


class _YieldingReads:
    def __init__(self, inner: StateReader) -> None:
        self.inner = inner

    def get(self, key: bytes) -> bytes | None:
        time.sleep(0.0001)
        return self.inner.get(key)


def _hot_block(n: int) -> tuple[dict[bytes, bytes | None], list[Transaction]]:
    """Every transaction moves funds into account 1: one hot key, full contention."""
    state: dict[bytes, bytes | None] = {
        keys.balance_key(sender_address(a)): (1000).to_bytes(8, "big") for a in range(64)
    }
    nonces = [0] * 64
    txs = []
    for i in range(n):
        s = 2 + i % 62
        txs.append(transfer_tx(s, nonces[s], 1, 1, True))
        nonces[s] += 1
    return state, txs


def test_scheduler_abandons_after_enough_aborts() -> None:
    sched = Scheduler(1000, window=8)
    assert sched.fallback_after == 32
    for idx in range(40):
        sched.status[idx] = EXECUTED
        assert sched.try_validation_abort(idx, 0)
        assert sched.abandoned == (idx + 1 >= 32)
    assert sched.done_marker and sched.next_task() is None
    assert Scheduler(1000, window=None).fallback_after is None  # the paper as is: never


def test_blockstm_hot_key_equals_serial_with_or_without_fallback() -> None:
    # Whether the run crosses the abort threshold depends on thread timing; the result must
    # be Serial's either way, and there is no fallback below the threshold.
    state, txs = _hot_block(1000)
    serial = Serial(reference_executor()).execute_block(txs, DictState(state), CTX)
    stm = AptosBlockSTM(_Yielding(reference_executor()), workers=2)
    try:
        for _ in range(3):
            got = stm.execute_block(txs, DictState(state), CTX)
            assert got.outcomes == serial.outcomes and dict(got.writes) == dict(serial.writes)
            if got.stats.aborts < 32:
                assert not got.stats.sequential_fallback
    finally:
        stm.close()


def test_blockstm_without_contention_does_not_fall_back() -> None:
    txs = [transfer_tx(2 + i, 0, 200 + i, 1, True) for i in range(100)]
    state: dict[bytes, bytes | None] = {
        keys.balance_key(sender_address(2 + i)): (10).to_bytes(8, "big") for i in range(100)
    }
    stm = AptosBlockSTM(reference_executor(), workers=2)
    try:
        got = stm.execute_block(txs, DictState(state), CTX)
    finally:
        stm.close()
    assert not got.stats.sequential_fallback
    assert all(o.status.name == "SUCCESS" for o in got.outcomes)
