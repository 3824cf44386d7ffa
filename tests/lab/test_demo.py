"""``make run``'s demo, end to end (with --once so it stops by itself)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "orchestrate"))
from lab_helpers import assert_nothing_left

pytestmark = pytest.mark.lab


@pytest.mark.timeout(180)
def test_demo_runs_the_lab_the_workload_and_a_fault(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "lab.demo", "--seed", "7", "--once", "--fault-seconds", "2.5",
         "--runs-root", str(tmp_path)],
        capture_output=True, text=True, timeout=150, check=False,
    )
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert "seed 7" in out and "replay with: make run ARGS='--seed 7'" in out
    for name in ("l1-eth", "l1-sui", "proxy", "node", "nginx", "edge"):
        assert re.search(rf"^   {name}\s+ready in", out, re.M), name
    assert "over https://127.0.0.1:" in out
    assert out.count("status success") == 14 and "14/14 receipts" in out
    # the fault's client-visible effect: abnormal closures and reconnects
    assert "closed 1006 (no close frame: abnormal closure)" in out
    assert re.search(r"the client saw: \d+ heads, closes 1006 x[1-9]\d*, [1-9]\d* reconnects", out)
    assert "wss://127.0.0.1:" in out and "== run directory" in out
    assert_nothing_left((tmp_path / "latest").resolve())


def test_same_seed_same_demo_accounts(tmp_path: Path) -> None:
    """A seeded run starts from a fresh state: the same seed gives the same senders, the same
    state root and a chain that starts again at the first blocks (the issue saw height 281 and
    another root when ./data was reused)."""
    runs = [subprocess.run([sys.executable, "-m", "lab.demo", "--seed", "3", "--once",
                            "--fault-seconds", "0.5", "--runs-root", str(tmp_path / str(i))],
                           capture_output=True, text=True, timeout=150, check=False)
            for i in range(2)]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    senders = [re.findall(r"^   \w+\s+from (\w+)…", r.stdout, re.M) for r in runs]
    assert senders[0] == senders[1] and len(senders[0]) == 14
    ends = [re.search(r"^== height (\d+), state root (0x[0-9a-f]+)…, 14/14 receipts", r.stdout,
                      re.M) for r in runs]
    assert ends[0] and ends[1], [r.stdout[-500:] for r in runs]
    assert ends[0].group(2) == ends[1].group(2)  # the same state
    assert all(int(m.group(1)) <= 5 for m in ends if m)  # a fresh chain, not a continued one
    assert all("a fresh chain in a new run directory" in r.stdout for r in runs)


def test_ctrl_c_during_the_demo_tears_the_lab_down(tmp_path: Path) -> None:
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "lab.demo", "--seed", "2", "--runs-root",
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # interrupt in the middle of the workload
            if "submitted 14 signed transactions" in line:
                break
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        rc = proc.wait(60)
        assert rc == 130 and time.monotonic() - t0 < 30
        assert "interrupted; the lab was torn down" in (proc.stderr.read() if proc.stderr else "")
        assert_nothing_left((tmp_path / "latest").resolve())
    finally:
        if proc.poll() is None:  # never leave a demo (and its lab) behind a failed test
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
