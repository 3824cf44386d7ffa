"""Figures every scenario run gets for free, and the per-group figures of client histories.

* ``nginx.<signature>`` (see :data:`lab.checkers.nginx_logs.SIGNATURES`), ``nginx.level.<level>``,
  ``nginx.status.<code>`` and ``nginx.ws_status.<code>`` (requests for ``/ws``) over the run's
  slice of nginx's logs;
* ``proxy.<event>`` (``toxic_fired``, ``cut``, ``ws_cut``, ``reset`` ...) and
  ``proxy.fired.<toxic name>`` over the proxy's event log during the run;
* per client group ``g``: ``g.missed``, ``g.duplicates``, ``g.out_of_order``, ``g.wrong_hash``,
  ``g.delivered``, ``g.clean`` (subscribers without any of those), ``g.subscribers``,
  ``g.closes``, ``g.closes_<code>``, ``g.keepalive_timeouts``, ``g.reconnects``,
  ``g.reconnect_p50_s``/``p90``/``p99``/``max``, ``g.handshake.<status or kind>``,
  ``g.handshake_failures``, ``g.fatal``, ``g.backfilled``, ``g.notify_duplicates`` (what the wire
  brought twice), ``g.latency_p50_ms``/``p99`` (receive time - block time of notifications).

Pure functions: lines and events in, a flat ``{name: number}`` out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lab.checkers import connections, heads, nginx_logs

GROUP_FIGURES = (
    "missed", "duplicates", "out_of_order", "wrong_hash", "delivered", "clean", "subscribers",
    "closes", "closes_*", "keepalive_timeouts", "reconnects", "reconnect_p50_s",
    "reconnect_p90_s", "reconnect_p99_s", "reconnect_max_s", "handshake.*",
    "handshake_failures", "fatal", "backfilled", "notify_duplicates", "latency_p50_ms",
    "latency_p99_ms", "notifications",
)
GENERIC = ("nginx.*", "proxy.*")


def nginx_figures(error_log: Iterable[str], access_log: Iterable[str]) -> dict[str, int]:
    errors = nginx_logs.error_lines(error_log)
    access = nginx_logs.access_lines(access_log)
    out: dict[str, int] = {f"nginx.{k}": v for k, v in nginx_logs.signature_counts(errors).items()}
    out.update({f"nginx.level.{k}": v for k, v in nginx_logs.levels(errors).items()})
    out.update({f"nginx.status.{k}": v for k, v in nginx_logs.status_census(access).items()})
    out.update({f"nginx.ws_status.{k}": v
                for k, v in nginx_logs.status_census(access, "/ws").items()})
    return out


def proxy_figures(events: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    by_event: Counter[str] = Counter()
    fired: Counter[str] = Counter()
    for e in events:
        by_event[str(e.get("event"))] += 1
        if e.get("event") == "toxic_fired" and e.get("toxic"):
            fired[str(e["toxic"])] += 1
    out = {f"proxy.{k}": v for k, v in by_event.items()}
    out.update({f"proxy.fired.{k}": v for k, v in fired.items()})
    return out


def group_figures(group: str, events: Sequence[Mapping[str, Any]], clients: Sequence[str], *,
                  until: int | None, chain: Mapping[int, str] | None = None,
                  start: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Figures of the clients ``clients`` (one group) from their history ``events``."""
    mine = set(clients)
    ev = [dict(e) for e in events if e.get("client") in mine]
    reports = heads.check_heads(ev, until=until, chain=chain, clients=clients, start=start)
    t = heads.totals(reports)
    raw = heads.check_heads(ev, until=None, source="notify")
    rt = connections.distribution(connections.reconnect_times(ev))
    lat = connections.distribution(float(e["lat_ms"]) for e in ev
                                   if e.get("ev") == "notify" and e.get("lat_ms") is not None)
    census = connections.close_census(ev)
    hs = connections.handshake_statuses(ev)
    g = group
    out: dict[str, Any] = {
        f"{g}.subscribers": len(clients),
        f"{g}.missed": t["missed"], f"{g}.duplicates": t["duplicates"],
        f"{g}.out_of_order": t["out_of_order"], f"{g}.wrong_hash": t["wrong_hash"],
        f"{g}.delivered": t["delivered"], f"{g}.clean": t["clean_subscribers"],
        f"{g}.closes": sum(census.values()),
        f"{g}.keepalive_timeouts": connections.count(ev, "keepalive_timeout"),
        f"{g}.reconnects": rt["n"],
        f"{g}.reconnect_p50_s": _r(rt["p50"]), f"{g}.reconnect_p90_s": _r(rt["p90"]),
        f"{g}.reconnect_p99_s": _r(rt["p99"]), f"{g}.reconnect_max_s": _r(rt["max"]),
        f"{g}.handshake_failures": sum(v for k, v in hs.items() if k != "101"),
        f"{g}.fatal": connections.count(ev, "fatal"),
        f"{g}.backfilled": sum(1 for e in ev if e.get("ev") == "deliver"
                               and e.get("src") == "backfill"),
        f"{g}.notify_duplicates": sum(r.duplicates for r in raw.values()),
        f"{g}.notifications": connections.count(ev, "notify"),
        f"{g}.latency_p50_ms": _r(lat["p50"]), f"{g}.latency_p99_ms": _r(lat["p99"]),
    }
    for code, n in census.items():
        out[f"{g}.closes_{code}"] = n
    for code in (1000, 1006, 1008, 1011, 1012):
        out.setdefault(f"{g}.closes_{code}", 0)
    for k, v in hs.items():
        out[f"{g}.handshake.{k}"] = v
    return out


def _r(x: float) -> float | None:
    """Rounded; None (JSON null) for NaN, which strict JSON readers refuse."""
    return None if x != x else round(x, 6)


__all__ = ["GENERIC", "GROUP_FIGURES", "group_figures", "nginx_figures", "proxy_figures"]
