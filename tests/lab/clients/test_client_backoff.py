"""Full-jitter backoff: bounds, cap, seed replay, reset only after a stable connection."""

from __future__ import annotations

import random

import pytest

from lab.clients.backoff import Backoff, BackoffPolicy


def test_delays_are_full_jitter_under_a_growing_capped_ceiling() -> None:
    policy = BackoffPolicy(base_s=0.1, cap_s=1.0, factor=2.0)
    b = Backoff(policy, seed=11)
    rng = random.Random(11)
    for attempt in range(12):
        ceiling = min(1.0, 0.1 * 2**attempt)
        assert b.next_delay() == rng.uniform(0.0, ceiling)
    assert b.attempt == 12
    assert policy.ceiling(200) == 1.0  # no overflow on long outages


def test_same_seed_same_delays_and_the_seed_is_kept() -> None:
    a, b = Backoff(seed=5), Backoff(seed=5)
    assert [a.next_delay() for _ in range(20)] == [b.next_delay() for _ in range(20)]
    assert isinstance(Backoff().seed, int)


def test_retry_after_is_a_floor() -> None:
    b = Backoff(BackoffPolicy(base_s=0.1, cap_s=0.2), seed=1)
    assert b.next_delay(at_least=3.0) == 3.0


def test_only_a_stable_connection_resets_the_count() -> None:
    b = Backoff(BackoffPolicy(stable_s=5.0), seed=1)
    for _ in range(4):
        b.next_delay()
    b.connection_lasted(0.01)  # accepted, then dropped at once: still backing off
    assert b.attempt == 4
    b.connection_lasted(5.0)
    assert b.attempt == 0


@pytest.mark.parametrize("kw", [{"base_s": 0}, {"cap_s": 0.01}, {"factor": 0.5}, {"stable_s": -1}])
def test_bad_policies_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff: need"):
        BackoffPolicy(**kw)
