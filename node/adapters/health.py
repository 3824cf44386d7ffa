"""Per-endpoint health: what each request took, a score for ordering, and cooldowns.

Each :class:`EndpointHealth` keeps

* ``score`` (0..1): an exponentially weighted success rate, healing back towards 1 with time since
  the last failure (half-way per ``recovery_s``), so an endpoint that gets no traffic while
  degraded wins it back once it may have recovered;
* a latency estimate like TCP's RTO (``latency_ms`` = smoothed time, ``latency_var_ms`` = its mean
  deviation), fed by every request *including failed and abandoned ones*: a request that timed out
  or was cancelled after ``t`` took at least ``t``, so the estimate is raised to it (a black hole or
  a slow endpoint shows up even though it never answers);
* ``cooldown_until``: after ``n`` consecutive failures the endpoint rests
  ``min(cooldown_cap_s, cooldown_base_s * 2**(n-1))`` seconds; a 429 rests for its ``Retry-After``.

An *abandoned* request (cancelled because another endpoint answered first, or because the caller's
budget ran out) counts as a failure of that endpoint: it was too slow for the caller.

:meth:`HealthBook.order` puts endpoints that are not cooling down first: the healthy ones (score at
least ``healthy_score``) that are not *slow* in configured order, so the primary wins back traffic
once it recovers; then healthy but slow ones by latency (an endpoint is slow for ``recovery_s``
after it lost a hedge or answered much slower than the fastest: ``slow_factor`` times its latency
plus ``slow_margin_s``); then the unhealthy by score; then the cooling-down by how soon they are
back. :meth:`HealthBook.hedge_delay` says how long to wait for an endpoint before asking the next
one too (``latency + 4 * deviation``, clamped to ``[hedge_min_s, hedge_max_s]``).

Which endpoint serves (the first that answered a request) is tracked per transport: a change is a
*failover* (away from the preferred endpoint) or a *recovery* (back to it), kept in
:attr:`HealthBook.transitions` and passed to ``on_transition`` (metrics).

An endpoint found serving another chain (:meth:`HealthBook.wrong_chain`) is ``wrong_chain``: it is
ordered after every other endpoint (it serves only if nothing else can be asked) until
:meth:`HealthBook.chain_ok`. An endpoint that answers again after failing is reported to
``on_recovered`` (the adapter logs it), with how many failures and how long it was failing.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from node.adapters.events import Endpoint


class EndpointState(StrEnum):
    UP = "up"
    SLOW = "slow"
    DEGRADED = "degraded"
    DOWN = "down"
    RATE_LIMITED = "rate_limited"
    WRONG_CHAIN = "wrong_chain"


@dataclass(slots=True)
class EndpointHealth:
    endpoint: Endpoint
    index: int
    score: float = 1.0
    latency_ms: float = 0.0
    latency_var_ms: float = 0.0
    samples: int = 0
    successes: int = 0
    failures: int = 0
    abandoned: int = 0
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    rate_limited: int = 0
    hedged: int = 0
    cooldown_until: float = 0.0
    last_error: str | None = None
    limited: bool = False
    last_failure_at: float = 0.0
    last_slow_at: float = 0.0
    #: When the current run of failures began (0: not failing).
    failing_since: float = 0.0
    #: Why the endpoint is not used: it serves another chain (None: it does not, or unchecked).
    wrong_chain: str | None = None

    def available(self, now: float) -> bool:
        return now >= self.cooldown_until

    def effective_score(self, now: float, recovery_s: float) -> float:
        """The score, healing towards 1 with time since the last failure (half-way per
        ``recovery_s``)."""
        if self.score >= 1.0 or self.last_failure_at == 0.0:
            return self.score
        healed: float = 1.0 - 0.5 ** (max(0.0, now - self.last_failure_at) / recovery_s)
        return self.score + (1.0 - self.score) * healed

    def slow(self, now: float, recovery_s: float) -> bool:
        return self.last_slow_at > 0.0 and now - self.last_slow_at < recovery_s

    def state(self, now: float, healthy_score: float, recovery_s: float) -> EndpointState:
        if self.wrong_chain is not None:
            return EndpointState.WRONG_CHAIN
        if not self.available(now):
            return EndpointState.RATE_LIMITED if self.limited else EndpointState.DOWN
        if self.effective_score(now, recovery_s) < healthy_score:
            return EndpointState.DEGRADED
        return EndpointState.SLOW if self.slow(now, recovery_s) else EndpointState.UP


class HealthBook:
    """Health of a list of endpoints (the first is the primary). See the module docstring."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        alpha: float = 0.3,
        healthy_score: float = 0.5,
        cooldown_base_s: float = 0.25,
        cooldown_cap_s: float = 5.0,
        recovery_s: float = 5.0,
        hedge_min_s: float = 0.05,
        hedge_max_s: float = 2.0,
        slow_factor: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_transition: Callable[[dict[str, Any]], None] | None = None,
        on_recovered: Callable[[EndpointHealth, int, float], None] | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is required")
        if not 0 < hedge_min_s <= hedge_max_s:
            raise ValueError("hedging needs 0 < hedge_min_s <= hedge_max_s")
        self.entries = [EndpointHealth(e, i) for i, e in enumerate(endpoints)]
        self.alpha = alpha
        self.healthy_score = healthy_score
        self.cooldown_base_s = cooldown_base_s
        self.cooldown_cap_s = cooldown_cap_s
        self.recovery_s = recovery_s
        self.hedge_min_s = hedge_min_s
        self.hedge_max_s = hedge_max_s
        self.slow_factor = slow_factor
        self.clock = clock
        self.wall_clock = wall_clock
        self.on_transition = on_transition
        #: ``(endpoint, failures, seconds failing)`` when a failing endpoint answers again.
        self.on_recovered = on_recovered
        #: The endpoint serving each transport ("http", "ws"): index into ``entries``.
        self.serving: dict[str, int] = {}
        #: Failovers and recoveries, newest last (bounded).
        self.transitions: collections.deque[dict[str, Any]] = collections.deque(maxlen=64)
        self.counts: dict[str, int] = {"failover": 0, "recovery": 0}

    # ------------------------------------------------------------------ ordering

    def order(self, *, ws: bool = False) -> list[EndpointHealth]:
        """Endpoints to try, best first (``ws``: only those with a WebSocket URL)."""
        now = self.clock()
        every = [e for e in self.entries if not ws or e.endpoint.ws_url]
        pool = [e for e in every if e.wrong_chain is None]
        ready = [e for e in pool if e.available(now)]
        score = {e.index: e.effective_score(now, self.recovery_s) for e in pool}
        healthy = [e for e in ready if score[e.index] >= self.healthy_score]
        fast = [e for e in healthy if not e.slow(now, self.recovery_s)]
        slow = sorted(
            (e for e in healthy if e.slow(now, self.recovery_s)),
            key=lambda e: (e.latency_ms, e.index),
        )
        weak = sorted(
            (e for e in ready if score[e.index] < self.healthy_score),
            key=lambda e: (-score[e.index], e.index),
        )
        resting = sorted((e for e in pool if not e.available(now)), key=lambda e: e.cooldown_until)
        wrong = [e for e in every if e.wrong_chain is not None]
        return fast + slow + weak + resting + wrong

    def ready(self, *, ws: bool = False) -> list[EndpointHealth]:
        """Like :meth:`order` but only endpoints not cooling down."""
        now = self.clock()
        return [e for e in self.order(ws=ws) if e.available(now) and e.wrong_chain is None]

    def preferred(self, *, ws: bool = False) -> EndpointHealth:
        """The endpoint a new connection should go to (the first of :meth:`order`)."""
        return self.order(ws=ws)[0]

    def good(self, e: EndpointHealth) -> bool:
        """Up (available, healthy score, not slow)."""
        now = self.clock()
        return e.state(now, self.healthy_score, self.recovery_s) is EndpointState.UP

    def hedge_delay(self, e: EndpointHealth) -> float:
        """How long to wait for ``e`` before asking the next endpoint too (seconds)."""
        if e.samples == 0:
            return min(self.hedge_max_s, 4 * self.hedge_min_s)
        rto = (e.latency_ms + 4 * e.latency_var_ms) / 1000
        return min(self.hedge_max_s, max(self.hedge_min_s, rto))

    # ------------------------------------------------------------------ observations

    def _observe(self, e: EndpointHealth, seconds: float, *, lower_bound: bool) -> None:
        ms = seconds * 1000
        if lower_bound and e.samples and ms <= e.latency_ms:
            return  # took at least this long: tells nothing new
        if e.samples == 0:
            e.latency_ms, e.latency_var_ms = ms, ms / 2
        else:
            e.latency_var_ms += self.alpha * (abs(ms - e.latency_ms) - e.latency_var_ms)
            e.latency_ms += self.alpha * (ms - e.latency_ms)
        e.samples += 1
        best = min(
            (o.latency_ms for o in self.entries if o is not e and o.samples),
            default=None,
        )
        if best is not None and ms > self.slow_factor * best + self.hedge_min_s * 1000:
            e.last_slow_at = self.clock()

    def success(self, e: EndpointHealth, latency_s: float, *, transport: str = "http") -> None:
        if e.consecutive_failures and self.on_recovered is not None:
            self.on_recovered(e, e.consecutive_failures, self.clock() - e.failing_since)
        e.failing_since = 0.0
        e.successes += 1
        e.consecutive_failures = 0
        e.consecutive_successes += 1
        e.limited = False
        e.score += self.alpha * (1.0 - e.score)
        self._observe(e, latency_s, lower_bound=False)
        self.served(e, transport)

    def failure(self, e: EndpointHealth, error: str, elapsed_s: float | None = None) -> None:
        now = self.clock()
        if not e.consecutive_failures:
            e.failing_since = now
        e.failures += 1
        e.consecutive_failures += 1
        e.consecutive_successes = 0
        e.limited = False
        e.last_error = error
        e.score -= self.alpha * e.score
        e.last_failure_at = now
        if elapsed_s is not None:
            self._observe(e, elapsed_s, lower_bound=True)
        rest = min(
            self.cooldown_cap_s, self.cooldown_base_s * 2 ** min(e.consecutive_failures - 1, 32)
        )
        e.cooldown_until = now + rest

    def abandoned(self, e: EndpointHealth, elapsed_s: float, why: str) -> None:
        """A request to ``e`` was cancelled after ``elapsed_s`` (lost a hedge, or the caller's
        budget ran out): a failure that took at least that long, and ``e`` is slow."""
        e.abandoned += 1
        self.failure(e, f"no answer after {elapsed_s * 1000:.0f} ms ({why})", elapsed_s)
        e.last_slow_at = self.clock()

    def limit(self, e: EndpointHealth, retry_after_s: float, error: str) -> None:
        """A 429: rest for ``retry_after_s``; the score drops only a little (the endpoint works)."""
        e.rate_limited += 1
        e.last_error = error
        e.limited = True
        e.score -= self.alpha * e.score / 4
        e.cooldown_until = self.clock() + retry_after_s

    def wrong_chain(self, e: EndpointHealth, why: str) -> None:
        """``e`` serves another chain: not used while another endpoint can be (``why`` is shown
        in its state and ``last_error``)."""
        e.wrong_chain = why
        e.last_error = why

    def chain_ok(self, e: EndpointHealth) -> None:
        """``e`` serves the configured chain (again)."""
        if e.wrong_chain is not None and e.last_error == e.wrong_chain:
            e.last_error = None
        e.wrong_chain = None

    def served(self, e: EndpointHealth, transport: str) -> None:
        """``e`` now serves ``transport``; a change is recorded as a failover or recovery."""
        # before anything answered, the preferred endpoint is taken to serve: starting on a
        # fallback is a failover too
        prefer = next((o.index for o in self.entries if transport != "ws" or o.endpoint.ws_url), 0)
        prev = self.serving.get(transport, prefer)
        self.serving[transport] = e.index
        if prev == e.index:
            return
        kind = "recovery" if e.index < prev else "failover"
        old = self.entries[prev]
        ev = {
            "at": round(self.wall_clock(), 3),
            "kind": kind,
            "transport": transport,
            "from": old.endpoint.ws_url if transport == "ws" else old.endpoint.rpc_url,
            "to": e.endpoint.ws_url if transport == "ws" else e.endpoint.rpc_url,
            "reason": old.last_error if kind == "failover" else "preferred endpoint healthy again",
        }
        self.counts[kind] += 1
        self.transitions.append(ev)
        if self.on_transition is not None:
            self.on_transition(ev)

    # ------------------------------------------------------------------ reporting

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
                "latency_var_ms": round(e.latency_var_ms, 3),
                "hedge_delay_ms": round(self.hedge_delay(e) * 1000, 1),
                "successes": e.successes,
                "failures": e.failures,
                "abandoned": e.abandoned,
                "hedged": e.hedged,
                "rate_limited": e.rate_limited,
                "consecutive_failures": e.consecutive_failures,
                "cooldown_s": round(max(0.0, e.cooldown_until - now), 3),
                "last_error": e.last_error,
                "wrong_chain": e.wrong_chain,
            }
            for e in self.entries
        ]
