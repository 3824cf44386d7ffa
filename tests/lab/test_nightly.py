"""``dubhe-lab nightly`` and ``dubhe-lab report``: parts run one after another into one run
directory, a failing or hanging part is recorded and the rest still runs, an interrupted run
says how far it got, regressions make the exit status 1; and a real quick part end to end."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from timing import scaled

from lab import nightly
from lab.cli import main as cli_main
from lab.nightly import PartSpec

PY = sys.executable
FIXTURE_RUN = Path(__file__).resolve().parents[1] / "reports" / "fixtures" / "run"


def part(name: str, code: str, *, timeout_s: float = 30, kind: str = "bench",
         outputs: list[str] | None = None) -> PartSpec:
    """A part running ``python -c code`` (``{run}`` is the run directory)."""
    return PartSpec(name, kind, [PY, "-c", code], outputs or [], timeout_s)


def _fake_history(root: Path, values: list[float]) -> None:
    """Previous quick runs (rendered: metrics.json only) with bench.fake.p99_ms = values."""
    t0 = time.time() - 86400 * (len(values) + 1)
    for i, v in enumerate(values):
        d = root / f"2026010{i}-000000-quick"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({
            "version": 1, "id": d.name, "mode": "quick", "started": t0 + 86400 * i,
            "values": {"bench.fake.p99_ms": v}, "directions": {"bench.fake.p99_ms": "lower"},
            "summary": {}}))


def _writes_bench(value: float) -> PartSpec:
    data = {"bench": "fake", "version": 1, "started": time.time(), "argv": [],
            "figures": {"p99_ms": value},
            "targets": {"p99_ms": {"target": 1000, "value": value, "pass": True,
                                   "direction": "lower", "unit": "ms"}}}
    return PartSpec("bench-fake", "bench",
                    [PY, "-c", "import sys, json; open(sys.argv[1], 'w').write(sys.argv[2])",
                     "{run}/bench/fake.json", json.dumps(data)], ["bench/fake.json"], 30)


def run(tmp_path: Path, parts: list[PartSpec], lines: list[str] | None = None, **kw: object
        ) -> tuple[int, Path]:
    out = lines if lines is not None else []
    code = nightly.nightly(root=tmp_path / "nightly", quick=True, seed=5, parts=parts,
                           say=out.append, heartbeat_s=0.3, **kw)  # type: ignore[arg-type]
    (run_dir,) = [d for d in (tmp_path / "nightly").iterdir() if d.is_dir() and
                  d.name != "index-img"]
    return code, run_dir


def parts_json(run_dir: Path) -> dict[str, dict[str, object]]:
    data = json.loads((run_dir / "parts.json").read_text())
    assert data["mode"] == "quick" and data["seed"] == 5 and data["ended"] >= data["started"]
    return {p["name"]: p for p in data["parts"]}


def test_a_failing_or_hanging_part_is_recorded_and_the_rest_still_runs(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    hang = ("import subprocess, sys, time; "
            f"c = subprocess.Popen(['sleep', '60']); open(r'{pidfile}', 'w').write(str(c.pid)); "
            "print('waiting for nothing', flush=True); time.sleep(60)")
    lines: list[str] = []
    code, run_dir = run(tmp_path, [
        part("first", "print('one')"),
        part("broken", "import sys; print('about to fail'); sys.exit(3)"),
        part("hangs", hang, timeout_s=1.5),
        _writes_bench(42.0),
    ], lines)
    assert code == nightly.EXIT_PARTS_FAILED
    p = parts_json(run_dir)
    assert [(n, r["status"], r["exit_code"]) for n, r in p.items()] == [
        ("first", "passed", 0), ("broken", "failed", 3), ("hangs", "timeout", None),
        ("bench-fake", "passed", 0)]
    assert json.loads((run_dir / "bench" / "fake.json").read_text())["figures"] == {
        "p99_ms": 42.0}
    assert p["broken"]["note"] == "about to fail"
    assert 1.5 <= float(p["hangs"]["duration_s"]) < 20  # type: ignore[arg-type]
    assert (run_dir / "logs" / "first.log").read_text().endswith("one\n")
    child = int(pidfile.read_text())
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie", \
        "the timed-out part's children were not stopped"
    assert "[ 2/4] broken           failed" in "\n".join(lines)
    assert any("hangs" in ln and "waiting for nothing" in ln for ln in lines)  # heartbeat
    assert (run_dir / "report" / "index.html").exists()
    assert (tmp_path / "nightly" / "index.html").exists()


def test_outputs_land_in_the_run_directory_and_are_reported(tmp_path: Path) -> None:
    writes = PartSpec("writes", "bench", [PY, "-c", "import sys, pathlib; "
                                          "pathlib.Path(sys.argv[1], 'x.txt').write_text('ok')",
                                          "{run}"], [], 30)
    rc, run_dir = run(tmp_path, [writes, part("bench-fake", "", outputs=["bench/fake.json"])])
    assert (run_dir / "x.txt").read_text() == "ok"
    assert rc == nightly.EXIT_OK  # both parts passed...
    page = (run_dir / "report" / "index.html").read_text()
    # ...but the bench part promised bench/fake.json and wrote nothing: named on the page
    assert "bench/fake.json" in page and "missing (no such file)" in page


def test_a_regression_is_flagged_at_the_top_and_exits_1(tmp_path: Path) -> None:
    _fake_history(tmp_path / "nightly", [50.0, 52.0, 49.0, 51.0, 50.0])
    lines: list[str] = []
    code = nightly.nightly(root=tmp_path / "nightly", quick=True, seed=5,
                           parts=[_writes_bench(90.0)], say=lines.append, heartbeat_s=0.3)
    assert code == nightly.EXIT_REGRESSION
    text = "\n".join(lines)
    assert "1 REGRESSION(S) against the previous 5 quick run(s)" in text
    assert "bench.fake.p99_ms: 90 vs median 50 of 5 runs" in text
    (run_dir,) = [d for d in (tmp_path / "nightly").iterdir() if (d / "parts.json").exists()]
    page = (run_dir / "report" / "index.html").read_text()
    assert page.index('id="regressions"') < page.index('id="summary"')  # at the top
    trends = json.loads((run_dir / "trends.json").read_text())
    verdicts = {j["metric"]: j["verdict"] for j in trends["judgements"]}
    assert verdicts == {"bench.fake.p99_ms": "regression", "part.bench-fake.duration_s": "new"}
    index = (tmp_path / "nightly" / "index.html").read_text()
    assert 'class="badge regression">1<' in index


def test_noise_within_the_spread_is_not_flagged(tmp_path: Path) -> None:
    _fake_history(tmp_path / "nightly", [50.0, 58.0, 44.0, 55.0, 47.0])
    lines: list[str] = []
    code = nightly.nightly(root=tmp_path / "nightly", quick=True, seed=5,
                           parts=[_writes_bench(60.0)], say=lines.append, heartbeat_s=0.3)
    assert code == nightly.EXIT_OK, lines
    assert "no regressions against the previous 5 quick run(s)" in "\n".join(lines)


def test_an_interrupted_run_records_how_far_it_got(tmp_path: Path) -> None:
    """SIGTERM (as a CI runner stops a job) during the second part: it is stopped, recorded as
    interrupted, the third is skipped, the report still renders, exit status 130."""
    code, run_dir = run(tmp_path, [
        part("first", "print('one')"),
        part("stops", "import os, signal, time; os.kill(os.getppid(), signal.SIGTERM); "
                      "time.sleep(60)"),
        part("never", "print('not run')"),
    ])
    assert code == nightly.EXIT_INTERRUPTED
    p = parts_json(run_dir)
    assert [r["status"] for r in p.values()] == ["passed", "interrupted", "skipped"]
    assert (run_dir / "report" / "index.html").exists()
    assert signal.getsignal(signal.SIGTERM) is not nightly._raise_interrupt  # restored


def test_select_by_name_or_kind() -> None:
    parts = nightly.plan(quick=True, seed=1)
    names = [p.name for p in nightly.select(parts, ["bench"], ["bench-proxy", "bench-swarm"])]
    assert names == ["bench-lab", "bench-latency", "bench-rpc", "bench-ws-fanout", "bench-vm",
                     "bench-loader", "bench-loader-l1", "bench-l1-faults", "bench-scheduler"]
    with pytest.raises(ValueError, match="unknown part 'bench-nope'; parts: scenarios, swarm"):
        nightly.select(parts, ["bench-nope"], [])
    # every dubhe-bench command is in the plan, each writing its JSON into the run
    benches = {p.name.removeprefix("bench-") for p in parts if p.kind == "bench"}
    assert benches == set(nightly.BENCHES)
    full = nightly.plan(quick=False, seed=1)
    props = next(p for p in full if p.name == "properties")
    assert props.env == {"HYPOTHESIS_PROFILE": "nightly"}
    # mutation testing writes its result files where the report reads them; quick runs only
    # the targets marked quick
    mut = {q: next(p for p in nightly.plan(quick=q, seed=1) if p.kind == "mutation").argv
           for q in (True, False)}
    assert mut[False][mut[False].index("--out") + 1] == "{run}/mutation"
    assert "--quick" in mut[True] and "--quick" not in mut[False]
    assert "--scenario-profile" in (s := next(p for p in full if p.name == "scenarios").argv) \
        and s[s.index("--scenario-profile") + 1] == "full"


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "lab", *args], capture_output=True, text=True,
                          timeout=timeout)


def main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``dubhe-lab ARGS`` in this process (the smoke test below runs the real command)."""
    code = cli_main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_dry_run_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    code, out, err = main(capsys, "nightly", "--quick", "--dry-run", "--seed", "9", "--out",
                          str(tmp_path))
    assert code == 0, err
    assert "== nightly (quick, seed 9): 15 parts, in order" in out
    assert "HYPOTHESIS_PROFILE=default" in out and "--scenario-seed 9" in out
    assert not any(tmp_path.iterdir())  # nothing ran, nothing written
    code, _, err = main(capsys, "nightly", "--only", "nope", "--out", str(tmp_path))
    assert code == 2 and err.startswith("dubhe-lab: unknown part 'nope'")
    rules = tmp_path / "rules.toml"
    rules.write_text("window = 0\n")
    code, _, err = main(capsys, "report", str(tmp_path), "--trends", str(rules))
    assert code == 2 and "window: must be at least 1" in err
    code, _, err = main(capsys, "report", str(tmp_path / "nope"))
    assert code == 2 and "not a directory" in err


