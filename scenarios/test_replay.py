"""Incident replay (``scenarios/incidents/*.toml``): every shipped incident reproduces its
symptom and its fixed variant meets its SLOs, each in a fresh lab, with the timeline written
beside the result record. The fast profile (``make test``) runs the short versions;
``--scenario-profile full`` (the nightly) the long ones. See docs/incidents.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from lab.orchestrate import Lab, LabSpec
from lab.scenarios.incident import MODES, Mode, incident_files, load
from lab.scenarios.replay import read_replay, replay
from lab.scenarios.runner import Outcome

ROOT = Path(__file__).resolve().parents[1]
CASES = [pytest.param(path, mode, id=f"{path.stem}-{mode}")
         for path in incident_files() for mode in MODES]


def progress(msg: str) -> None:
    print(msg, flush=True)


@pytest.mark.scenario
@pytest.mark.lab
@pytest.mark.timeout(1800)
@pytest.mark.parametrize(("path", "mode"), CASES)
async def test_incident_replays(path: Path, mode: Mode, request: pytest.FixtureRequest,
                                lab_factory: Callable[[LabSpec], Awaitable[Lab]],
                                scenario_results: Path,
                                record_outcome: Callable[[Outcome], None]) -> None:
    profile = request.config.getoption("--scenario-profile")
    incident = load(path)
    r = await replay(incident, mode=mode, profile=profile,
                     seed=request.config.getoption("--scenario-seed"),
                     results_dir=scenario_results, start_lab=lab_factory, progress=progress)
    record_outcome(r.outcome)
    assert r.holds, r.verdict() + "\n" + "\n".join(r.outcome.failures())
    assert r.timeline_error is None, r.timeline_error
    assert r.timeline_png is not None and r.timeline_png.stat().st_size > 10_000
    assert r.timeline_html is not None and "timeline.png" in r.timeline_html.read_text()
    meta = read_replay(r.case_dir)
    assert meta["mode"] == mode and meta["seed"] == r.seed and meta["holds"] is True
    assert f"--seed {r.seed}" in meta["command"]
    # the planned timeline is the one the seed gives, and each fault was really on
    planned = incident.case(mode, profile, r.seed).faults
    assert [f["label"] for f in meta["timeline"]] == [f.label() for f in planned]
    windows = r.outcome.record["fault_windows"]
    assert len(windows) == len(planned) and all(w["off"] is not None for w in windows)


NOT_REPRODUCED = '''
name = "never"
description = "nginx offers TLS 1.3 after all: nothing fails"
incident = "i"
fix = "f"
seed = 5
lab = { l1 = [] }
[workload]
kind = "tls"
watch_s = 0.5
attempts = [{ name = "modern", tls_min = "TLSv1.3" }]
[symptoms]
"modern.connected" = "== 0"
[slo]
"modern.connected" = "== 1"
[fixed]
description = "nothing to fix"
lab = { nginx = { ssl_protocols = "TLSv1.3" } }
'''


def _cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "lab", *args], cwd=cwd, capture_output=True,
                         text=True, timeout=300)
    return run.returncode, run.stdout, run.stderr


@pytest.mark.lab
def test_replay_that_does_not_reproduce_exits_1_naming_the_expectation(tmp_path: Path) -> None:
    (tmp_path / "never.toml").write_text(NOT_REPRODUCED)
    code, out, err = _cli("replay", str(tmp_path / "never.toml"), "--seed", "9", "--out",
                          str(tmp_path / "run"), cwd=ROOT)
    assert code == 1, out + err
    assert "== NOT REPRODUCED: never (repro, fast, seed 9)" in out
    assert "failed: modern.connected = 1 (want == 0)" in out
    assert "FAIL [incident] modern.connected: observed 1, expected == 0" in out
    assert "Traceback" not in err
    case = tmp_path / "run" / "scenarios" / "incident-never--repro"
    assert (case / "timeline.html").exists() and read_replay(case)["holds"] is False
    assert not list((tmp_path / "run" / "labs").glob("*/lab.pid"))  # torn down


@pytest.mark.parametrize(("args", "message"), [
    (["nope.toml"], "nope.toml: (file): no such file"),
    (["scenarios/incidents/l1-outage.toml", "--seed", "-1"], "--seed: -1: a seed is 0 <= N"),
])
def test_replay_bad_input_is_a_usage_error(args: list[str], message: str) -> None:
    code, out, err = _cli("replay", *args, cwd=ROOT)
    assert code == 2 and message in err and "Traceback" not in err, out + err


@pytest.mark.scenario
@pytest.mark.lab
@pytest.mark.timeout(600)
async def test_from_logs_round_trip(tmp_path: Path, request: pytest.FixtureRequest,
                                    capsys: pytest.CaptureFixture[str],
                                    lab_factory: Callable[[LabSpec], Awaitable[Lab]]) -> None:
    """Replay the 1006 incident, draft an incident from the nginx logs its lab wrote (the whole
    files: start-up included) with ``dubhe-lab incident from-logs``, replay the draft: the same
    symptom appears (and, in the full profile, the draft's fix holds)."""
    from lab.cli import main

    first = await replay(load(ROOT / "scenarios/incidents/1006-upstream-timeout.toml"),
                         mode="repro", results_dir=tmp_path / "first", start_lab=lab_factory,
                         progress=progress)
    assert first.holds, first.verdict()
    logs = Path(first.outcome.record["lab"]["run_dir"]) / "nginx"
    capsys.readouterr()
    code = main(["incident", "from-logs", "--nginx-error-log", str(logs / "error.log"),
                 "--nginx-access-log", str(logs / "access.log"),
                 "--out", str(tmp_path / "draft.toml"), "--name", "round-trip"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "proxy_read_timeout is not in the logs" in out and "start-up" in out
    draft = load(tmp_path / "draft.toml")
    assert draft.data.workload["kind"] == "subscribers"
    modes: list[Mode] = ["repro"]
    if request.config.getoption("--scenario-profile") == "full":
        modes.append("fixed")
    for mode in modes:
        again = await replay(draft, mode=mode, results_dir=tmp_path / "again",
                             start_lab=lab_factory, progress=progress)
        assert again.holds, again.verdict() + "\n" + "\n".join(again.outcome.failures())
        figures = again.outcome.record["figures"]
        if mode == "repro":  # the same symptom as the original
            assert figures["users.closes_1006"] >= 1 and figures["nginx.ws_upstream_timeout"] >= 1
        else:
            assert figures["users.closes"] == 0
