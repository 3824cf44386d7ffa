"""The 1006 scenario (s01, idle timeout) gives the same verdict on both backends.

nginx's read timeout is shorter than the gap between heads: naive subscribers die with 1006,
nginx logs ``upstream timed out (110) while proxying upgraded connection`` at info, and the
reconnecting client misses nothing. The case runs on local processes and on containers; every
expectation, every fault signal and the verdict must agree.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lab.orchestrate import Lab, LabSpec, LocalBackend
from lab.orchestrate.docker import DockerBackend
from lab.scenarios.model import Case, all_cases
from lab.scenarios.runner import Outcome, run_case

pytestmark = [pytest.mark.docker, pytest.mark.lab, pytest.mark.scenario]


def _case() -> Case:
    """s01/incident as the suite runs it, without its keepalive group: those clients ping every
    0.2 s against nginx's 0.5 s read timeout, a wall-clock margin that a loaded 2-core machine
    (the whole suite running beside other worktrees') breaks now and then on either backend. What
    is compared is the 1006 itself: the naive subscribers' closes and misses, nginx's upstream
    timeout line, and the reconnecting client missing, duplicating and reordering nothing."""
    case = next(c for c in all_cases("fast", only=["s01"]) if c.variant.name == "incident")
    groups = [g for g in case.params.groups if g.name != "keepalive"]
    expect = {phase: {k: v for k, v in conds.items() if not k.startswith("keepalive.")}
              for phase, conds in case.expect.items()}
    return dataclasses.replace(case, params=case.params.model_copy(update={"groups": groups}),
                               expect=expect)


async def _run(backend_name: str, image: str, tmp_path: Path) -> Outcome:
    case = _case()
    made: list[Lab] = []

    async def start(spec: LabSpec) -> Lab:
        backend = DockerBackend(image=image) if backend_name == "docker" else LocalBackend()
        lab = await Lab.start(spec, backend=backend, runs_root=tmp_path / "runs")
        made.append(lab)
        return lab

    try:
        return await run_case(case, start_lab=start, results_dir=tmp_path / backend_name)
    finally:
        for lab in made:
            await lab.down()


async def test_idle_timeout_1006_same_verdict_on_both_backends(lab_image: str,
                                                               tmp_path: Path) -> None:
    local = await _run("local", lab_image, tmp_path)
    docker = await _run("docker", lab_image, tmp_path)
    assert local.record["lab"]["run_id"] != docker.record["lab"]["run_id"]
    for outcome in (local, docker):
        assert outcome.passed, outcome.failures()
        assert outcome.record["figures"]["naive.closes_1006"] == 3
        assert outcome.record["figures"]["nginx.ws_upstream_timeout"] >= 3
    # Every expectation (incident, fix, health) and every fault signal: the same verdict.
    verdicts = [{(e["phase"], e["name"]): e["pass"] for e in o.record["expectations"]}
                for o in (local, docker)]
    assert verdicts[0] == verdicts[1] and all(verdicts[0].values())
    assert {phase for phase, _ in verdicts[0]} >= {"incident", "fix", "fault"}
    for outcome in (local, docker):
        log = Path(outcome.record["lab"]["run_dir"]) / "nginx" / "error.log"
        assert "upstream timed out (110: Connection timed out) while proxying upgraded " \
               "connection" in log.read_text()
