"""Per-endpoint health: a score for ordering and metrics, and a cooldown after failures.

Each :class:`EndpointHealth` keeps an exponentially weighted success rate (``score``, 0..1, healing
back towards 1 with time since the last failure), an
EWMA latency, counters, and ``cooldown_until``: after ``n`` consecutive failures the endpoint rests
``min(cooldown_cap_s, cooldown_base_s * 2**(n-1))`` seconds; a 429 rests for its ``Retry-After``.
:meth:`HealthBook.order` puts endpoints that are not cooling down first - healthy ones (score at
least ``healthy_score``) in configured order, so the primary wins back traffic once it recovers -
then the unhealthy by score, then the cooling-down by how soon they are back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from node.adapters.events import Endpoint


class EndpointState(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    RATE_LIMITED = "rate_limited"


@dataclass(slots=True)
class EndpointHealth:
    endpoint: Endpoint
    index: int
    score: float = 1.0
    latency_ms: float = 0.0
    successes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    rate_limited: int = 0
    cooldown_until: float = 0.0
    last_error: str | None = None
    limited: bool = False
    last_failure_at: float = 0.0

    def available(self, now: float) -> bool:
        return now >= self.cooldown_until

    def effective_score(self, now: float, recovery_s: float) -> float:
        """The score, healing towards 1 with time since the last failure (half-way per
        ``recovery_s``),
        so a recovered primary that gets no traffic while degraded still wins it back."""
        if self.score >= 1.0 or self.last_failure_at == 0.0:
            return self.score
        healed: float = 1.0 - 0.5 ** (max(0.0, now - self.last_failure_at) / recovery_s)
        return self.score + (1.0 - self.score) * healed

    def state(self, now: float, healthy_score: float, recovery_s: float) -> EndpointState:
        if not self.available(now):
            return EndpointState.RATE_LIMITED if self.limited else EndpointState.DOWN
        if self.effective_score(now, recovery_s) >= healthy_score:
            return EndpointState.UP
        return EndpointState.DEGRADED


class HealthBook:
    """Health of a list of endpoints (the first is the primary)."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        alpha: float = 0.3,
        healthy_score: float = 0.5,
        cooldown_base_s: float = 0.25,
        cooldown_cap_s: float = 30.0,
        recovery_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is required")
        self.entries = [EndpointHealth(e, i) for i, e in enumerate(endpoints)]
        self.alpha = alpha
        self.healthy_score = healthy_score
        self.cooldown_base_s = cooldown_base_s
        self.cooldown_cap_s = cooldown_cap_s
        self.recovery_s = recovery_s
        self.clock = clock

    def order(self, *, ws: bool = False) -> list[EndpointHealth]:
        """Endpoints to try, best first (``ws``: only those with a WebSocket URL)."""
        now = self.clock()
        pool = [e for e in self.entries if not ws or e.endpoint.ws_url]
        ready = [e for e in pool if e.available(now)]
        score = {e.index: e.effective_score(now, self.recovery_s) for e in pool}
        healthy = [e for e in ready if score[e.index] >= self.healthy_score]
        weak = sorted(
            (e for e in ready if score[e.index] < self.healthy_score),
            key=lambda e: (-score[e.index], e.index),
        )
        resting = sorted((e for e in pool if not e.available(now)), key=lambda e: e.cooldown_until)
        return healthy + weak + resting

    def ready(self, *, ws: bool = False) -> list[EndpointHealth]:
        """Like :meth:`order` but only endpoints not cooling down."""
        now = self.clock()
        return [e for e in self.order(ws=ws) if e.available(now)]

    def success(self, e: EndpointHealth, latency_s: float) -> None:
        e.successes += 1
        e.consecutive_failures = 0
        e.limited = False
        e.score += self.alpha * (1.0 - e.score)
        ms = latency_s * 1000
        e.latency_ms = ms if e.successes == 1 else e.latency_ms + self.alpha * (ms - e.latency_ms)

    def failure(self, e: EndpointHealth, error: str) -> None:
        e.failures += 1
        e.consecutive_failures += 1
        e.limited = False
        e.last_error = error
        e.score -= self.alpha * e.score
        e.last_failure_at = self.clock()
        rest = min(
            self.cooldown_cap_s, self.cooldown_base_s * 2 ** min(e.consecutive_failures - 1, 32)
        )
        e.cooldown_until = self.clock() + rest

    def limit(self, e: EndpointHealth, retry_after_s: float, error: str) -> None:
        """A 429: rest for ``retry_after_s``; the score drops only a little (the endpoint works)."""
        e.rate_limited += 1
        e.last_error = error
        e.limited = True
        e.score -= self.alpha * e.score / 4
        e.cooldown_until = self.clock() + retry_after_s

    def snapshot(self) -> list[dict[str, object]]:
        """Per-endpoint state for /metrics and dubhe_status."""
        now = self.clock()
        return [
            {
                "rpc_url": e.endpoint.rpc_url,
                "ws_url": e.endpoint.ws_url,
                "state": e.state(now, self.healthy_score, self.recovery_s).value,
                "score": round(e.effective_score(now, self.recovery_s), 4),
                "latency_ms": round(e.latency_ms, 3),
                "successes": e.successes,
                "failures": e.failures,
                "rate_limited": e.rate_limited,
                "consecutive_failures": e.consecutive_failures,
                "cooldown_s": round(max(0.0, e.cooldown_until - now), 3),
                "last_error": e.last_error,
            }
            for e in self.entries
        ]