def test_cli_report_rerenders_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "nightly" / "20261201-163300-quick"
    shutil.copytree(FIXTURE_RUN, run_dir)
    code, out, err = main(capsys, "report", str(run_dir))
    assert code == 0, out + err
    assert f"== report: {run_dir / 'report' / 'index.html'}" in out
    assert "unreadable: bench/lab.json: missing (no such file)" in out
    assert (tmp_path / "nightly" / "index.html").exists()


@pytest.mark.lab
def test_smoke_a_real_quick_part_end_to_end(tmp_path: Path) -> None:
    """``dubhe-lab nightly --quick --only bench-loader``: the real command, a real benchmark
    writing its JSON, parts.json, the report and the index."""
    t0 = time.monotonic()
    done = cli("nightly", "--quick", "--only", "bench-loader", "--seed", "3", "--out",
               str(tmp_path), timeout=240)
    assert done.returncode in (0, nightly.EXIT_PARTS_FAILED), done.stdout + done.stderr
    (run_dir,) = [d for d in tmp_path.iterdir() if (d / "parts.json").exists()]
    assert run_dir.name.endswith("-quick")
    p = parts_json_any(run_dir)
    assert p["bench-loader"]["status"] in ("passed", "failed")
    data = json.loads((run_dir / "bench" / "loader.json").read_text())
    assert data["bench"] == "loader" and data["version"] == 1
    assert data["targets"]["hit_ratio"]["judged"] is False  # quick: below the target's run
    out = done.stdout
    assert "   [ 1/1] bench-loader     running" in out and "== report: " in out
    page = (run_dir / "report" / "index.html").read_text()
    assert "cached_speedup" in page and "not judged" in page
    assert time.monotonic() - t0 < 120


def parts_json_any(run_dir: Path) -> dict[str, dict[str, object]]:
    return {p["name"]: p for p in json.loads((run_dir / "parts.json").read_text())["parts"]}


def test_stop_kills_the_whole_process_group() -> None:
    proc = subprocess.Popen([PY, "-c", "import subprocess, time; subprocess.Popen(['sleep', "
                             "'60']); print('up', flush=True); time.sleep(60)"],
                            stdout=subprocess.PIPE, start_new_session=True, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "up\n"
    children = psutil.Process(proc.pid).children(recursive=True)
    nightly._stop(proc, grace_s=5)
    assert proc.returncode is not None
    # The group was signalled; a child's death is asynchronous to that (under load it can
    # take a moment), so poll — bounded — instead of sampling once.
    def dead(c: psutil.Process) -> bool:
        try:
            return not c.is_running() or c.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + scaled(5)
    while not all(dead(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(dead(c) for c in children), children
    proc.stdout.close()
