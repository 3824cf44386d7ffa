"""Scenario: scheduler determinism. Every strategy, substrate and worker count equals Serial.

``pytest scenarios/test_scheduler_determinism.py`` runs

* the Hypothesis property tests of ``tests/node/scheduler`` (generated blocks, the adversarial
  re-execution executor, worker processes, the real VM contracts, the stateful chain of blocks
  through the node's state store): ``HYPOTHESIS_PROFILE=nightly`` for tens of thousands of
  examples. When ``tests/`` is collected in the same session (``make test``), they already ran
  there and are not repeated;
* a fixed grid: the benchmark's workloads (the Block-STM paper's p2p accounts grid, one hot key,
  compute-heavy, mixed) on the RISC-V VM and on the reference executor, through every strategy
  with 1, 2, 4 and 8 threads and 2 worker processes, each block compared with Serial's.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.scheduler import ALL_WORKLOADS, CTX, DictCommit, make_workload, vm_available
from node.core.execution import BlockExecution
from node.scheduler.registry import PROCESS_CAPABLE, create

_TESTS = Path(__file__).resolve().parents[1] / "tests" / "node" / "scheduler"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    role: str


SCENARIO = Scenario(
    name="scheduler-determinism",
    description="Sealevel, Block-STM and the object DAG give Serial's receipts and write set on "
    "every block, for every worker count and substrate",
    role="node.scheduler",
)

if "test_determinism" not in sys.modules:  # not collected from tests/ in this session
    sys.path.insert(0, str(_TESTS))
    from test_determinism import (  # noqa: F401 - re-exported for pytest
        _fine_grained_gil_switching,
        process_fleet,
        script_fleet,
        test_adversarial_reexecution,
        test_large_blocks_match_serial,
        test_process_substrate_matches_serial,
        test_script_blocks_match_serial,
        test_transfers_match_serial,
        transfer_fleet,
    )
    from test_stateful import test_chain_of_blocks  # noqa: F401

    try:
        from test_vm_blocks import test_vm_blocks_match_serial, vm_fleet  # noqa: F401
    except pytest.skip.Exception:
        pass

GRID_BLOCK = 400
EXECUTORS = ["reference", *(["vm"] if vm_available() else [])]


def _same(a: BlockExecution, b: BlockExecution) -> bool:
    return a.outcomes == b.outcomes and dict(a.writes) == dict(b.writes)


@pytest.fixture(scope="module", autouse=True)
def _announce() -> Iterator[None]:
    print(f"\nscenario {SCENARIO.name} ({SCENARIO.role}): {SCENARIO.description}")
    yield


@pytest.mark.parametrize("workload", ALL_WORKLOADS)
@pytest.mark.parametrize("executor_kind", EXECUTORS)
def test_workload_grid(executor_kind: str, workload: str) -> None:
    wl = make_workload(workload, GRID_BLOCK, executor_kind, seed=7)
    executor = wl.executor()
    expected = create("Serial", executor, 1).execute_block(wl.txs, DictCommit(wl.state), CTX)
    configs = [(name, w, "threads") for name in ("SolanaParallel", "AptosBlockSTM", "SuiObjectDAG")
               for w in (1, 2, 4, 8)]
    configs += [(name, 2, "processes") for name in sorted(PROCESS_CAPABLE)]
    for name, w, substrate in configs:
        strategy = create(name, executor, w, executor_factory=wl.factory,
                          substrate=substrate, mp_context="fork")  # type: ignore[arg-type]
        try:
            got = strategy.execute_block(wl.txs, DictCommit(wl.state), CTX)
        finally:
            strategy.close()
        assert _same(expected, got), (
            f"{executor_kind}/{workload}: {name}/{substrate} w={w} differs from Serial"
        )
        assert got.stats.txs == GRID_BLOCK and got.stats.executions >= GRID_BLOCK
