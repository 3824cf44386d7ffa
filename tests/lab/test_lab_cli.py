"""``dubhe-lab`` as users run it: up/down, Ctrl-C, a killed owner, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).parent / "orchestrate"))
from lab_helpers import assert_nothing_left

pytestmark = pytest.mark.lab
CLI = [sys.executable, "-m", "lab"]
PROFILES = Path(__file__).resolve().parents[2] / "fault-profiles"


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def start_up(root: Path, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    """``dubhe-lab up`` in the background; returns once it printed its endpoints."""
    out = root / "up.out"
    root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([*CLI, "up", "--runs-root", str(root), *extra], text=True,
                            stdout=open(out, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "== up; run directory" not in out.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"dubhe-lab up did not come up:\n{out.read_text()}")
        time.sleep(0.05)
    return proc, (root / "latest").resolve()


def test_up_once_prints_progress_and_endpoints(tmp_path: Path) -> None:
    done = run_cli("up", "--once", "--seed", "5", "--runs-root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "seed 5 (replay with --seed 5)" in out
    for name in ("l1-eth", "l1-sui", "proxy", "node", "nginx", "edge"):
        assert f"   {name}" in out and "ready in" in out
    assert "wss://127.0.0.1:" in out and "ca_file" in out
    run = (tmp_path / "latest").resolve()
    assert_nothing_left(run)
    logs = run_cli("logs", "node", "--runs-root", str(tmp_path))
    assert logs.returncode == 0 and "dubhe-node ready" in logs.stdout


def test_ctrl_c_tears_down(tmp_path: Path) -> None:
    proc, run = start_up(tmp_path)
    status = run_cli("status", "--runs-root", str(tmp_path), "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["state"] == "up" and data["owner_alive"] and data["node"]["status"] == "ok"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    assert_nothing_left(run)


def test_sigterm_while_starting_stops_what_started(tmp_path: Path) -> None:
    out = tmp_path / "up.out"
    proc = subprocess.Popen([*CLI, "up", "--runs-root", str(tmp_path)], text=True,
                            stdout=open(out, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while "run directory" not in out.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(30)
    assert rc in (0, 130), out.read_text()
    assert_nothing_left((tmp_path / "latest").resolve())


def _kill_owner_with_a_frozen_component(root: Path) -> tuple[Path, int]:
    proc, run = start_up(root)
    pids = json.loads((run / "lab.pid").read_text())["components"]
    frozen = int(pids["l1-eth"]["pid"])
    os.killpg(frozen, signal.SIGSTOP)  # a frozen process cannot act on its death signal
    proc.kill()
    proc.wait(10)
    time.sleep(0.5)
    assert psutil.pid_exists(frozen)
    return run, frozen


def test_down_cleans_what_a_killed_owner_left(tmp_path: Path) -> None:
    run, _ = _kill_owner_with_a_frozen_component(tmp_path)
    done = run_cli("down", "--runs-root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    # the frozen one for sure; others too if their SIGTERM shutdown was still under way
    assert "cleaned up (" in done.stdout and "l1-eth" in done.stdout
    assert_nothing_left(run)
    assert json.loads((run / "lab.json").read_text())["state"] == "cleaned"
    again = run_cli("down", "--runs-root", str(tmp_path))
    assert again.returncode == 0 and "is not running" in again.stdout


def test_next_up_cleans_what_a_killed_owner_left(tmp_path: Path) -> None:
    run, _ = _kill_owner_with_a_frozen_component(tmp_path)
    done = run_cli("up", "--once", "--runs-root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert f"cleaned what a killed lab left in {run.name}: " in done.stdout
    assert "l1-eth" in done.stdout.split(f"left in {run.name}: ", 1)[1].splitlines()[0]
    assert_nothing_left(run)


def test_fault_commands_on_a_running_lab(tmp_path: Path) -> None:
    proc, run = start_up(tmp_path)
    try:
        applied = run_cli("fault", "apply", str(PROFILES / "l1-blackhole.toml"),
                          "--runs-root", str(tmp_path))
        assert applied.returncode == 0, applied.stderr
        assert "node-l1-eth: blackhole" in applied.stdout
        status = run_cli("status", "--runs-root", str(tmp_path))
        assert "blackhole (timeout, downstream)" in status.stdout
        cleared = run_cli("fault", "clear", "node-l1-eth", "--runs-root", str(tmp_path))
        assert cleared.returncode == 0 and "cleared node-l1-eth" in cleared.stdout
        bad = run_cli("fault", "clear", "moon", "--runs-root", str(tmp_path))
        assert bad.returncode == 2 and "moon: no such link" in bad.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert_nothing_left(run)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "[nginx]\nread_timout_s = 3\n",
            "nginx.read_timout_s: unknown key, did you mean read_timeout_s?",
        ),
        ("[nginx\n", "(syntax)"),
    ],
)
def test_bad_spec_is_one_line(tmp_path: Path, content: str, expected: str) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(content)
    done = run_cli("up", "--once", "--spec", str(spec), "--runs-root", str(tmp_path))
    assert done.returncode == 2
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_bad_profile_fails_before_anything_starts(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text('name = "p"\n[[proxies]]\nlink = "nginx-node"\n')
    done = run_cli("up", "--once", "--profile", str(profile), "--runs-root", str(tmp_path))
    assert done.returncode == 2
    assert "p.toml: profile 'p': proxies[0].link: unknown link 'nginx-node'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "latest").exists()


def test_a_component_that_dies_is_named_with_its_last_log_lines(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text('[node.node]\nblock_time_ms = 5\n')
    done = run_cli("up", "--once", "--spec", str(spec), "--runs-root", str(tmp_path))
    assert done.returncode == 1
    err = done.stderr
    assert "dubhe-lab: node: exited with code 2 before it was ready" in err  # an invalid config
    assert "Unclosed" not in err
    assert "--- last lines of the node log" in err and "block_time_ms" in err
    assert "Traceback" not in err
    assert_nothing_left((tmp_path / "latest").resolve())


def test_commands_without_a_run(tmp_path: Path) -> None:
    for cmd in (["status"], ["down"], ["logs", "node"]):
        done = run_cli(*cmd, "--runs-root", str(tmp_path / "none"))
        assert done.returncode == 1
        assert "no lab run found" in done.stderr and "Traceback" not in done.stderr
