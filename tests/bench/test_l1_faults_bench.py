"""``dubhe-bench l1-faults`` runs every phase against a node and writes per-phase figures and
targets (a smoke run of 2 s phases on Ethereum only: its figures are not a measurement)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_bench_l1_faults_smoke(tmp_path: Path) -> None:
    out = tmp_path / "l1f.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "l1-faults", "--chains", "ethereum", "--phase-s", "2",
         "--json", str(out)], capture_output=True, text=True, timeout=240)
    assert done.returncode in (0, 1), done.stderr
    data = json.loads(out.read_text())
    assert data["bench"] == "l1-faults"
    for phase in ("none", "reset", "slow", "blackhole", "recovery"):
        assert f"ethereum.{phase}.block_interval_p99_ms" in data["targets"]
        assert data["figures"][f"ethereum.{phase}.blocks_followed"] >= 2
        # a contract called in every phase loads (through the fallback while the primary fails)
        assert data["phases"][f"ethereum.{phase}"]["load"] == "success", data["phases"]
    assert "ethereum.recovery.back_http_s" in data["figures"]
    assert (done.returncode == 0) == all(
        t["pass"] is not False for t in data["targets"].values())
    assert "after the black hole, HTTP back on the primary" in done.stdout
