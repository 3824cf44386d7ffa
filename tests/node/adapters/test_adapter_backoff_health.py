"""Backoff schedule, Retry-After parsing and endpoint health ordering (no sockets)."""

from __future__ import annotations

import random

import pytest

from node.adapters.backoff import Backoff, BackoffPolicy, parse_retry_after
from node.adapters.events import Endpoint
from node.adapters.health import EndpointState, HealthBook


def test_full_jitter_is_bounded_and_reproducible_from_the_seed() -> None:
    p = BackoffPolicy(base_s=0.1, cap_s=2.0, factor=2.0)
    a = p.schedule(random.Random(42), 12)
    b = p.schedule(random.Random(42), 12)
    assert a == b
    for i, d in enumerate(a):
        assert 0.0 <= d <= min(2.0, 0.1 * 2**i)
    assert p.ceiling(100) == 2.0
    assert p.ceiling(10_000) == 2.0  # no float overflow


def test_backoff_honours_retry_after_up_to_the_bound() -> None:
    p = BackoffPolicy(base_s=0.01, cap_s=0.02, max_retry_after_s=5.0)
    b = Backoff(p, random.Random(1))
    assert b.next_delay(retry_after_s=1.5) == 1.5
    assert b.next_delay(retry_after_s=99) == 5.0
    assert b.attempt == 2
    b.reset()
    assert b.attempt == 0


@pytest.mark.parametrize(
    ("kwargs"),
    [{"base_s": 0}, {"base_s": 2, "cap_s": 1}, {"factor": 0.5}, {"max_retry_after_s": -1}],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_health_prefers_primary_fails_over_and_returns() -> None:
    clock = Clock()
    eps = [Endpoint("http://127.0.0.1:1/"), Endpoint("http://127.0.0.1:2/")]
    hb = HealthBook(eps, cooldown_base_s=1.0, recovery_s=30.0, clock=clock)
    primary, fallback = hb.entries
    assert hb.order() == [primary, fallback]
    hb.failure(primary, "refused")
    assert hb.ready() == [fallback]
    assert hb.order() == [fallback, primary]
    assert hb.snapshot()[0]["state"] == EndpointState.DOWN.value
    clock.t += 1.01
    assert hb.ready() == [primary, fallback]  # back, and still above the healthy score
    hb.failure(primary, "refused")
    hb.failure(primary, "refused")
    assert primary.consecutive_failures == 3
    assert primary.cooldown_until == pytest.approx(clock.t + 4.0)
    clock.t += 5
    assert primary.score < hb.healthy_score
    assert hb.ready() == [fallback, primary]  # degraded: tried after the healthy one
    for _ in range(3):
        hb.success(primary, 0.001)
    assert hb.ready() == [primary, fallback]


def test_degraded_endpoint_heals_with_time() -> None:
    clock = Clock()
    hb = HealthBook(
        [Endpoint("http://127.0.0.1:1/"), Endpoint("http://127.0.0.1:2/")],
        cooldown_base_s=0.1,
        recovery_s=10.0,
        clock=clock,
    )
    primary, fallback = hb.entries
    for _ in range(4):
        hb.failure(primary, "refused")
    clock.t += 1
    assert hb.ready() == [fallback, primary]
    assert hb.snapshot()[0]["state"] == "degraded"
    clock.t += 30  # three half-lives without failures
    assert hb.ready() == [primary, fallback]
    assert hb.snapshot()[0]["state"] == "up"


def test_rate_limit_rests_for_retry_after() -> None:
    clock = Clock()
    hb = HealthBook([Endpoint("http://127.0.0.1:1/")], clock=clock)
    e = hb.entries[0]
    hb.limit(e, 2.0, "429")
    assert hb.snapshot()[0]["state"] == "rate_limited"
    assert hb.ready() == []
    assert hb.order() == [e]
    clock.t += 2.0
    assert hb.ready() == [e]
    assert e.score > 0.9


def test_endpoint_validates_urls() -> None:
    with pytest.raises(ValueError):
        Endpoint("ftp://x")
    with pytest.raises(ValueError):
        Endpoint("http://x", "http://y")
