"""Property tests: every strategy and worker count equals Serial on every generated block.

Determinism contract (node.core.execution): outcomes (status, return data, events, gas, writes,
reads, reason), receipt bytes and the net write set equal Serial's, for every block, strategy and
worker count. ``HYPOTHESIS_PROFILE=nightly`` scales the example counts by 200.

A failure prints the strategy, the worker count, the first differing transaction, the minimal
block (``Block.describe``) and Hypothesis' ``@reproduce_failure`` blob (``print_blob=True``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from sched_model import (
    CTX,
    AdversarialExecutor,
    Block,
    DictState,
    PinnedExecutor,
    ScriptExecutor,
    assert_same,
    reference_executor,
    script_blocks,
    script_executor,
    seeded_script_blocks,
    transfer_blocks,
)

from node.core.execution import BlockExecutor, TxExecutor
from node.core.tx import Transaction
from node.scheduler.adaptive import ParallelGate
from node.scheduler.blockstm import AptosBlockSTM
from node.scheduler.objectdag import SuiObjectDAG
from node.scheduler.registry import create
from node.scheduler.sealevel import SolanaParallel
from node.scheduler.serial import Serial

PARALLEL = ("SolanaParallel", "AptosBlockSTM", "SuiObjectDAG")
WORKERS = (1, 2, 4, 8)


def examples(fraction: float) -> int:
    """A share of the active profile's ``max_examples`` (default 100, nightly 20,000)."""
    return max(5, int(settings().max_examples * fraction))


@pytest.fixture(autouse=True, scope="module")
def _fine_grained_gil_switching() -> Iterator[None]:
    # CPython switches threads every 5 ms by default: a small block would then run on one
    # thread start to finish. Switch far more often so the strategies' threads interleave.
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def _fleet(executor: TxExecutor) -> list[tuple[str, int, BlockExecutor]]:
    fleet = [(name, w, create(name, executor, w)) for name in PARALLEL for w in WORKERS]
    # The same with every ready set dispatched to the workers, however small (by default
    # small sets run on the coordinator, which would leave the thread paths untested here).
    fleet += [
        (f"{cls.name}(min_chunk=1)", w, cls(executor, w, min_chunk=1))
        for cls in (SolanaParallel, SuiObjectDAG)
        for w in (2, 4)
    ]
    # Block-STM without its speculation window (the paper as is) and with the tightest one.
    fleet += [
        (f"AptosBlockSTM(window={win})", 4, AptosBlockSTM(executor, 4, window=win))
        for win in (0, 1)
    ]
    # Behind the adaptive gate, pinned to its parallel path with a small in-order sample: the
    # block is split (a prefix in order, the rest through the strategy) at many points.
    fleet += [
        (
            f"{name}+gate(sample 1/4)",
            2,
            create(
                name,
                executor,
                2,
                gate=ParallelGate(force="parallel", min_sample=1, sample_fraction=0.25),
            ),
        )
        for name in PARALLEL
    ]
    return fleet


@pytest.fixture(scope="module")
def script_fleet() -> Iterator[list[tuple[str, int, BlockExecutor]]]:
    fleet = _fleet(ScriptExecutor())
    yield fleet
    for _, _, s in fleet:
        s.close()


@pytest.fixture(scope="module")
def transfer_fleet() -> Iterator[list[tuple[str, int, BlockExecutor]]]:
    fleet = _fleet(reference_executor())
    yield fleet
    for _, _, s in fleet:
        s.close()


def check_all(
    block: Block, executor: TxExecutor, fleet: list[tuple[str, int, BlockExecutor]]
) -> None:
    note(block.describe())
    state = DictState(block.state)
    serial = Serial(executor).execute_block(block.txs, state, CTX)
    for name, w, strategy in fleet:
        got = strategy.execute_block(block.txs, state, CTX)
        assert_same(serial, got, f"{name} workers={w}")
        if name.startswith("AptosBlockSTM") and w > 1:
            event(f"Block-STM re-executed: {got.stats.re_executions > 0}")


