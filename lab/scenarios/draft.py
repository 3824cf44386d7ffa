"""Drafting an incident file from nginx logs (``dubhe-lab incident from-logs``).

Pure functions, lines in, data out:

* :func:`analyse` reads nginx 1.22 error-log lines and access-log lines (the lab's format or
  nginx's ``combined``) and finds what the incident files are made of, with their times:
  upstream timeouts of WebSocket tunnels (the 1006 cause) and of plain requests, limit_conn and
  limit_req rejections, ``worker_connections are not enough``, TLS handshake errors (with
  OpenSSL's reason), plain HTTP to the TLS port, the upstream refusing or dropping connections,
  and bursts of 5xx answers. Errors and 5xx of nginx's own start (before the first answer that
  is not a 5xx after a ``start worker processes``) are start-up, not the incident.
* :func:`draft` turns the findings into an incident file's data (:mod:`lab.scenarios.incident`):
  the family with the most evidence chooses the workload (``tls``, ``saturation`` or
  ``subscribers``), the findings become the lab overlay, the fault timeline (node outages as
  kill/start, slow upstreams as latency on ``nginx-node-rpc``), the symptoms, the SLOs and the
  standard fix as ``[fixed]``; every guess is written to ``notes`` (what could not be inferred:
  timeouts and limits nginx does not log, why the node was unreachable, which certificate
  problem the clients had ...). The short version is scaled down to seconds; ``[full]`` keeps
  the values and times the logs gave.
* :func:`to_toml` writes it, the notes repeated as a comment header.

Times are seconds since the first line of either log, in the server's local time (the error log
has no offset; the access log's offset is dropped so both agree).
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import tomli_w

from lab.checkers import nginx_logs
from lab.checkers.nginx_logs import ErrorLine

#: Finding kinds -> the workload family that can replay them.
FAMILY = {
    "ws_upstream_timeout": "subscribers", "upstream_timeout": "subscribers",
    "upstream_down": "subscribers",
    "limit_conn": "saturation", "limit_req": "saturation", "worker_connections": "saturation",
    "ssl_protocol": "tls", "ssl_peer_closed": "tls", "plain_http_to_https": "tls",
}
#: 5xx answers closer than this (seconds) belong to one burst.
BURST_GAP_S = 2.0

_SSL_REASON = re.compile(r"SSL_do_handshake\(\) failed \(SSL: error:[0-9A-Fa-f]+:[^:]*:+([^)]*)\)")
_WC = re.compile(r"(\d+) worker_connections are not enough")
_ZONE = re.compile(r'by zone "([^"]+)"')
_DOWN = (r"connect\(\) failed \(111: [^)]*\) while connecting to upstream",
         r"upstream prematurely closed connection",
         r"recv\(\) failed \(104: [^)]*\) while reading response header from upstream",
         r"no live upstreams while connecting to upstream")


class DraftError(ValueError):
    """Nothing to draft from (no finding), or logs that cannot be read."""


@dataclass
class Finding:
    """One kind of evidence: when it happened (seconds since the logs' start) and what it said."""

    kind: str
    times: list[float] = field(default_factory=list)
    #: connection numbers (``*N``) of its error-log lines
    connections: list[int] = field(default_factory=list)
    detail: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return len(self.times)

    @property
    def first(self) -> float:
        return min(self.times)

    @property
    def last(self) -> float:
        return max(self.times)


@dataclass(frozen=True)
class Burst:
    """5xx answers with no gap longer than :data:`BURST_GAP_S` between them."""

    first: float
    last: float
    statuses: Counter[int]
    paths: Counter[str]

    @property
    def count(self) -> int:
        return sum(self.statuses.values())

    @property
    def status(self) -> int:
        return self.statuses.most_common(1)[0][0]


@dataclass
class Evidence:
    """What :func:`analyse` found."""

    origin: dt.datetime | None
    end: float
    findings: dict[str, Finding]
    bursts: list[Burst]
    #: WebSocket sessions (``101``) in the access log: (end, length or None, connection, client)
    ws_sessions: list[tuple[float, float | None, int | None, str]]
    statuses: Counter[int]
    error_lines: int
    access_lines: int
    startup_ignored: int
    notes: list[str] = field(default_factory=list)

    def finding(self, kind: str) -> Finding | None:
        f = self.findings.get(kind)
        return f if f is not None and f.times else None


# -- analysis ------------------------------------------------------------------------------------

def _classify(e: ErrorLine) -> tuple[str, str] | None:
    """(kind, detail) of an error-log line the drafts use, else None."""
    msg = e.what
    if re.search(nginx_logs.SIGNATURES["ws_upstream_timeout"][1], msg):
        return "ws_upstream_timeout", ""
    if re.search(r"upstream timed out \(110", msg):
        return "upstream_timeout", e.fields.get("request", "")
    if re.search(nginx_logs.SIGNATURES["limit_conn"][1], msg):
        m = _ZONE.search(msg)
        return "limit_conn", m.group(1) if m else ""
    if re.search(nginx_logs.SIGNATURES["limit_req"][1], msg):
        m = _ZONE.search(msg)
        return "limit_req", m.group(1) if m else ""
    m = _WC.search(msg)
    if m:
        return "worker_connections", m.group(1)
    m = _SSL_REASON.search(msg)
    if m or "SSL_do_handshake() failed" in msg:
        return "ssl_protocol", (m.group(1).strip() if m else "unknown")
    if "peer closed connection in SSL handshake" in msg:
        return "ssl_peer_closed", ""
    if "client sent plain HTTP request to HTTPS port" in msg:
        return "plain_http_to_https", ""
    if any(re.search(rx, msg) for rx in _DOWN):
        return "upstream_down", msg.split(" (")[0].split(" while")[0]
    return None


def analyse(error_log: Iterable[str], access_log: Iterable[str]) -> Evidence:
    """The findings of an nginx error log and access log (either may be empty)."""
    errors = nginx_logs.error_lines(error_log)
    access = [(a, w) for a in nginx_logs.access_lines(access_log)
              if (w := a.when) is not None]
    stamps = [e.when for e in errors] + [w.replace(tzinfo=None) for _, w in access]
    if not stamps:
        return Evidence(None, 0.0, {}, [], [], Counter(), len(errors), len(access), 0)
    origin = min(stamps)

    def since(t: dt.datetime) -> float:
        return (t.replace(tzinfo=None) - origin).total_seconds()

    # nginx's own start: until the first answer below 500 after each "start worker processes"
    starts = sorted(since(e.when) for e in errors if "start worker processes" in e.message)
    answered = sorted(since(w) for a, w in access if a.status < 500)
    startup = [(s, next((t for t in answered if t >= s), float("inf"))) for s in starts]

    def in_startup(t: float) -> bool:
        return any(s <= t <= until for s, until in startup)

    ignored = 0
    findings: dict[str, Finding] = {}
    for e in errors:
        got = _classify(e)
        if got is None:
            continue
        kind, detail = got
        t = since(e.when)
        if kind == "upstream_down" and in_startup(t):
            ignored += 1
            continue
        f = findings.setdefault(kind, Finding(kind))
        f.times.append(t)
        if e.connection is not None:
            f.connections.append(e.connection)
        if detail:
            f.detail[detail] += 1
    statuses: Counter[int] = Counter()
    fives: list[tuple[float, int, str]] = []
    sessions = []
    for a, w in access:
        t = since(w)
        statuses[a.status] += 1
        if a.status == 101:
            sessions.append((t, a.request_time, a.connection, a.client.rsplit(":", 1)[0]))
        if a.status >= 500:
            if a.status in (502, 504) and in_startup(t):  # the upstream not up yet
                ignored += 1
            else:
                fives.append((t, a.status, a.path))
    end = max(since(s) for s in stamps)
    ev = Evidence(origin, end, findings, _bursts(fives), sessions, statuses, len(errors),
                  len(access), ignored)
    if ignored:
        ev.notes.append(f"{ignored} errors and 5xx answers while nginx was starting (before its "
                        "first answer below 500) were left out as start-up")
    return ev


def _bursts(fives: Sequence[tuple[float, int, str]]) -> list[Burst]:
    out: list[Burst] = []
    group: list[tuple[float, int, str]] = []
    for item in sorted(fives):
        if group and item[0] - group[-1][0] > BURST_GAP_S:
            out.append(_burst(group))
            group = []
        group.append(item)
    if group:
        out.append(_burst(group))
    return out


def _burst(group: Sequence[tuple[float, int, str]]) -> Burst:
    return Burst(group[0][0], group[-1][0], Counter(s for _, s, _ in group),
                 Counter(p for _, _, p in group))


# -- the draft -----------------------------------------------------------------------------------

def _r(x: float, digits: int = 2) -> float:
    return round(float(x), digits)


def draft(ev: Evidence, *, name: str | None = None) -> dict[str, Any]:
    """An incident file's data from the evidence (see the module docstring). Raises
    :class:`DraftError` when nothing in the logs can be replayed."""
    families: Counter[str] = Counter()
    for f in ev.findings.values():
        if f.times and f.kind in FAMILY:
            families[FAMILY[f.kind]] += f.count
    down = [b for b in ev.bursts if b.status in (502, 504)]
    if down:
        families["subscribers"] += sum(b.count for b in down)
    if not families:
        raise DraftError(
            "nothing in these logs looks like an incident the lab replays: no upstream "
            "timeouts, limit_conn/limit_req rejections, worker_connections alerts, TLS "
            f"handshake errors or 5xx bursts ({ev.error_lines} error-log lines and "
            f"{ev.access_lines} access-log lines read"
            + ("; nginx logs upstream timeouts of WebSockets and TLS errors at 'info': was "
               "error_log at that level?" if ev.error_lines else "") + ")")
    order = {"tls": 0, "saturation": 1, "subscribers": 2}
    family = sorted(families, key=lambda k: (-families[k], order[k]))[0]
    assert ev.origin is not None
    notes = list(ev.notes)
    base = {"name": name or f"from-logs-{ev.origin:%Y%m%d-%H%M}",
            "seed": zlib.crc32(f"{ev.origin.isoformat()}/{ev.end}".encode()) % 2**31}
    found = "; ".join(_describe(ev))
    span = f"{ev.origin:%Y-%m-%d %H:%M:%S} + {ev.end:.0f} s (server local time)"
    notes.insert(0, f"drafted from nginx logs of {span} (times below are seconds since "
                    f"then): {found}")
    if family == "tls":
        body = _tls(ev, notes)
    elif family == "saturation":
        body = _saturation(ev, notes)
    else:
        body = _subscribers(ev, notes)
    for other in sorted(families):
        if other != family:
            kinds = [k for k, fam in FAMILY.items() if fam == other and ev.finding(k)]
            if other == "subscribers" and down:
                kinds.append(f"{len(down)} burst(s) of 502/504")
            notes.append(f"also in the logs, not in this draft (another workload): "
                         f"{', '.join(kinds)}")
    data = {**base, "description": body.pop("description"),
            "incident": f"nginx logged {found}", "fix": body.pop("fix"),
            **body, "notes": notes}
    return data


def _describe(ev: Evidence) -> list[str]:
    words = {"ws_upstream_timeout": "WebSocket upstream timeouts (1006 to clients)",
             "upstream_timeout": "upstream timeouts of requests",
             "upstream_down": "upstream connection failures",
             "limit_conn": "limit_conn rejections", "limit_req": "limit_req rejections",
             "worker_connections": "worker_connections alerts",
             "ssl_protocol": "SSL_do_handshake() failures",
             "ssl_peer_closed": "TLS handshakes the client aborted",
             "plain_http_to_https": "plain HTTP requests to the TLS port"}
    out = [f"{f.count} {words[k]} at {_when(f.first, f.last)}"
           for k, f in ev.findings.items() if f.times and k in words]
    out += [f"{b.count} x {'/'.join(str(s) for s in sorted(b.statuses))} at "
            f"{_when(b.first, b.last)}" for b in ev.bursts]
    return out or ["nothing"]


def _when(first: float, last: float) -> str:
    return f"{first:.0f} s" if round(first) == round(last) else f"{first:.0f}-{last:.0f} s"


def _users(count: int, **extra: Any) -> dict[str, Any]:
    return {"name": "users", "count": max(1, count), **extra}


def _spans(times: Iterable[float]) -> list[tuple[float, float]]:
    """Times grouped into (first, last) spans, split at gaps over :data:`BURST_GAP_S`."""
    out: list[list[float]] = []
    for t in sorted(times):
        if out and t - out[-1][1] <= BURST_GAP_S:
            out[-1][1] = t
        else:
            out.append([t, t])
    return [(a, b) for a, b in out]


def _subscribers(ev: Evidence, notes: list[str]) -> dict[str, Any]:
    """WebSocket timeouts (nginx config), node outages (kill/start) and slow upstreams
    (latency on nginx-node-rpc), replayed with newHeads subscribers."""
    ws = ev.finding("ws_upstream_timeout")
    down = ev.finding("upstream_down")
    slow = ev.finding("upstream_timeout")
    outages = [(b.first, b.last) for b in ev.bursts if b.status == 502] or (
        _spans(down.times) if down else [])
    late = [(b.first, b.last) for b in ev.bursts if b.status == 504] or (
        _spans(slow.times) if slow else [])
    lab: dict[str, Any] = {"l1": []}
    full: dict[str, Any] = {}
    symptoms: dict[str, str] = {}
    slo: dict[str, str] = {}
    timeline: list[dict[str, Any]] = []
    full_timeline: list[dict[str, Any]] = []
    fixed: dict[str, Any] = {}
    full_fixed: dict[str, Any] = {}
    fixes: list[str] = []
    desc: list[str] = []
    sessions = len(set(ws.connections)) or ws.count if ws else 0
    users = {"reconnect": False, "backfill": False, "must_catch_up": False}
    duration, full_duration = 3.0, min(max(10.0, ev.end), 600.0)
    if ws:
        timeout = _read_timeout(ev, ws, notes)
        short = min(timeout, 1.5)
        if short < timeout:
            notes.append(f"the short version scales proxy_read_timeout down to {short:g} s "
                         f"(and the block time with it); [full] keeps {timeout:g} s")
        lab["nginx"] = {"read_timeout_s": short}
        lab["block_time_ms"] = int(short * 2000)
        lab["node"] = {"api": {"ws_ping_interval_s": 0}}
        full["lab"] = {"nginx": {"read_timeout_s": timeout}, "block_time_ms": int(timeout * 2000)}
        duration = max(duration, 2 * short + 0.5)  # every idle subscriber has timed out
        full_duration = max(full_duration, 3 * timeout + 1)
        notes.append("assumed the node sent no WebSocket pings and heads came less often than "
                     "proxy_read_timeout (block time = 2 x the timeout): with pings or heads "
                     "more often than the timeout nginx would not have timed out")
        symptoms.update({"users.closes_1006": ">= 1", "nginx.ws_upstream_timeout": ">= 1"})
        full["symptoms"] = {"users.closes_1006": f">= {min(max(sessions, 3), 100)}"}
        slo.update({"users.closes": "== 0", "users.missed": "== 0",
                    "nginx.ws_upstream_timeout": "== 0"})
        fixed["lab"] = {"node": {"api": {"ws_ping_interval_s": _r(short * 0.6)}}}
        full_fixed["lab"] = {"node": {"api": {"ws_ping_interval_s": _r(timeout * 0.6)}}}
        fixes.append("the node pings every subscriber more often than proxy_read_timeout "
                     "([api] ws_ping_interval_s = 0.6 x the timeout)")
        desc.append(f"{ws.count} WebSocket tunnels closed by nginx's proxy_read_timeout "
                    f"(~{timeout:g} s)")
    if outages:
        users = {"reconnect": True, "backfill": False, "must_catch_up": False}
        t0 = outages[0][0]
        for i, (a, b) in enumerate(outages[:3]):
            timeline += [{"at_s": 1.0 + 3.0 * i, "component": "node", "action": "kill"},
                         {"at_s": 2.5 + 3.0 * i, "component": "node", "action": "start"}]
            full_timeline += [{"at_s": _r(5 + a - t0), "component": "node", "action": "kill"},
                              {"at_s": _r(6 + b - t0), "component": "node", "action": "start"}]
        duration = max(duration, 3.0 * min(len(outages), 3) + 2)
        full_duration = max(full_duration, _r(15 + outages[:3][-1][1] - t0))
        symptoms.update({"users.handshake.502": ">= 1", "nginx.status.502": ">= 1"})
        slo.update({"users.missed": "== 0", "users.duplicates": "== 0"})
        fixed["workload"] = {"groups": [_users(3, backoff_cap_s=0.5)]}
        full_fixed["workload"] = {"groups": [_users(min(max(sessions, 3), 100),
                                                    backoff_cap_s=0.5)]}
        fixes.append("clients reconnect with backoff and backfill the heads they missed")
        notes.append(f"{len(outages)} outage(s) of the upstream (502, connections refused or "
                     "dropped): drafted as the node killed and started again; the logs do not "
                     "say why it was unreachable (crash, restart, deploy, network), and the "
                     "fixed variant only makes clients ride it out")
        if len(outages) > 3:
            notes.append(f"only the first 3 of {len(outages)} outages are in the timeline")
        desc.append(f"{len(outages)} upstream outage(s) answered with 502")
    if late:
        nginx = lab.setdefault("nginx", {})
        rt = float(nginx.setdefault("read_timeout_s", 1.0))
        latency_ms = int(rt * 1000 + 1500)
        t0 = late[0][0]
        for i, (a, b) in enumerate(late[:3]):
            toxic = {"link": "nginx-node-rpc", "toxic": "latency",
                     "name": f"slow-upstream-{i + 1}", "attributes": {"latency": latency_ms}}
            timeline.append({"at_s": 1.0 + 3.0 * i, "for_s": 2.0, **toxic})
            full_timeline.append({"at_s": _r(5 + a - t0), "for_s": _r(max(b - a, 1.0)),
                                  **toxic})
        duration = max(duration, 3.0 * min(len(late), 3) + 2)
        symptoms.update({"nginx.status.504": ">= 1", "nginx.upstream_timeout": ">= 1"})
        slo["nginx.status.504"] = "== 0"
        fixed.setdefault("lab", {}).setdefault("nginx", {})["read_timeout_s"] = _r(
            latency_ms / 500)
        fixes.append("proxy_read_timeout above the upstream's slowest answers")
        notes.append("upstream timeouts of requests (504): drafted as 1.5 s more latency than "
                     "proxy_read_timeout on nginx-node-rpc while transactions are sent; the "
                     "logs do not say why the node answered late")
        desc.append(f"{len(late)} period(s) of requests timing out upstream (504)")
    workload: dict[str, Any] = {"kind": "subscribers", "duration_s": _r(duration),
                                "groups": [_users(min(max(sessions, 3), 5), **users)]}
    full["workload"] = {"duration_s": _r(full_duration),
                        "groups": [_users(min(max(sessions, 3), 100), **users)]}
    if late:
        workload.update({"senders": 1, "tx_per_s": 5.0})
    if full_timeline:
        full["timeline"] = full_timeline
    if full_fixed:
        full["fixed"] = full_fixed
    out: dict[str, Any] = {
        "description": "; ".join(desc), "fix": "; ".join(fixes) + " (the usual fix: check it)",
        "lab": lab, "workload": workload, "symptoms": symptoms, "slo": slo,
        "fixed": {"description": "; ".join(fixes), **fixed}, "full": full,
    }
    if timeline:
        out["timeline"] = timeline
    return out


def _read_timeout(ev: Evidence, ws: Finding, notes: list[str]) -> float:
    """proxy_read_timeout, bounded from above by the timed-out sessions' lengths."""
    by_conn = {c: rt for _, rt, c, _ in ev.ws_sessions if c is not None and rt is not None}
    joined = [by_conn[c] for c in ws.connections if c in by_conn]
    lengths = joined or [rt for _, rt, _, _ in ev.ws_sessions if rt is not None]
    if lengths:
        est = max(0.5, round(min(lengths), 1))
        notes.append(f"proxy_read_timeout is not in the logs: {est:g} s is the shortest "
                     f"{'timed-out ' if joined else ''}WebSocket session (an upper bound; "
                     "copy the real value from nginx.conf)")
        return est
    notes.append("proxy_read_timeout is not in the logs and the access log has no session "
                 "lengths (nginx's combined format): nginx's default, 60 s, assumed; copy the "
                 "real value from nginx.conf")
    return 60.0


def _saturation(ev: Evidence, notes: list[str]) -> dict[str, Any]:
    """worker_connections exhaustion, limit_conn or limit_req on WebSocket handshakes, replayed
    with a surge of held handshakes."""
    kinds = [k for k in ("worker_connections", "limit_conn", "limit_req") if ev.finding(k)]
    kind = max(kinds, key=lambda k: ev.findings[k].count)
    f = ev.findings[kind]
    refused = f.count
    for other in kinds:
        if other != kind:
            notes.append(f"{ev.findings[other].count} {other} lines too: only {kind} is drafted")
    lab: dict[str, Any]
    full_lab: dict[str, Any]
    fixed_lab: dict[str, Any]
    full_fixed: dict[str, Any]
    if kind == "worker_connections":
        n = int(f.detail.most_common(1)[0][0])
        short_n = 34
        capacity, full_capacity = (short_n - 4) // 2, max((n - 4) // 2, 1)
        surge, full_surge = capacity + min(refused, 5), min(full_capacity + min(refused, 100),
                                                            3000)
        lab = {"l1": [], "nginx": {"worker_connections": short_n, "keepalive": 0}}
        full_lab = {"nginx": {"worker_connections": n}}
        status = "500"
        symptoms = {f"surge.handshake.{status}": ">= 1", "nginx.worker_connections": ">= 1"}
        slo = {"surge.refused": "== 0", "nginx.worker_connections": "== 0"}
        fixed_lab = {"nginx": {"worker_connections": max(1024, 4 * surge)}}
        full_fixed = {"lab": {"nginx": {"worker_connections": max(1024, 4 * full_surge)}}}
        notes.append(f"nginx had worker_connections {n} (from its alert); the short version "
                     f"uses {short_n} (room for {capacity} WebSockets with the upstream "
                     "keepalive pool off, assumed) and a surge just beyond it")
        desc = f"{refused} handshakes beyond worker_connections {n}"
        fix = "worker_connections sized to the peak: two per proxied WebSocket plus headroom"
    else:
        status = str(_status_near(ev, f, default=503 if kind == "limit_conn" else 429))
        if kind == "limit_conn":
            per_ip = _concurrency(ev, notes)
            short_limit = min(per_ip, 5)
            surge, full_surge = short_limit + min(refused, 5), min(per_ip + min(refused, 100),
                                                                   3000)
            lab = {"l1": [], "nginx": {"limits": {"conn": True, "conn_per_ip": short_limit,
                                                  "conn_status": int(status)}}}
            full_lab = {"nginx": {"limits": {"conn_per_ip": per_ip}}}
            fixed_lab = {"nginx": {"limits": {"conn_per_ip": surge}}}
            full_fixed = {"lab": {"nginx": {"limits": {"conn_per_ip": full_surge}}}}
            desc = f"{refused} WebSocket handshakes refused by limit_conn"
            fix = "limit_conn sized to the clients' real concurrency (and clients that back off)"
        else:
            zones = f.detail
            if zones and "websocket" not in zones:
                notes.append(f"limit_req on zone(s) {', '.join(zones)}: the draft replays it "
                             "on WebSocket handshakes (zone websocket); set lab.nginx.limits "
                             "and another workload (rpc_flood) for HTTP")
            surge, full_surge = 6 + min(refused, 8), min(6 + refused, 3000)
            lab = {"l1": [], "nginx": {"limits": {"req": True, "req_status": int(status)}}}
            full_lab = {}
            fixed_lab = {"nginx": {"limits": {"ws_burst": surge}}}
            full_fixed = {"lab": {"nginx": {"limits": {"ws_burst": full_surge}}}}
            notes.append("limit_req's rate and burst are not in the logs: the lab's (the "
                         "seed's) 1 r/s burst 5 are used; copy the real ones from nginx.conf")
            desc = f"{refused} WebSocket handshakes refused by limit_req"
            fix = "a limit_req burst sized to reconnect storms (and clients that back off)"
        symptoms = {f"surge.handshake.{status}": ">= 1", f"nginx.{kind}": ">= 1"}
        slo = {"surge.refused": "== 0", f"nginx.{kind}": "== 0"}
    notes.append(f"the surge is drafted as {surge} handshakes held at once ({full_surge} in "
                 "[full]); the logs do not say how many clients there were")
    full: dict[str, Any] = {"workload": {"surge": full_surge, "hold_s": 5.0,
                                         "served_within_s": 30.0},
                            "fixed": full_fixed}
    if full_lab:
        full["lab"] = full_lab
    return {
        "description": desc, "fix": fix + " (the usual fix: check it)",
        "lab": lab,
        "workload": {"kind": "saturation", "surge": surge, "hold_s": 0.5, "late": 0},
        "symptoms": symptoms, "slo": slo,
        "fixed": {"description": fix, "lab": fixed_lab}, "full": full,
    }


def _status_near(ev: Evidence, f: Finding, default: int) -> int:
    """The most common 4xx/5xx status in the bursts overlapping the finding's lines."""
    c: Counter[int] = Counter()
    for b in ev.bursts:
        if b.first - 1 <= f.last and f.first <= b.last + 1:
            c.update(b.statuses)
    rejected = [s for s in (429, 503, 444) if ev.statuses.get(s)]
    if c:
        return c.most_common(1)[0][0]
    return rejected[0] if rejected else default


def _concurrency(ev: Evidence, notes: list[str]) -> int:
    """The most WebSocket sessions one client address held at once (needs session lengths)."""
    spans: dict[str, list[tuple[float, int]]] = {}
    for end, rt, _, client in ev.ws_sessions:
        if rt is not None:
            spans.setdefault(client, []).extend([(end - rt, 1), (end, -1)])
    best = 0
    for points in spans.values():
        now = 0
        for _, d in sorted(points, key=lambda p: (p[0], p[1])):
            now += d
            best = max(best, now)
    if best:
        notes.append(f"limit_conn per address not in the logs: {best}, the most WebSocket "
                     "sessions one address held at once; copy the real value from nginx.conf")
        return best
    notes.append("limit_conn per address not in the logs (no session lengths in the access "
                 "log): the seed's 5 assumed; copy the real value from nginx.conf")
    return 5


def _tls(ev: Evidence, notes: list[str]) -> dict[str, Any]:
    """TLS handshake failures, replayed by clients meeting the same misconfiguration."""
    attempts: list[dict[str, Any]] = []
    fixed_attempts: list[dict[str, Any]] = []
    lab: dict[str, Any] = {"l1": [], "nginx": {}}
    fixed_lab: dict[str, Any] = {"nginx": {}}
    symptoms: dict[str, str] = {}
    slo: dict[str, str] = {}
    desc, fixes = [], []
    proto = ev.finding("ssl_protocol")
    if proto:
        reasons = proto.detail
        if "unsupported protocol" in reasons:
            lab["nginx"]["ssl_protocols"] = "TLSv1.2"
            fixed_lab["nginx"]["ssl_protocols"] = "TLSv1.2 TLSv1.3"
            attempts.append({"name": "modern", "tls_min": "TLSv1.3", "exception": "SSLError",
                             "message": "TLSV1_ALERT_PROTOCOL_VERSION",
                             "nginx": "ssl_handshake_failed"})
            fixed_attempts.append({"name": "modern", "tls_min": "TLSv1.3"})
            symptoms.update({"modern.connected": "== 0", "nginx.ssl_handshake_failed": ">= 1"})
            slo["modern.connected"] = "== 1"
            notes.append("'unsupported protocol': drafted as nginx offering TLS 1.2 only and "
                         "clients requiring TLS 1.3; it may be the other way round (old clients "
                         "offering TLS 1.0/1.1): compare ssl_protocols with the clients")
            desc.append(f"{reasons['unsupported protocol']} handshakes with no common TLS "
                        "version")
            fixes.append("nginx offers TLS 1.2 and 1.3")
        others = {r: n for r, n in reasons.items() if r != "unsupported protocol"}
        if others:
            notes.append("SSL_do_handshake() failures not drafted: " + ", ".join(
                f"{n} x '{r}'" for r, n in others.items()))
    if ev.finding("ssl_peer_closed"):
        n = ev.findings["ssl_peer_closed"].count
        lab["nginx"]["tls_cert"] = "expired"
        fixed_lab["nginx"]["tls_cert"] = "valid"
        attempts.append({"name": "verify", "exception": "SSLCertVerificationError",
                         "message": "certificate has expired", "nginx": "ssl_peer_closed"})
        fixed_attempts.append({"name": "verify"})
        symptoms.update({"verify.connected": "== 0", "nginx.ssl_peer_closed": ">= 1"})
        slo["verify.connected"] = "== 1"
        notes.append("'peer closed connection in SSL handshake': the clients rejected nginx's "
                     "certificate; the logs do not say why: drafted as an expired certificate "
                     "(set lab.nginx.tls_cert to 'untrusted' or 'wrong-host' if it was an "
                     "unknown CA or another name)")
        desc.append(f"{n} TLS handshakes aborted by clients rejecting the certificate")
        fixes.append("a valid certificate for the name clients dial")
    if ev.finding("plain_http_to_https"):
        n = ev.findings["plain_http_to_https"].count
        attempts.append({"name": "plain", "target": "ws-to-tls", "exception": "InvalidStatus",
                         "message": "HTTP 400", "nginx": "plain_http_to_https"})
        fixed_attempts.append({"name": "plain", "target": "wss"})
        symptoms.update({"plain.connected": "== 0", "nginx.plain_http_to_https": ">= 1"})
        slo["plain.connected"] = "== 1"
        desc.append(f"{n} plain HTTP (ws://) requests to the TLS port")
        fixes.append("clients dial wss:// on the TLS port")
    if any(k.startswith("nginx.ssl") for k in symptoms):
        slo["nginx.ssl_handshake"] = "== 0"
    if not attempts:
        raise DraftError("the TLS errors in these logs are not ones the lab can replay: "
                         + "; ".join(notes[-1:]))
    if not lab["nginx"]:
        del lab["nginx"]
    fixed: dict[str, Any] = {"description": "; ".join(fixes),
                             "workload": {"attempts": fixed_attempts}}
    if fixed_lab["nginx"]:
        fixed["lab"] = fixed_lab
    return {"description": "; ".join(desc), "fix": "; ".join(fixes) + " (check it)",
            "lab": lab, "workload": {"kind": "tls", "watch_s": 1.0, "attempts": attempts},
            "symptoms": symptoms, "slo": slo, "fixed": fixed}


def to_toml(data: dict[str, Any], *, sources: Sequence[str] = ()) -> str:
    """The incident file's text: a comment header (where it came from, the notes), then the
    data (``notes`` included, so a replay's record keeps them)."""
    head = ["# Drafted by `dubhe-lab incident from-logs`"
            + (f" from {', '.join(sources)}" if sources else "") + ".",
            "# A draft: every guess is listed below (and in `notes`); check them, then",
            "# dubhe-lab replay <this file>   and   dubhe-lab replay <this file> --fixed", "#"]
    head += [f"# - {n}" for n in data.get("notes", [])]
    order = ["name", "description", "incident", "fix", "seed", "notes", "lab", "workload",
             "timeline", "symptoms", "slo", "signals", "fixed", "full"]
    ordered = {k: data[k] for k in order if k in data}
    return "\n".join(head) + "\n\n" + tomli_w.dumps(ordered)


__all__ = ["BURST_GAP_S", "FAMILY", "Burst", "DraftError", "Evidence", "Finding", "analyse",
           "draft", "to_toml"]
