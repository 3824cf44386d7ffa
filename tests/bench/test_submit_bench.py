"""``dubhe-bench submit --only fsync`` runs the fsync comparison (group commit vs no fsync at
concurrent submitters), prints the ratio with its verdict, and writes the figures as JSON (tiny
sizes: a smoke test, not a measurement)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_fsync_comparison_prints_the_ratio_and_verdict(tmp_path: Path) -> None:
    out = tmp_path / "submit.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.cli", "submit", "--only", "fsync", "--submitters", "16",
         "--group-txs", "320", "--group-rounds", "1", "--block-time-ms", "200", "--seed", "5",
         "--json", str(out)],
        capture_output=True, text=True, timeout=240,
    )
    assert done.returncode in (0, 1), done.stderr
    assert "fsync comparison: 16 concurrent submitters" in done.stdout
    assert "group commit: fsync" in done.stdout and "writes per fsync" in done.stdout
    data = json.loads(out.read_text())
    f = data["figures"]
    assert f["fsync.acked"] == 320 and f["no-fsync.acked"] == 320
    assert f["fsync.ratio_vs_no_fsync"] == f["fsync.tps"] / f["no-fsync.tps"]
    assert f["fsync.writes_per_fsync"] >= 1
    ratio = data["targets"]["fsync.ratio_vs_no_fsync"]
    assert ratio["target"] == 0.5 and ratio["judged"] is True
    assert data["targets"]["missing_acknowledged"]["value"] == 0
