"""``dubhe-bench vm`` on a shrunk run: the targets that assume the default run are "not judged"
(with the reason), so a smoke run cannot MISS (exit 1) for being small; the insn/s figure says
what it measures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_a_shrunk_run_is_not_judged_and_says_why(tmp_path: Path) -> None:
    out = tmp_path / "vm.json"
    r = subprocess.run([str(Path(sys.executable).parent / "dubhe-bench"), "vm", "--seconds", "0.2",
                        "--instances", "3", "--json", str(out)],
                       capture_output=True, text=True, timeout=180, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    targets = json.loads(out.read_text())["targets"]
    assert targets["transfers_per_s"]["judged"] is False
    assert "3 s per phase" in targets["transfers_per_s"]["note"]
    assert targets["rss_mib_per_instance"]["judged"] is False
    assert targets["cold_vs_warm"]["judged"] is True
    assert "not judged  pooled transfers" in r.stdout
    assert "billions per second are the JIT's speed" in r.stdout
