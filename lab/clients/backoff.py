"""Reconnect delays: exponential backoff with full jitter, seeded, with a cap (no I/O).

Full jitter (the AWS architecture blog's name): the n-th consecutive retry waits
``uniform(0, min(cap_s, base_s * factor**n))``. Unlike websockets' own reconnect iterator, the
count does not reset when a handshake succeeds: a connection has to stay up ``stable_s`` before
it does, so a server that accepts and drops at once is retried ever more slowly, as RFC 6455
§7.2.3 asks after abnormal closures. A ``Retry-After`` from the server is a floor.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    """The shape of the delays (seconds)."""

    base_s: float = 0.1
    cap_s: float = 5.0
    factor: float = 2.0
    #: A connection that stayed up this long resets the retry count.
    stable_s: float = 5.0

    def __post_init__(self) -> None:
        if not (self.base_s > 0 and self.cap_s >= self.base_s and self.factor >= 1
                and self.stable_s >= 0):
            raise ValueError(f"backoff: need base_s > 0, cap_s >= base_s, factor >= 1, "
                             f"stable_s >= 0 (got {self})")

    def ceiling(self, attempt: int) -> float:
        """The largest delay of retry ``attempt`` (0-based)."""
        # min() before the power would overflow on long outages
        if attempt > 64:
            return self.cap_s
        return min(self.cap_s, self.base_s * self.factor ** attempt)


class Backoff:
    """The retry count and the seeded random draws of one client.

    ``seed`` None picks one from the OS; it is kept in :attr:`seed` (the client records it in its
    history) so a run's delays can be replayed.
    """

    def __init__(self, policy: BackoffPolicy | None = None, seed: int | None = None) -> None:
        self.policy = policy or BackoffPolicy()
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self._rng = random.Random(self.seed)
        #: Consecutive retries since the last stable connection.
        self.attempt = 0

    def next_delay(self, *, at_least: float = 0.0) -> float:
        """The delay before the next retry (and count it). ``at_least``: a server's Retry-After."""
        delay = self._rng.uniform(0.0, self.policy.ceiling(self.attempt))
        self.attempt += 1
        return max(delay, at_least)

    def connection_lasted(self, seconds: float) -> None:
        """A connection ended after ``seconds`` up: reset the count if it was stable."""
        if seconds >= self.policy.stable_s:
            self.attempt = 0


__all__ = ["Backoff", "BackoffPolicy"]
