"""``dubhe-bench lab`` and ``dubhe-bench latency`` run, print their figures and verdicts, and
write the same figures as JSON (small sizes: a smoke test, not a measurement)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True,
                          text=True, timeout=240)


def test_bench_lab(tmp_path: Path) -> None:
    out = tmp_path / "lab.json"
    done = _bench("lab", "--runs", "1", "--json", str(out))
    assert done.returncode in (0, 1), done.stderr
    assert "lab up / node alone:" in done.stdout and "target: up < 2 s:" in done.stdout
    data = json.loads(out.read_text())
    assert {"l1-eth", "proxy", "node", "nginx", "edge", "up", "down"} <= set(data["median_s"])
    assert 0 < data["median_s"]["node"] <= data["median_s"]["up"]
    assert data["targets"]["up_s"]["pass"] == (data["median_s"]["up"] < 2)
    assert (done.returncode == 0) == all(t["pass"] for t in data["targets"].values())


def test_bench_latency(tmp_path: Path) -> None:
    out = tmp_path / "lat.json"
    done = _bench("latency", "--subscribers", "20", "--seconds", "1.5", "--procs", "1",
                  "--runs-root", str(tmp_path / "runs"), "--json", str(out))
    assert done.returncode in (0, 1), done.stderr
    assert "through-lab / direct: p50" in done.stdout
    data = json.loads(out.read_text())
    for path in ("direct", "through lab"):
        fig = data["paths"][path]
        assert fig["notifications"] >= 20 and fig["p50_ms"] > 0 and fig["missed"] == 0
