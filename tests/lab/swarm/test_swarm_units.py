"""The swarm's pure parts: shapes, summaries, fault windows, configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.swarm.runner import (
    SwarmConfig,
    fault_windows,
    locust_argv,
    request_key,
    summarize_requests,
)
from lab.swarm.shapes import make_shape


def test_constant_and_soak() -> None:
    for name in ("constant", "soak"):
        shape = make_shape(name, 100, 20, 10)
        assert shape(0) == (100, 20) and shape(9.99) == (100, 20) and shape(10) is None


def test_ramp_reaches_its_peak_at_half_time() -> None:
    shape = make_shape("ramp", 100, 10, 20)
    assert shape(0) == (1, 10.0)
    assert shape(5) == (50, 10.0)
    assert shape(10)[0] == 100 and shape(19)[0] == 100  # type: ignore[index]
    assert shape(20) is None


def test_spike_is_a_tenth_then_all_then_a_tenth() -> None:
    shape = make_shape("spike", 100, 10, 30)
    assert [shape(t)[0] for t in (0, 9.9, 10, 19.9, 20, 29.9)] == [10, 10, 100, 100, 10, 10]  # type: ignore[index]
    assert shape(15)[1] >= 100  # type: ignore[index]


def test_step_climbs_in_equal_steps() -> None:
    shape = make_shape("step", 100, 50, 50, steps=5)
    assert [shape(t)[0] for t in (0, 9.9, 10, 25, 40, 49.9)] == [20, 20, 40, 60, 100, 100]  # type: ignore[index]


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match="unknown load shape 'wave'"):
        make_shape("wave", 1, 1, 1)
    with pytest.raises(ValueError, match="must be positive"):
        make_shape("ramp", 0, 1, 1)


def _row(t: float, typ: str, name: str, ms: float, ok: bool = True) -> dict[str, object]:
    return {"t": t, "type": typ, "name": name, "ms": ms, "len": 1, "ok": ok,
            **({} if ok else {"error": "AbnormalClose: closed 1006"})}


def test_summary_counts_percentiles_and_closes() -> None:
    rows = [_row(i, "notify", "newHeads", float(i)) for i in range(1, 101)]
    rows += [_row(0, "WS", "open", 5), _row(0, "WS", "open", 7), _row(1, "WS", "open", 9, False)]
    rows += [_row(2, "WS", "close 1006", 0, False), _row(3, "WS", "close 1000", 0),
             _row(2.5, "WS", "reconnect", 300)]
    s = summarize_requests(rows)
    heads = s["requests"]["notify newHeads"]
    assert heads["count"] == 100 and heads["p50_ms"] in (50.0, 51.0) and heads["p99_ms"] == 99.0
    assert s["connections"] == {
        "attempts": 3,
        "succeeded": 2,
        "success_rate": 2 / 3,
        "reconnects": 1,
    }
    assert s["close_codes"] == {"1000": 1, "1006": 1}
    assert s["failures"] == 2
    assert request_key("eth_blockNumber", "eth_blockNumber") == "eth_blockNumber"
    assert request_key("WS", "close 1006") == "WS close 1006"


def test_fault_windows_from_proxy_events() -> None:
    events = [
        {
            "seq": 1,
            "time": 10.0,
            "event": "toxic_added",
            "proxy": "a",
            "toxic": "x",
            "active": True,
        },
        {"seq": 2, "time": 10.5, "event": "toxic_fired", "proxy": "a", "toxic": "x"},
        {
            "seq": 3,
            "time": 10.6,
            "event": "toxic_fired",
            "proxy": "a",
            "toxic": "x",
            "action": "ws_cut",
        },
        {
            "seq": 4,
            "time": 11.0,
            "event": "toxic_added",
            "proxy": "b",
            "toxic": "y",
            "active": False,
        },
        {"seq": 5, "time": 13.0, "event": "toxic_started", "proxy": "b", "toxic": "y"},
        {"seq": 6, "time": 14.0, "event": "toxic_stopped", "proxy": "b", "toxic": "y"},
        {"seq": 7, "time": 15.0, "event": "toxic_removed", "proxy": "a", "toxic": "x"},
        {"seq": 8, "time": 16.0, "event": "toxic_started", "proxy": "b", "toxic": "y"},
    ]
    windows = fault_windows(events, until=20.0)
    assert [(w["link"], w["toxic"], w["start"], w["end"]) for w in windows] == [
        ("a", "x", 10.0, 15.0), ("b", "y", 13.0, 14.0), ("b", "y", 16.0, 20.0)]
    assert windows[0]["fired"] == 1 and windows[0]["actions"] == 1


def test_config_is_checked(tmp_path: Path) -> None:
    ok = SwarmConfig(users=10, spawn_rate=5, duration=3, out=tmp_path, target="ws://127.0.0.1:1/ws",
                     classes=("mixed",), processes=2, seed=9)
    ok.check()
    argv = locust_argv(ok)
    assert argv[-4:] == ["HeadSubscriber", "LogSubscriber", "RpcReader", "TxSender"]
    assert argv[argv.index("--processes") + 1] == "2" and argv[argv.index("--lab-seed") + 1] == "9"
    for bad, msg in [({"classes": ("Nobody",)}, "unknown user class"),
                     ({"target": "http://x"}, "ws:// or wss://"),
                     ({"shape": "wave"}, "unknown load shape"),
                     ({"processes": 0}, "--processes")]:
        cfg = SwarmConfig(**{**ok.__dict__, **bad})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=msg):
            cfg.check()
