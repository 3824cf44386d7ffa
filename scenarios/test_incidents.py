"""The production incidents, one test per scenario variant (``scenarios/data/*.toml``).

Each case brings up its own lab, runs its workload under its fault timeline, writes its result
record and histories (``--scenario-results``) and passes only if every expectation held and
every declared fault signal was observed. See docs/scenarios.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from lab.orchestrate import Lab, LabSpec
from lab.scenarios.model import Case
from lab.scenarios.runner import Outcome, run_case


def progress(msg: str) -> None:
    print(msg, flush=True)


async def test_scenario(case: Case, lab_factory: Callable[[LabSpec], Awaitable[Lab]],
                        scenario_results: Path, record_outcome: Callable[[Outcome], None]) -> None:
    outcome = await run_case(case, start_lab=lab_factory, results_dir=scenario_results,
                             progress=progress)
    record_outcome(outcome)
    assert outcome.passed, f"{case.id}: {outcome.record['summary']}\n" + "\n".join(
        outcome.failures()
    )
