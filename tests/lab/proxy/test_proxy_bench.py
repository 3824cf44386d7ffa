"""``dubhe-bench proxy`` runs end to end (tiny sizes; the real figures come from the command)."""

from __future__ import annotations

import pytest

from bench import proxy as bench_proxy


def test_bench_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    rc = bench_proxy.main(["--samples", "200", "--seconds", "0.2", "--connections", "20",
                           "--hold", "0.1", "--timeout", "60"])
    out = capsys.readouterr().out
    assert "added latency per direction p50" in out and "throughput, latency 100 ms toxic" in out
    assert "connections held" in out and "20.0 conns" in out
    assert rc == 1  # 20 connections cannot meet the 1,000 target: reported as MISS
    assert "MISS" in out
