"""``dubhe-bench hardening`` on tiny inputs: both parts run, print their tables and verdicts, and
write the figures as JSON (a smoke test, not a measurement)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_both_parts_print_their_figures(tmp_path: Path) -> None:
    out = tmp_path / "hardening.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "hardening", "--slow", "20", "--seconds", "2",
         "--baseline-seconds", "0.5", "--nofile", "2048", "--txs", "6", "--args-kib", "20",
         "--json", str(out)],
        capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "slowloris: node under RLIMIT_NOFILE 2048, 20 slow clients" in done.stdout
    assert "big blocks: 6 transactions x 20 KiB args" in done.stdout
    data = json.loads(out.read_text())
    f = data["figures"]
    assert f["slowloris.answered"] == 1.0 and f["slowloris.slow_connections"] >= 20
    assert f["big_blocks.refused_items"] == 0 and f["big_blocks.response_bytes"] > 10 * 240_000
    assert data["targets"]["slowloris.answered"]["judged"] is True


def test_bad_options_exit_2() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.cli", "hardening", "--node-src", "/nope"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no node package there" in done.stderr
