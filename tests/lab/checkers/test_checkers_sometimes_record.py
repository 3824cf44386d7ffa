"""Sometimes assertions fail when a declared signal never fired; result records are built,
validated, written and read back, and a broken one is refused naming the key."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lab.checkers.expect import at_least, at_most, between, equal
from lab.checkers.load import (
    ResultFileError,
    load_history,
    load_record,
    log_sizes,
    read_span,
    spans,
    write_record,
)
from lab.checkers.record import LogSpan, build, passed, problems
from lab.checkers.sometimes import Sometimes, closes_with, fired

EVENTS = [{"seq": 1, "event": "toxic_added", "proxy": "client-edge", "toxic": "r"},
          {"seq": 2, "event": "toxic_fired", "proxy": "client-edge", "toxic": "r"}]


def test_a_signal_that_never_fired_fails_with_that_reason() -> None:
    s = Sometimes()
    s.declare("toxic fired", "reset_peer on client-edge fired")
    s.declare("1006 seen", "a client saw 1006")
    s.observe("toxic fired", fired(EVENTS, proxy="client-edge"))
    s.observe("1006 seen", closes_with([], 1006))
    exps = {e.name: e for e in s.expectations()}
    assert exps["fault signal: toxic fired"].ok
    bad = exps["fault signal: 1006 seen"]
    assert not bad.ok and bad.detail == "never fired: a client saw 1006" and bad.phase == "fault"
    assert s.missing() == ["1006 seen"]
    with pytest.raises(ValueError, match="not declared"):
        s.observe("other")


def test_expectation_helpers_can_fail() -> None:
    assert not equal("missed", 1, 0).ok and equal("missed", 0, 0).ok
    assert not at_least("closes", 0, 1).ok and not at_most("p99", 2.0, 1.0).ok
    assert not between("t", 5, 1, 2).ok
    assert not passed([], None)  # checking nothing is not a pass
    assert not passed([equal("x", 0, 0)], "crashed")


def test_records_round_trip_and_logs_offsets(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "nginx").mkdir()
    (run / "logs" / "node.log").write_text("old line\n")
    before = log_sizes(run)
    with (run / "logs" / "node.log").open("a") as f:
        f.write("new line\n")
    (run / "nginx" / "error.log").write_text("err\n")
    sp = spans(before, log_sizes(run))
    assert sp["node"] == LogSpan("logs/node.log", 9, 18)
    assert read_span(run, sp["node"]) == ["new line"]
    assert read_span(run, sp["nginx_error"]) == ["err"]
    t = time.time()
    rec = build(scenario="s", variant="fix", description="d", profile="fast", seed=1, start=t,
                end=t + 1.5, expectations=[equal("missed", 0, 0)], summary="ok",
                key_figure={"name": "missed", "value": 0, "unit": "heads"}, logs=sp,
                lab={"run_dir": str(run)})
    assert rec["pass"] and rec["duration_s"] == 1.5 and rec["name"] == "s/fix"
    out = tmp_path / "r.json"
    write_record(out, rec)
    assert load_record(out)["logs"]["node"] == {"path": "logs/node.log", "begin": 9, "end": 18}
    broken = dict(rec, pass_="x")
    del broken["pass"]
    broken["expectations"] = [{"name": "x"}]
    assert "pass: missing" in problems(broken)
    assert "expectations[0].observed: missing" in problems(broken)
    (tmp_path / "bad.json").write_text(json.dumps(broken))
    with pytest.raises(ResultFileError, match=r"bad\.json: .*pass: missing"):
        load_record(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="invalid record"):
        write_record(tmp_path / "x.json", broken)


def test_history_loading_names_the_bad_line(tmp_path: Path) -> None:
    p = tmp_path / "h.jsonl"
    p.write_text('{"ev": "open", "client": "a", "t": 1}\n{oops\n')
    with pytest.raises(ResultFileError, match=r"h\.jsonl: line 2: not JSON"):
        load_history(p)
    p.write_text('{"ev": "open", "client": "a", "t": 1}\n')
    assert load_history(p)[0]["client"] == "a"
