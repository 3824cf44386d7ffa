"""Close census, handshake statuses and the reconnect-time distribution on synthetic histories."""

from __future__ import annotations

import math

import pytest

from lab.checkers.connections import (
    close_census,
    close_census_detailed,
    distribution,
    handshake_statuses,
    quantile,
    reconnect_times,
)

EVENTS = [
    {"ev": "close", "client": "a", "code": 1006, "by": "none", "reason": ""},
    {
        "ev": "close",
        "client": "b",
        "code": 1006,
        "by": "client",
        "reason": "keepalive ping timeout",
    },
    {"ev": "close", "client": "a", "code": 1008, "by": "server", "reason": "slow consumer"},
    {"ev": "handshake", "client": "a", "ok": False, "status": 503, "kind": "http"},
    {"ev": "handshake", "client": "a", "ok": False, "status": None, "kind": "tls"},
    {"ev": "handshake", "client": "a", "ok": True, "status": 101, "kind": "ok"},
    {"ev": "reconnected", "client": "a", "down_s": 0.2},
    {"ev": "reconnected", "client": "b", "down_s": 0.4},
]


def test_census() -> None:
    assert close_census(EVENTS) == {1006: 2, 1008: 1}
    assert close_census(EVENTS, by="none") == {1006: 1}
    assert close_census_detailed(EVENTS)["1006 by client: keepalive ping timeout"] == 1
    assert handshake_statuses(EVENTS) == {"101": 1, "503": 1, "tls": 1}


def test_reconnect_distribution() -> None:
    d = distribution(reconnect_times(EVENTS))
    assert d["n"] == 2 and d["p50"] == pytest.approx(0.3) and d["max"] == 0.4
    assert math.isnan(distribution([])["p99"])
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.99) == pytest.approx(3.97)
