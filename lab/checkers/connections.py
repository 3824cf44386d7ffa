"""Connection figures from client histories (pure): close-code census, reconnect times,
handshake statuses, keepalive timeouts."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any


def _closes(events: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Close events, without the ones a client made itself when told to stop."""
    return (e for e in events if e.get("ev") == "close" and not e.get("stop"))


def close_census(events: Iterable[dict[str, Any]], *, by: str | None = None) -> dict[int, int]:
    """How many closes of each code the clients saw (``by``: only those closed by ``server``,
    ``client`` or ``none``). Closes made by a client being stopped are not counted."""
    c: Counter[int] = Counter(int(e["code"]) for e in _closes(events)
                              if by is None or e.get("by") == by)
    return dict(sorted(c.items()))


def close_census_detailed(events: Iterable[dict[str, Any]]) -> dict[str, int]:
    """``"<code> by <who>[: reason]"`` -> count, for reports."""
    c: Counter[str] = Counter()
    for e in _closes(events):
        reason = f": {e['reason']}" if e.get("reason") else ""
        c[f"{e['code']} by {e['by']}{reason}"] += 1
    return dict(sorted(c.items()))


def handshake_statuses(events: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Handshake outcomes: ``"101"``, ``"503"``, ``"tls"``, ``"connect"``, ``"timeout"`` ..."""
    c: Counter[str] = Counter()
    for e in events:
        if e.get("ev") == "handshake":
            c[str(e["status"]) if e.get("status") is not None else str(e["kind"])] += 1
    return dict(sorted(c.items()))


def reconnect_times(events: Iterable[dict[str, Any]]) -> list[float]:
    """Seconds from each close to the resubscription that followed it (``reconnected``)."""
    return [float(e["down_s"]) for e in events if e.get("ev") == "reconnected"]


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of sorted values (``q`` in [0, 1])."""
    if not sorted_values:
        return math.nan
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def distribution(values: Iterable[float]) -> dict[str, float]:
    """n, min, p50, p90, p99, max, mean of ``values`` (NaN figures when empty)."""
    v = sorted(values)
    if not v:
        return {"n": 0, "min": math.nan, "p50": math.nan, "p90": math.nan, "p99": math.nan,
                "max": math.nan, "mean": math.nan}
    return {"n": len(v), "min": v[0], "p50": quantile(v, 0.5), "p90": quantile(v, 0.9),
            "p99": quantile(v, 0.99), "max": v[-1], "mean": sum(v) / len(v)}


def count(events: Iterable[dict[str, Any]], ev: str) -> int:
    return sum(1 for e in events if e.get("ev") == ev)


__all__ = ["close_census", "close_census_detailed", "count", "distribution",
           "handshake_statuses", "quantile", "reconnect_times"]
