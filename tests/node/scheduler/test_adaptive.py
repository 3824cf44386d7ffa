"""The adaptive gate: its decision rule (pure, no clock) and the wrapper's two paths."""

from __future__ import annotations

import pytest
from sched_model import ADD, CTX, DictState, ScriptExecutor, TxSpec, assert_same, build_block

from node.core.execution import BlockContext, BlockExecution, StateReader
from node.core.tx import Transaction
from node.scheduler import registry
from node.scheduler.adaptive import PARALLEL, SEQUENTIAL, Adaptive, ParallelGate
from node.scheduler.serial import Serial

N = 1_000  # a block large enough for the gate to consider parallel execution


def losing_gate() -> ParallelGate:
    """A gate that has warmed up and measured the parallel path at half the speed."""
    g = ParallelGate()
    assert g.decide(N) == PARALLEL  # nothing measured yet: try it
    g.observe_parallel(1e-5, 1e-5)  # the warm-up block: ignored
    assert g.gain is None and g.decide(N) == PARALLEL
    g.observe_parallel(1e-5, 2e-5)
    return g


def test_warm_up_block_is_not_measured() -> None:
    g = ParallelGate()
    g.decide(N)
    g.observe_parallel(1e-5, 1.0)  # pools starting: terribly slow, must not count
    assert g.gain is None and not g.settled
    assert g.decide(N) == PARALLEL


def test_losing_parallel_path_runs_in_order_and_probes_with_backoff() -> None:
    g = losing_gate()
    assert g.gain == pytest.approx(0.5)
    seen = []
    for _ in range(4 + 1 + 8 + 1 + 16 + 1):
        mode = g.decide(N)
        seen.append(mode)
        if mode == PARALLEL:
            g.observe_parallel(1e-5, 2e-5)  # still losing
        else:
            g.observe_sequential(1e-5, N)
    # 4 blocks in order, a probe, 8 in order, a probe, 16 in order, a probe: doubling back-off.
    probes = [i for i, m in enumerate(seen) if m == PARALLEL]
    assert probes == [4, 13, 30]
    assert g.probes == 4 and g.blocks[SEQUENTIAL] == 28


def test_backoff_is_capped() -> None:
    g = losing_gate()
    for _ in range(20):  # many losing probes
        while g.decide(N) == SEQUENTIAL:
            g.observe_sequential(1e-5, N)
        g.observe_parallel(1e-5, 2e-5)
    assert g._countdown == g.max_backoff


def test_winning_parallel_path_stays_parallel() -> None:
    g = ParallelGate()
    g.decide(N)
    g.observe_parallel(1e-5, 1e-5)
    for _ in range(10):
        assert g.decide(N) == PARALLEL
        g.observe_parallel(2e-4, 1.1e-4)  # 1.8x
    assert g.gain == pytest.approx(2e-4 / 1.1e-4)


def test_gain_is_smoothed_and_recovers() -> None:
    g = losing_gate()  # gain 0.5
    while g.decide(N) == SEQUENTIAL:
        g.observe_sequential(1e-5, N)
    g.observe_parallel(2e-5, 1e-5)  # a probe now wins 2x: EWMA 0.5*2 + 0.5*0.5 = 1.25
    assert g.gain == pytest.approx(1.25)
    assert g.decide(N) == PARALLEL


def test_lasting_workload_change_triggers_a_probe() -> None:
    g = losing_gate()
    assert g.decide(N) == SEQUENTIAL
    g.observe_sequential(1e-5, N)  # same cost per transaction: keep waiting
    for _ in range(g.drift_blocks):
        assert g.decide(N) == SEQUENTIAL
        g.observe_sequential(2.5e-4, N)  # 25x more expensive transactions arrived (compute-heavy)
    assert g.decide(N) == PARALLEL
    g2 = losing_gate()
    for _ in range(g2.drift_blocks):
        g2.decide(N)
        g2.observe_sequential(1e-6, N)  # and 10x cheaper ones also count as a change
    assert g2.decide(N) == PARALLEL


