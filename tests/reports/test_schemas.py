"""The reports read what the writers write: the result record's schema (reports keeps its own
copy: it never imports lab) and the dubhe-bench JSON (written by bench.common.BenchResult)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.common import BenchResult
from lab.checkers import record
from reports import benches, scenarios
from reports.files import Problems


def test_the_record_schema_copy_matches_the_writers() -> None:
    assert scenarios.VERSION == record.VERSION
    assert scenarios.REQUIRED == record.REQUIRED
    for bad in ({}, {"version": 2}, {**{k: None for k in record.REQUIRED}, "pass": 1}, []):
        assert bool(scenarios.problems_of(bad)) == bool(record.problems(bad))


def test_a_bench_result_round_trips_through_the_reader(tmp_path: Path) -> None:
    res = BenchResult("demo", ["--quick", "--json", "x"])
    res.figure("rate_per_s", 123.5)
    res.figure("broken", float("nan"))
    assert res.target("p99_ms", target=50, value=61.0, direction="lower", unit="ms") is False
    assert res.target("hit_ratio", target=0.85, value=0.5, direction="higher", unit="",
                      judged=False, note="a smaller workload than the target's") is None
    assert res.target("speedup", target=2, value=3.0, direction="higher", unit="x") is True
    res.extra(cells=[{"tps": float("inf")}])
    path = tmp_path / "demo.json"
    res.write(path)
    raw = json.loads(path.read_text())  # strict JSON: no NaN or Infinity tokens
    assert raw["version"] == 1 and raw["argv"] == ["--quick", "--json", "x"]
    assert raw["figures"] == {"rate_per_s": 123.5, "broken": None, "p99_ms": 61.0,
                              "hit_ratio": 0.5, "speedup": 3.0}
    assert raw["targets"]["hit_ratio"] == {"target": 0.85, "value": 0.5, "pass": None,
                                           "direction": "higher", "unit": "", "judged": False,
                                           "note": "a smaller workload than the target's"}
    assert raw["cells"] == [{"tps": None}] and raw["exit_code"] == 1
    problems = Problems(tmp_path)
    b = benches.load_one(path, problems)
    assert not list(problems) and b is not None
    assert [(t.name, t.verdict) for t in b.targets] == [
        ("p99_ms", "MISS"), ("hit_ratio", "not judged"), ("speedup", "PASS")]
    assert b.exit_code == 1 and b.figures["broken"] is None


def test_bench_result_rules() -> None:
    res = BenchResult("demo", [])
    assert res.target("lat", target=1, value=None, direction="lower", unit="s") is False
    assert res.missed == ["lat"] and res.exit_code() == 1
    with pytest.raises(ValueError, match="clash"):
        res.extra(figures={})
    ok = BenchResult("demo", [])
    ok.target("x", target=1, value=5, direction="lower", unit="", judged=False, note="small")
    assert ok.exit_code() == 0 and ok.not_judged == ["x"]


def test_a_json_that_is_not_a_bench_result_is_named(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps([{"name": "added latency", "measured": 1}]))  # proxy's old list
    problems = Problems(tmp_path)
    assert benches.load_one(path, problems) is None
    assert [p.line() for p in problems] == [
        "old.json: not a dubhe-bench result: not a JSON object"]
    path.write_text(json.dumps({"bench": "x", "version": 1, "figures": {},
                                "targets": {"t": {"target": 1, "value": 2, "direction": "up"}}}))
    assert benches.load_one(path, problems) is None
    assert problems.items[-1].message == ("not a dubhe-bench result: targets.t.direction: "
                                          "expected 'lower' or 'higher'")
