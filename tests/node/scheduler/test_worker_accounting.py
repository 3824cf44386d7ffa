"""Where a block's transactions ran (``BlockStats.path``, ``worker_txs``, ``chunks``,
``handed_back``): counters beyond the coordinator are non-zero exactly when workers ran; and
Block-STM's contention fallback has its own switch, independent of the adaptive gate."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from sched_model import (
    ADD,
    CTX,
    DictState,
    ScriptExecutor,
    TxSpec,
    assert_same,
    build_block,
    public_key,
    reference_executor,
    script_executor,
)

from node.core import keys
from node.core.codec import pack_u64
from node.core.execution import BlockContext, BlockStats, StateReader, TxOutcome
from node.core.tx import Transaction
from node.scheduler import blockstm, registry
from node.scheduler.adaptive import Adaptive, ParallelGate
from node.scheduler.blockstm import Scheduler
from node.scheduler.objectdag import SuiObjectDAG
from node.scheduler.sealevel import SolanaParallel
from node.scheduler.serial import Serial
from node.server.metrics import Metrics

PARALLEL = ("SolanaParallel", "AptosBlockSTM", "SuiObjectDAG")


def independent_block(n: int) -> list[Transaction]:
    """``n`` transactions from ``n`` senders, each adding to its own key."""
    specs = [TxSpec(i, 0, (((ADD, i, 1),),), frozenset(), frozenset(), 100_000) for i in range(n)]
    return list(build_block(n, {}, specs).txs)


def hot_counter_block(n: int, senders: int = 64) -> list[Transaction]:
    """``n`` increments of one counter slot (reference executor): full contention."""
    slot = b"hot"
    nonces = [0] * senders
    txs = []
    for i in range(n):
        s = 1 + i % senders
        txs.append(Transaction(
            chain_id=CTX.chain_id, nonce=nonces[s - 1], to=keys.COUNTER_DEMO, method="increment",
            args=slot + pack_u64(1), read_set=(),
            write_set=(keys.storage_key(keys.COUNTER_DEMO, slot),), gas_limit=100_000,
            public_key=public_key(s), signature=bytes(64),
        ))
        nonces[s - 1] += 1
    return txs


def consistent(st: BlockStats) -> None:
    assert sum(st.worker_txs) == st.executions, st
    ran_elsewhere = sum(st.worker_txs[1:]) > 0
    assert ran_elsewhere == (st.chunks > 0), st  # workers ran <=> work was handed to them
    d = st.as_dict()
    assert d["workerTxs"] == st.worker_txs and d["path"] == st.path and d["chunks"] == st.chunks


@pytest.fixture
def strategies() -> Iterator[list[object]]:
    made: list[object] = []
    yield made
    for s in made:
        s.close()  # type: ignore[attr-defined]


def make(strategies: list[object], name: str, workers: int, *, min_chunk: int | None = None,
         gate: ParallelGate | None = None, **kw: object) -> object:
    """A strategy on ScriptExecutor; ``min_chunk`` (Sealevel, DAG) forces every set onto the
    workers; ``gate`` wraps it in the adaptive gate."""
    ex = ScriptExecutor()
    s: object
    if min_chunk is not None:
        cls = {"SolanaParallel": SolanaParallel, "SuiObjectDAG": SuiObjectDAG}[name]
        s = cls(ex, workers, min_chunk=min_chunk)
        if gate is not None:
            s = Adaptive(s, ex, gate)  # type: ignore[arg-type]
    else:
        s = registry.create(name, ex, workers, gate=gate, **kw)  # type: ignore[arg-type]
    strategies.append(s)
    return s


def test_serial_runs_everything_on_the_coordinator() -> None:
    st = Serial(ScriptExecutor()).execute_block(independent_block(20), DictState(), CTX).stats
    assert (st.path, st.worker_txs, st.chunks, st.handed_back) == ("in-order", [20], 0, 0)
    consistent(st)


@pytest.mark.parametrize("name", ["SolanaParallel", "SuiObjectDAG"])
def test_substrate_strategies_count_chunks_and_worker_txs(strategies: list[object],
                                                          name: str) -> None:
    txs = independent_block(64)
    expected = Serial(ScriptExecutor()).execute_block(txs, DictState(), CTX)
    on_threads = make(strategies, name, 2, min_chunk=1)
    got = on_threads.execute_block(txs, DictState(), CTX)  # type: ignore[attr-defined]
    assert_same(expected, got, name)
    st = got.stats
    assert st.path == "strategy" and len(st.worker_txs) == 3  # coordinator + 2 threads
    assert st.chunks > 0 and sum(st.worker_txs[1:]) > 0 and st.handed_back == 0
    consistent(st)
    # one worker: everything inline on the coordinator
    inline = make(strategies, name, 1).execute_block(txs, DictState(), CTX).stats  # type: ignore[attr-defined]
    assert inline.worker_txs == [64] and inline.chunks == 0
    consistent(inline)
    # too few transactions to be worth a dispatch (default min_chunk): nothing went to workers
    small = independent_block(4)
    few = make(strategies, name, 2).execute_block(small, DictState(), CTX).stats  # type: ignore[attr-defined]
    assert few.path == "strategy" and few.chunks == 0 and few.worker_txs == [4, 0, 0]
    consistent(few)


def test_blockstm_counts_its_worker_threads(strategies: list[object]) -> None:
    txs = independent_block(64)
    st = make(strategies, "AptosBlockSTM", 2).execute_block(txs, DictState(), CTX).stats  # type: ignore[attr-defined]
    assert st.path == "strategy" and st.worker_txs[0] == 0  # the coordinator only waits
    assert st.chunks == sum(1 for n in st.worker_txs[1:] if n) >= 1
    consistent(st)
    one = make(strategies, "AptosBlockSTM", 1).execute_block(txs, DictState(), CTX).stats  # type: ignore[attr-defined]
    assert one.worker_txs == [one.executions] and one.chunks == 0
    consistent(one)


def test_the_gate_in_order_and_parallel(strategies: list[object]) -> None:
    txs = independent_block(64)
    seq = make(strategies, "SuiObjectDAG", 2, gate=ParallelGate(force="sequential"))
    st = seq.execute_block(txs, DictState(), CTX).stats  # type: ignore[attr-defined]
    assert (st.mode, st.path, st.worker_txs, st.chunks) == ("sequential", "in-order", [64], 0)
    consistent(st)
    gate = ParallelGate(force="parallel", min_sample=8, max_sample=8)
    par = make(strategies, "SuiObjectDAG", 2, gate=gate, min_chunk=1)
    st = par.execute_block(txs, DictState(), CTX).stats  # type: ignore[attr-defined]
    assert st.mode == "parallel" and st.path == "strategy" and st.worker_txs[0] >= 8
    assert st.chunks > 0
    consistent(st)


class _AbandonAfter(Scheduler):
    """A scheduler that gives up after its first few executions, as under heavy contention."""

    def finish_execution(self, idx: int, incarnation: int, wrote_new: bool) -> object:
        task = super().finish_execution(idx, incarnation, wrote_new)
        if idx >= 3 and self.fallback_after is not None:
            with self._lock:
                self.abandoned = self.done_marker = True
        return task


def test_blockstm_fallback_is_counted_on_the_coordinator(monkeypatch: pytest.MonkeyPatch,
                                                         strategies: list[object]) -> None:
    monkeypatch.setattr(blockstm, "Scheduler", _AbandonAfter)
    txs = independent_block(40)
    expected = Serial(ScriptExecutor()).execute_block(txs, DictState(), CTX)
    got = make(strategies, "AptosBlockSTM", 2).execute_block(txs, DictState(), CTX)  # type: ignore[attr-defined]
    assert_same(expected, got, "fallback")
    st = got.stats
    assert st.sequential_fallback and st.path == "contention-fallback"
    assert st.worker_txs[0] == 40  # the whole block again, in order, on the coordinator
    consistent(st)
    # the switch off: the same abandoning scheduler is never told to give up
    off = make(strategies, "AptosBlockSTM", 2, contention_fallback=False)
    st = off.execute_block(txs, DictState(), CTX).stats  # type: ignore[attr-defined]
    assert not st.sequential_fallback and st.path == "strategy"
    consistent(st)


@pytest.mark.parametrize("workers", [2, 4])
def test_contention_fallback_off_means_off(workers: int) -> None:
    """2,000 increments of one counter slot: the block the issue saw fall back at 2 and 4
    workers. With the gate off and the fallback off, Block-STM finishes its run."""
    txs = hot_counter_block(2000)
    expected = Serial(reference_executor()).execute_block(txs, DictState(), CTX)
    stm = registry.create("AptosBlockSTM", reference_executor(), workers, adaptive=False,
                          contention_fallback=False)
    try:
        got = stm.execute_block(txs, DictState(), CTX)
    finally:
        stm.close()
    assert_same(expected, got, f"AptosBlockSTM/{workers}")
    assert not got.stats.sequential_fallback and got.stats.path == "strategy"
    assert got.stats.chunks >= 1  # and its worker threads ran
    consistent(got.stats)


def test_the_scheduler_only_abandons_with_the_switch_on() -> None:
    for on in (True, False):
        sched = Scheduler(1000, window=8, contention_fallback=on)
        for idx in range(40):
            sched.status[idx] = blockstm.EXECUTED
            assert sched.try_validation_abort(idx, 0)
        assert sched.abandoned is on and sched.done_marker is on


def test_registry_passes_the_switch_through_the_gate() -> None:
    gated = registry.create("AptosBlockSTM", ScriptExecutor(), 2, adaptive=True,
                            contention_fallback=False)
    plain = registry.create("AptosBlockSTM", ScriptExecutor(), 2)
    try:
        assert gated.inner.contention_fallback is False  # type: ignore[attr-defined]
        assert plain.contention_fallback is True  # type: ignore[attr-defined]
    finally:
        gated.close()
        plain.close()


# -- worker processes: handed-back transactions -------------------------------------------------
UNSHIPPED = b"s" + bytes(20) + b"unshipped"


@dataclasses.dataclass
class ReadsUnshipped:
    """Reads a key nobody declares (nor writes): a worker process cannot serve it and hands
    the transaction back; the coordinator runs it (same result as Serial)."""

    inner: ScriptExecutor = dataclasses.field(default_factory=ScriptExecutor)

    def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
        state.get(UNSHIPPED)
        return self.inner.execute(tx, state, ctx)


def reads_unshipped() -> ReadsUnshipped:
    return ReadsUnshipped()


def test_process_workers_hand_back_and_the_coordinator_counts_them() -> None:
    txs = independent_block(64)
    expected = Serial(ReadsUnshipped()).execute_block(txs, DictState(), CTX)
    s = registry.create("SuiObjectDAG", ReadsUnshipped(), 2, executor_factory=reads_unshipped,  # type: ignore[arg-type]
                        substrate="processes", mp_context="fork")
    try:
        got = s.execute_block(txs, DictState(), CTX)
    finally:
        s.close()
    assert_same(expected, got, "processes")
    st = got.stats
    # every chunk a process got came back whole; the coordinator ran all 64 itself
    assert st.chunks > 0 and st.handed_back > 0 and st.worker_txs == [64, 0]
    assert st.executions == 64 and sum(st.worker_txs) == 64
    clean = registry.create("SuiObjectDAG", ScriptExecutor(), 2, executor_factory=script_executor,
                            substrate="processes", mp_context="fork")
    try:
        st = clean.execute_block(txs, DictState(), CTX).stats
    finally:
        clean.close()
    assert st.handed_back == 0 and st.chunks > 0 and st.worker_txs[1] > 0
    consistent(st)


# -- /metrics and the status totals -------------------------------------------------------------
def test_metrics_count_worker_txs_only_for_workers_that_ran(strategies: list[object]) -> None:
    m = Metrics()
    serial = Serial(ScriptExecutor()).execute_block(independent_block(10), DictState(), CTX)
    m.observe_block(serial.stats, 1)
    text = m.render().decode()
    assert 'dubhe_scheduler_worker_txs_total{worker="coordinator"} 10.0' in text
    assert 'worker="1"' not in text and "dubhe_scheduler_chunks_total 0.0" in text
    assert 'dubhe_scheduler_path_blocks_total{path="in-order"} 1.0' in text
    par = make(strategies, "SolanaParallel", 2, min_chunk=1)
    st = par.execute_block(independent_block(64), DictState(), CTX).stats  # type: ignore[attr-defined]
    m.observe_block(st, 2)
    text = m.render().decode()
    assert f"dubhe_scheduler_chunks_total {float(st.chunks)}" in text and st.chunks > 0
    for k, n in enumerate(st.worker_txs[1:], start=1):
        assert (f'dubhe_scheduler_worker_txs_total{{worker="{k}"}} {float(n)}' in text) == (n > 0)
    act = m.sched_activity.as_dict()
    assert act["lastBlock"]["number"] == 2 and act["lastBlock"]["workerTxs"] == st.worker_txs  # type: ignore[index]
    totals = act["totals"]
    assert totals["blocksByPath"]["in-order"] == 1 and totals["blocksByPath"]["strategy"] == 1  # type: ignore[index]
    assert totals["workerTxs"][0] == 10 + st.worker_txs[0] and totals["chunks"] == st.chunks  # type: ignore[index]