def test_alternating_mixes_and_small_blocks_do_not_trigger_probes() -> None:
    g = losing_gate()  # next probe after 4 blocks in order
    for i in range(4):
        assert g.decide(N) == SEQUENTIAL
        g.observe_sequential(2.5e-4 if i % 2 else 1e-5, N)  # two mixes, alternating
    g2 = losing_gate()
    for _ in range(4):
        assert g2.decide(N) == SEQUENTIAL
        g2.observe_sequential(2.5e-4, g2.min_txs - 1)  # drifted, but too small to say so
    assert g.decide(N) == PARALLEL and g2.decide(N) == PARALLEL  # just the regular back-off probe


def test_small_blocks_run_in_order_and_force_pins() -> None:
    g = ParallelGate()
    assert g.decide(g.min_txs - 1) == SEQUENTIAL
    assert ParallelGate(force=SEQUENTIAL).decide(N) == SEQUENTIAL
    pinned = ParallelGate(force=PARALLEL)
    assert pinned.settled and pinned.decide(2) == PARALLEL
    with pytest.raises(ValueError, match="force must be"):
        ParallelGate(force="sometimes")


def test_sample_size_bounds() -> None:
    g = ParallelGate()
    assert g.sample_size(16) == g.min_sample
    assert g.sample_size(3_200) == 100
    assert g.sample_size(1_000_000) == g.max_sample


# -- the wrapper
# -------------------------------------------------------------------------------------
def _block(n: int) -> tuple[list[Transaction], DictState]:
    # Alternating independent and chained increments: both paths see dependencies across the split.
    specs = [
        TxSpec(
            i % 7, 0, (((ADD, i % 3 if i % 2 else 10 + i, 1),),), frozenset(), frozenset(), 100_000
        )
        for i in range(n)
    ]
    b = build_block(40, {}, specs)
    return list(b.txs), DictState(dict(b.state))


@pytest.mark.parametrize("name", ["SolanaParallel", "AptosBlockSTM", "SuiObjectDAG"])
@pytest.mark.parametrize("force", [PARALLEL, SEQUENTIAL])
def test_both_paths_equal_serial(name: str, force: str) -> None:
    txs, state = _block(120)
    ex = ScriptExecutor()
    want = Serial(ex).execute_block(txs, state, CTX)
    s = registry.create(
        name, ex, 2, gate=ParallelGate(force=force, min_sample=5, sample_fraction=0.1)
    )
    try:
        got = s.execute_block(txs, state, CTX)
    finally:
        s.close()
    assert_same(want, got, f"{name} {force}")
    assert got.stats.mode == force and got.stats.txs == len(txs)
    assert got.stats.executions >= len(txs)
    if force == SEQUENTIAL:
        assert got.stats.workers == 1 and got.stats.gain == 0
    else:
        assert got.stats.gain > 0 and got.stats.workers == 2


class _Recording:
    """A strategy that records the blocks it is given (to see the wrapper's split)."""

    name = "Recording"
    workers = 2

    def __init__(self) -> None:
        self.calls: list[int] = []

    def execute_block(
        self, txs: list[Transaction], state: StateReader, ctx: BlockContext
    ) -> BlockExecution:
        self.calls.append(len(txs))
        return Serial(ScriptExecutor()).execute_block(txs, state, ctx)

    def close(self) -> None:
        pass


def test_parallel_path_runs_the_sample_in_order_first() -> None:
    inner = _Recording()
    a = Adaptive(inner, ScriptExecutor(), ParallelGate(force=PARALLEL))
    txs, state = _block(640)
    got = a.execute_block(txs, state, CTX)
    assert inner.calls == [640 - 20]  # 1/32 of the block (min 8) ran in order first
    assert_same(Serial(ScriptExecutor()).execute_block(txs, state, CTX), got, "split")


def test_registry_never_gates_serial_and_status_shape() -> None:
    assert isinstance(registry.create("Serial", ScriptExecutor(), 2, adaptive=True), Serial)
    s = registry.create("SuiObjectDAG", ScriptExecutor(), 2, adaptive=True)
    try:
        assert isinstance(s, Adaptive) and s.name == "SuiObjectDAG" and s.workers == 2
        assert set(s.gate.as_dict()) == {
            "force",
            "gain",
            "probes",
            "parallelBlocks",
            "sequentialBlocks",
        }
    finally:
        s.close()
