"""``make run``'s demo, end to end (with --once so it stops by itself)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(120)
def test_demo_runs_workload_and_prints_receipts(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "lab.demo", "--data", str(tmp_path / "data"), "--rpc-bind", "127.0.0.1:0",
         "--ws-bind", "127.0.0.1:0", "--seed", "7", "--once"],
        capture_output=True, text=True, timeout=100, check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "seed 7" in out and "JSON-RPC  http://127.0.0.1:" in out
    assert out.count("status success") == 14
    assert "14/14 receipts" in out
    # re-running continues the same chain (nonces come from the node)
    r2 = subprocess.run(r.args, capture_output=True, text=True, timeout=100, check=False)
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert "14/14 receipts" in r2.stdout
