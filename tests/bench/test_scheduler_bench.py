"""``dubhe-bench scheduler``: a tiny end-to-end run, and how targets are judged."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench import scheduler as sb


def cell(
    strategy: str,
    workload: str,
    speedup: float,
    *,
    adaptive: bool = False,
    tps: float = 30_000,
    substrate: str = "threads",
) -> sb.Cell:
    secs = 10_000 / tps
    return sb.Cell(
        "vm",
        workload,
        strategy,
        substrate,
        2,
        10_000,
        secs,
        secs * speedup,
        adaptive=adaptive,
        mode="sequential" if adaptive else "",
    )


def test_targets_judge_algorithms_raw_and_slowdown_gated() -> None:
    cells = [
        cell("SuiObjectDAG", "p2p-1000", 0.8, tps=25_000),  # the algorithm: slower than Serial
        cell("SuiObjectDAG", "p2p-1000", 1.0, adaptive=True, tps=40_000),  # gated: runs in order
    ]
    res = {text.split(":")[0]: (ok, text) for ok, text in sb.targets(cells)}
    ok, text = res["[vm] best parallel strategy on p2p-1000 >= 20,000 tps"]
    assert ok and "25,000" in text  # throughput is the algorithm's, not the gate's sequential path
    ok, text = res["[vm] p2p-1000"]
    assert ok and "+gate 1.00x" in text and "always parallel: SuiObjectDAG/threads 0.80x" in text
    # Without gated cells the slowdown is judged on the algorithm itself.
    ok, text = {t.split(":")[0]: (o, t) for o, t in sb.targets(cells[:1])}["[vm] p2p-1000"]
    assert ok is False and "always parallel" in text


@pytest.mark.timeout(120)
def test_tiny_run_prints_table_targets_and_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cells.csv"
    rc = sb.main(
        [
            "--block-size",
            "200",
            "--workloads",
            "p2p-100",
            "--strategies",
            "SuiObjectDAG,AptosBlockSTM",
            "--workers",
            "2",
            "--substrates",
            "threads",
            "--executors",
            "reference",
            "--repeat",
            "1",
            "--csv",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0
    assert "SuiObjectDAG/threads+gate" in text and "AptosBlockSTM/threads " in text
    assert "targets (this 2-core machine" in text
    rows = list(csv.DictReader(out.open()))
    assert {r["adaptive"] for r in rows if r["strategy"] != "Serial"} == {"0", "1"}
    assert all(float(r["tps"]) > 0 for r in rows)


def test_bad_adaptive_option_is_named() -> None:
    with pytest.raises(SystemExit):
        sb.parse(["--adaptive", "sometimes"])
