"""The readers on small synthetic files: fault windows from the proxy's events (one window per
period of a repeating schedule, each with its own counts), JUnit XML, mutation scores."""

from __future__ import annotations

import json
from pathlib import Path

from reports import junit
from reports.files import Problems
from reports.run import load
from reports.swarm import count_per_window, windows_from_events


def ev(t: float, event: str, toxic: str = "cut", **kw: object) -> dict[str, object]:
    return {"time": t, "event": event, "proxy": "nginx-node-ws", "toxic": toxic, **kw}


def test_windows_from_events_each_period_with_its_own_counts() -> None:
    events = [
        ev(100.0, "toxic_added", active=False),  # scheduled: not on yet
        ev(104.0, "toxic_started"),
        ev(104.5, "toxic_fired", action="cut"), ev(105.0, "toxic_fired", action="cut"),
        ev(107.0, "toxic_stopped"),
        ev(116.0, "toxic_started"),
        ev(116.2, "toxic_fired", action="cut"),
        ev(117.0, "toxic_fired", toxic="lat"),  # another toxic's firing
        ev(118.0, "toxic_removed"),
        ev(120.0, "toxic_added", toxic="lat"),  # still on at the end
    ]
    windows = count_per_window(windows_from_events(events), events)
    assert [(w["toxic"], w["start"], w["end"], w["actions"], w["fired"]) for w in windows] == [
        ("cut", 104.0, 107.0, 2, 0), ("cut", 116.0, 118.0, 1, 0), ("lat", 120.0, 120.0, 0, 0)]


def test_junit_totals_and_failures(tmp_path: Path) -> None:
    xml = tmp_path / "t.xml"
    xml.write_text("""<?xml version="1.0"?><testsuites><testsuite name="pytest">
      <testcase classname="tests.a" name="test_ok" time="1.5"/>
      <testcase classname="tests.a" name="test_bad" time="0.5">
        <failure message="assert 1 == 2&#10;more">trace</failure></testcase>
      <testcase classname="tests.b" name="test_skip" time="0"><skipped message="no"/></testcase>
    </testsuite></testsuites>""")
    s = junit.load(xml, Problems(tmp_path))
    assert s is not None
    assert (s.tests, s.passed, s.failures, s.skipped, s.time_s) == (3, 1, 1, 1, 2.0)
    assert s.failed == [("tests.a::test_bad", "assert 1 == 2")]
    bad = tmp_path / "bad.xml"
    bad.write_text("<testsuite><testcase>")
    problems = Problems(tmp_path)
    assert junit.load(bad, problems) is None
    assert problems.items[0].line().startswith("bad.xml: corrupt: not JUnit XML")


def test_mutation_scores_are_read_leniently(tmp_path: Path) -> None:
    (tmp_path / "mutation").mkdir()
    (tmp_path / "mutation" / "a.json").write_text(json.dumps({"killed": 30, "survived": 10}))
    (tmp_path / "mutation" / "b.json").write_text(json.dumps({"name": "node.vm",
                                                              "mutation_score": 92.5}))
    (tmp_path / "mutation" / "c.json").write_text("{")
    run = load(tmp_path)
    assert [(m.name, m.score, m.total) for m in run.mutation] == [("a", 0.75, 40),
                                                                   ("node.vm", 0.925, None)]
    assert [p.file for p in run.problems] == ["mutation/c.json"]
