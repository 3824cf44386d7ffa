"""``dubhe-bench proxy`` runs end to end (tiny sizes; the real figures come from the command)."""

from __future__ import annotations

import re

import pytest

from bench import proxy as bench_proxy


def test_bench_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    rc = bench_proxy.main(["--samples", "200", "--seconds", "0.2", "--connections", "20",
                           "--hold", "0.1", "--aimed-connections", "30", "--aimed-toxics", "5",
                           "--toxic-ops", "20", "--subscribers", "5", "--disconnects", "12",
                           "--timeout", "120"])
    out = capsys.readouterr().out
    assert "added latency per direction p50" in out and "throughput, latency 100 ms toxic" in out
    assert "connections held" in out and "20.0 conns" in out
    assert "aimed toxic add p99, 30 conns (vs 1)" in out
    assert "aimed toxic remove p50, 30 conns (vs 1)" in out
    # every storm disconnect forced and counted once by the proxy, whatever the timing
    storm = next(line for line in out.splitlines() if "disconnects forced" in line)
    assert "12.0 disc" in storm and storm.rstrip().endswith("PASS")
    assert re.search(r"ws_cut firings counted by the proxy\s+12\.0 fires", out)
    # 20 connections are below what the 1,000-connection target assumes: not judged (issue 13/19),
    # and only judged targets decide the exit status
    held = next(line for line in out.splitlines() if "connections held" in line)
    assert held.rstrip().endswith("not judged")
    assert rc == (1 if "MISS" in out else 0)