def budget(fraction: float) -> settings:
    return settings(max_examples=examples(fraction), suppress_health_check=[HealthCheck.too_slow])


@budget(0.6)
@given(block=script_blocks())
def test_script_blocks_match_serial(
    block: Block, script_fleet: list[tuple[str, int, BlockExecutor]]
) -> None:
    """Small structured blocks (shrink to a minimal block): every op, status and access rule."""
    check_all(block, ScriptExecutor(), script_fleet)


@budget(0.3)
@given(block=seeded_script_blocks())
def test_large_blocks_match_serial(
    block: Block, script_fleet: list[tuple[str, int, BlockExecutor]]
) -> None:
    """Blocks of up to 500 transactions over 2..200 keys, hot keys, many or few senders."""
    check_all(block, ScriptExecutor(), script_fleet)


@budget(0.3)
@given(data=transfer_blocks())
def test_transfers_match_serial(
    data: tuple[dict[bytes, bytes | None], list[Transaction]],
    transfer_fleet: list[tuple[str, int, BlockExecutor]],
) -> None:
    """The reference executor's token: transfers, mints, reverts, undeclared receivers."""
    state_data, txs = data
    state = DictState(state_data)
    ex = reference_executor()
    serial = Serial(ex).execute_block(txs, state, CTX)
    for name, w, strategy in transfer_fleet:
        assert_same(serial, strategy.execute_block(txs, state, CTX), f"{name} workers={w}")


@budget(0.4)
@given(
    block=st.one_of(
        script_blocks(max_behaviours=3), seeded_script_blocks(max_txs=300, max_behaviours=3)
    ),
    name=st.sampled_from(PARALLEL),
    workers=st.sampled_from(WORKERS),
    window=st.sampled_from([None, 0, 1]),
)
def test_adversarial_reexecution(block: Block, name: str, workers: int, window: int | None) -> None:
    """Behaviour changes with each re-execution (aptos-core's dynamic proptests). The baseline
    replays each transaction's final behaviour serially; Block-STM must have committed exactly
    that, whatever it executed on the way."""
    note(block.describe())
    state = DictState(block.state)
    adversary = AdversarialExecutor()
    strategy = (
        AptosBlockSTM(adversary, workers, window=window)
        if name == "AptosBlockSTM" and window is not None
        else create(name, adversary, workers)
    )
    try:
        got = strategy.execute_block(block.txs, state, CTX)
    finally:
        strategy.close()
    assert sum(adversary.counts.values()) == got.stats.executions
    baseline = Serial(PinnedExecutor(adversary.final_choices(block.txs))).execute_block(
        block.txs, state, CTX
    )
    assert_same(baseline, got, f"{name} workers={workers} (adversarial)")
    event(f"{name} workers>1 re-executed: {workers > 1 and got.stats.re_executions > 0}")


@pytest.fixture(scope="module")
def process_fleet() -> Iterator[list[tuple[str, int, BlockExecutor]]]:
    # fork: the workers inherit this test's sys.path (the helper module is not a package).
    fleet: list[tuple[str, int, BlockExecutor]] = [
        (f"{cls.name}/processes(min_chunk={mc})", w,
         cls(ScriptExecutor(), w, executor_factory=script_executor, substrate="processes",
             mp_context="fork", min_chunk=mc))
        for cls in (SolanaParallel, SuiObjectDAG)
        for w in (2, 4)
        for mc in (1, 32)
    ]
    yield fleet
    for _, _, s in fleet:
        s.close()


@budget(0.2)
@given(block=st.one_of(script_blocks(), seeded_script_blocks()))
def test_process_substrate_matches_serial(
    block: Block, process_fleet: list[tuple[str, int, BlockExecutor]]
) -> None:
    """Worker processes with prefetched declared reads give Serial's result too."""
    check_all(block, ScriptExecutor(), process_fleet)
