"""``pytest scenarios``: the scenario suite's options, the parametrization over scenario files,
and the one-line verdict per case at the end of the run.

Options
    ``--scenario-profile fast|full``  fast (default, short runs, what ``make test`` uses) or the
                                      long versions (``make nightly``)
    ``--scenario-results DIR``        where result records and histories go (default:
                                      reports/scenarios/<timestamp>)
    ``--scenario NAME``               only this scenario (name, ``s03`` or ``3``; repeatable)
    ``--scenario-seed N``             the labs' seed (default: random, printed and recorded)
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from lab.scenarios.model import Case, ScenarioError, all_cases
from lab.scenarios.runner import Outcome

_OUTCOMES = pytest.StashKey[list[Outcome]]()
_RESULTS = pytest.StashKey[Path]()
_CASES = pytest.StashKey[tuple[list[Case], list[Case]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("scenarios", "Dubhe Channel scenarios")
    group.addoption("--scenario-profile", choices=["fast", "full"], default="fast",
                    help="fast (default): short versions; full: the long ones (make nightly)")
    group.addoption("--scenario-results", type=Path, default=None,
                    help="directory for result records and histories "
                         "(default: reports/scenarios/<timestamp>)")
    group.addoption("--scenario", action="append", default=[],
                    help="run only this scenario (name, s03 or 3; repeatable)")
    group.addoption("--scenario-seed", type=int, default=None,
                    help="seed of every scenario's lab (default: random, printed)")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_OUTCOMES] = []
    # Scenario data is checked before anything is collected: a bad file or an unknown
    # --scenario name is a usage error naming file and key, not a collection traceback.
    profile = config.getoption("--scenario-profile")
    only = config.getoption("--scenario")
    try:
        cases = all_cases(profile, only=only)
        nightly = [] if profile == "full" else [
            c for c in all_cases("full", only=only) if c.variant.only == ["full"]]
    except ScenarioError as exc:
        raise pytest.UsageError(str(exc)) from None
    seed = config.getoption("--scenario-seed")
    if seed is not None:
        cases = [_seeded(c, seed) for c in cases]
        nightly = [_seeded(c, seed) for c in nightly]
    config.stash[_CASES] = (cases, nightly)


def results_dir(config: pytest.Config) -> Path:
    if _RESULTS not in config.stash:
        given = config.getoption("--scenario-results")
        path = given or config.rootpath / "reports" / "scenarios" / time.strftime("%Y%m%d-%H%M%S")
        path.mkdir(parents=True, exist_ok=True)
        config.stash[_RESULTS] = path.resolve()
    return config.stash[_RESULTS]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    cases, nightly = metafunc.config.stash[_CASES]
    params = [pytest.param(c, id=c.id, marks=[pytest.mark.scenario, pytest.mark.lab,
                                              pytest.mark.timeout(_budget(c))]) for c in cases]
    params += [
        pytest.param(
            c,
            id=c.id,
            marks=[
                pytest.mark.scenario,
                pytest.mark.lab,
                pytest.mark.nightly,
                pytest.mark.timeout(_budget(c)),
            ],
        )
        for c in nightly
    ]
    metafunc.parametrize("case", params)


def _seeded(case: Case, seed: int) -> Case:
    return dataclasses.replace(case, spec=case.spec.model_copy(update={"seed": seed}))


def _budget(case: Case) -> int:
    return 1800 if case.profile == "full" else 240


@pytest.fixture
def scenario_results(request: pytest.FixtureRequest) -> Path:
    return results_dir(request.config)


@pytest.fixture
def record_outcome(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    def record(outcome: Outcome) -> None:
        request.config.stash[_OUTCOMES].append(outcome)

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    outcomes = config.stash.get(_OUTCOMES, [])
    if not outcomes:
        return
    tr = terminalreporter
    tr.section(f"scenarios ({config.getoption('--scenario-profile')} profile): "
               f"results in {results_dir(config)}")
    for o in outcomes:
        tr.write_line(o.verdict_line())
    passed = sum(o.passed for o in outcomes)
    tr.write_line(f"{passed}/{len(outcomes)} scenario cases passed")

