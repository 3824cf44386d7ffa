"""Exponential backoff with full jitter, bounded, on an injectable RNG.

``delay(n) = uniform(0, min(cap, base * factor**n))`` for the n-th retry (n from 0), the "full
jitter" of the AWS architecture blog: retries from many clients spread out instead of arriving in
waves. The RNG is passed in (seeded by the adapter, seed logged), so a test can recompute the exact
schedule with :meth:`BackoffPolicy.schedule`.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Backoff parameters (config keys ``backoff_base_ms``, ``backoff_cap_ms``,
    ``backoff_factor``)."""

    base_s: float = 0.1
    cap_s: float = 10.0
    factor: float = 2.0
    #: Upper bound on a server's Retry-After we are willing to honour.
    max_retry_after_s: float = 30.0

    def __post_init__(self) -> None:
        if not (0 < self.base_s <= self.cap_s):
            raise ValueError("backoff needs 0 < base_s <= cap_s")
        if self.factor < 1:
            raise ValueError("backoff factor must be >= 1")
        if self.max_retry_after_s < 0:
            raise ValueError("max_retry_after_s must be >= 0")

    @classmethod
    def from_ms(
        cls,
        base_ms: float = 100,
        cap_ms: float = 10_000,
        factor: float = 2.0,
        max_retry_after_ms: float = 30_000,
    ) -> BackoffPolicy:
        """Build from millisecond config values (``[adapters.*] backoff_*_ms``)."""
        return cls(base_ms / 1000, cap_ms / 1000, factor, max_retry_after_ms / 1000)

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the ``attempt``-th delay (0-based)."""
        # cap the exponent too: factor**attempt overflows a float long before it matters
        return min(self.cap_s, self.base_s * self.factor ** min(attempt, 64))

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling(attempt))

    def schedule(self, rng: random.Random, n: int) -> list[float]:
        """The first ``n`` delays this policy draws from ``rng`` (for tests and logs)."""
        return [self.delay(i, rng) for i in range(n)]


class Backoff:
    """One retry sequence: :meth:`next_delay` grows the bound, :meth:`reset` after a success."""

    def __init__(self, policy: BackoffPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng
        self.attempt = 0

    def next_delay(self, retry_after_s: float | None = None) -> float:
        """The next delay; a server's ``Retry-After`` (bounded) wins when it is longer."""
        d = self.policy.delay(self.attempt, self.rng)
        self.attempt += 1
        if retry_after_s is not None:
            d = max(d, min(retry_after_s, self.policy.max_retry_after_s))
        return d

    def reset(self) -> None:
        self.attempt = 0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` (RFC 9110 10.2.3): delta-seconds or an HTTP-date; None if absent or
    invalid."""
    if value is None:
        return None
    value = value.strip()
    # RFC says whole seconds; fractions are accepted because test servers use them
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
