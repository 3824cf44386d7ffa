"""Schedule windows and targets as pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.proxy.schedule import Schedule, ScheduleError, Target
from lab.proxy.stream import Direction
from lab.proxy.toxics.base import LinkInfo


def test_window() -> None:
    s = Schedule(100, 300)
    assert [s.active_at(t) for t in (0, 99, 100, 299, 300, 10_000)] == [
        False, False, True, True, False, False]
    assert s.next_change(0) == 100 and s.next_change(150) == 300 and s.next_change(400) is None


def test_open_ended_and_repeating() -> None:
    assert Schedule(50).active_at(1e9) and Schedule(50).next_change(60) is None
    r = Schedule(0, 100, 1000)
    assert [r.active_at(t) for t in (0, 99, 100, 999, 1000, 1099, 1100)] == [
        True, True, False, False, True, True, False]
    assert r.next_change(50) == 100 and r.next_change(500) == 1000


@given(start=st.integers(0, 1000), dur=st.integers(1, 1000), gap=st.integers(0, 1000),
       t=st.floats(0, 10_000))
def test_next_change_is_where_activity_flips(start: int, dur: int, gap: int, t: float) -> None:
    s = Schedule(start, start + dur, dur + gap if gap else None)
    nxt = s.next_change(t)
    if nxt is None:
        assert s.active_at(t) == s.active_at(t + 1e6)
        return
    assert nxt > t
    assert s.active_at(nxt - 1e-6) == s.active_at(t)
    assert s.active_at(nxt) != s.active_at(t) or (gap == 0 and s.repeat is None)


@pytest.mark.parametrize(("raw", "key"), [
    ({"start": -1}, "schedule.start"), ({"start": 5, "stop": 5}, "schedule.stop"),
    ({"start": 0, "stop": 10, "repeat": 5}, "schedule.repeat"), ({"when": 1}, "schedule.when"),
])
def test_schedule_errors_name_the_key(raw: dict[str, int], key: str) -> None:
    with pytest.raises(ScheduleError) as info:
        Schedule.parse(raw)
    assert info.value.key == key


def test_target_matches() -> None:
    info = LinkInfo("p", 3, ("127.0.0.1", 5555), Direction.UPSTREAM, 0.0)
    assert Target.parse({"nth": 3}).matches(info)
    assert not Target.parse({"nth": [1, 2]}).matches(info)
    assert Target.parse({"client": "127.0.0.1"}).matches(info)
    assert Target.parse({"client": "127.0.0.1:5555", "nth": [3]}).matches(info)
    assert not Target.parse({"client": "127.0.0.1:5556"}).matches(info)
    assert Target.parse({"client": "127.0.0.1:5555"}).to_json() == {"client": "127.0.0.1:5555"}
