"""nginx log matchers (pure: lines in, records and counts out).

Error log lines as nginx 1.22 writes them::

    2026/12/01 15:48:01 [info] 4242#4242: *17 upstream timed out (110: Connection timed out) while
    proxying upgraded connection, client: 127.0.0.1, server: localhost, request: "GET /ws ..."

Access log lines in the lab's ``lab`` format (nginx/nginx.conf.j2)::

    127.0.0.1:40112 [2026-12-01T15:48:01+00:00] "GET /ws HTTP/1.1" 101 1234 rt=3.002 uct=0.001
    uht=0.002 urt=3.001 us=101 ua="Python/3.11 websockets/17.4" cid=12

and in nginx's predefined ``combined`` format (what production servers usually write)::

    203.0.113.7 - - [01/Dec/2026:15:48:01 +0000] "GET /ws HTTP/1.1" 101 1234 "-" "Mozilla/5.0"

Error-log times are local time to the second (:func:`error_time`); access-log times carry their
offset (:attr:`AccessLine.when`). A WebSocket session is logged once, when it ends: its access
line's time is the end, ``rt`` (lab format only) its length.

:data:`SIGNATURES` names the lines the scenarios look for (upstream timeouts of WebSockets — the
1006 cause —, limit_conn/limit_req rejections, worker_connections exhaustion, TLS handshake
problems, plain HTTP to the TLS port).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

LEVELS = ("debug", "info", "notice", "warn", "error", "crit", "alert", "emerg")

_ERROR = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(\w+)\] (\d+)#(\d+): (?:\*(\d+) )?(.*)$")
_ACCESS = re.compile(r'^(\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+) rt=(\S+)(?: uct=(\S+))?'
                     r'(?: uht=(\S+))?(?: urt=(\S+))?(?: us=(\S+))?(?: ua="(?:[^"\\]|\\.)*")?'
                     r'(?: cid=(\d+))?')
_COMBINED = re.compile(r'^(\S+) \S+ \S+ \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-)'
                       r'(?: "(?:[^"\\]|\\.)*" "((?:[^"\\]|\\.)*)")?')
#: ``, client: 1.2.3.4, server: x, request: "GET / HTTP/1.1", upstream: "http://..."``
_FIELD = re.compile(r', (client|server|request|upstream|host|referrer|subrequest): '
                    r'("(?:[^"\\]|\\.)*"|[^,]*)')

#: name -> (level or None for any, regular expression on the message).
SIGNATURES: dict[str, tuple[str | None, str]] = {
    "ws_upstream_timeout": (
        "info",
        r"upstream timed out \(110: [^)]*\) while proxying upgraded connection",
    ),
    "upstream_timeout": (None, r"upstream timed out \(110"),
    "limit_conn": ("error", r'limiting connections by zone "'),
    "limit_req": ("error", r'limiting requests, excess: [0-9.]+ by zone "'),
    "worker_connections": ("alert", r"worker_connections are not enough"),
    "ssl_handshake": (None, r"SSL_do_handshake\(\) failed|peer closed connection in SSL handshake"),
    "ssl_handshake_failed": (None, r"SSL_do_handshake\(\) failed"),
    "ssl_peer_closed": (None, r"peer closed connection in SSL handshake"),
    "plain_http_to_https": (None, r"client sent plain HTTP request to HTTPS port"),
    "invalid_method": (None, r"client sent invalid method"),
    "upstream_refused": (
        "error",
        r"connect\(\) failed \(111: [^)]*\) while connecting to upstream",
    ),
    "upstream_prematurely_closed": ("error", r"upstream prematurely closed connection"),
}


@dataclass(frozen=True)
class ErrorLine:
    time: str
    level: str
    pid: int
    connection: int | None
    message: str

    @property
    def when(self) -> dt.datetime:
        """The line's time (naive: nginx writes local time)."""
        return error_time(self.time)

    @property
    def what(self) -> str:
        """The message without its ``, client: ..., request: ...`` context."""
        m = _FIELD.search(self.message)
        return self.message[:m.start()] if m else self.message

    @property
    def fields(self) -> dict[str, str]:
        """The context nginx appends: ``client``, ``server``, ``request``, ``upstream``,
        ``host`` (quotes removed)."""
        return {k: v[1:-1] if v.startswith('"') else v for k, v in _FIELD.findall(self.message)}


@dataclass(frozen=True)
class AccessLine:
    client: str
    time: str
    request: str
    status: int
    bytes: int
    request_time: float | None
    upstream_status: str | None
    #: nginx's connection number (``cid=``, lab format): the ``*N`` of the error log's lines.
    connection: int | None = None

    @property
    def path(self) -> str:
        parts = self.request.split(" ")
        return parts[1] if len(parts) >= 2 else ""

    @property
    def when(self) -> dt.datetime | None:
        """The line's time (with its offset), None if unreadable."""
        return access_time(self.time)


def error_time(text: str) -> dt.datetime:
    """``2026/12/01 15:48:01`` (the error log's local time) as a naive datetime."""
    return dt.datetime.strptime(text, "%Y/%m/%d %H:%M:%S")


def access_time(text: str) -> dt.datetime | None:
    """``$time_iso8601`` (``2026-12-01T15:48:01+00:00``) or ``$time_local``
    (``01/Dec/2026:15:48:01 +0000``), with its offset; None if neither."""
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%d/%b/%Y:%H:%M:%S %z"):
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def parse_error_line(line: str) -> ErrorLine | None:
    """One error-log line, or None if it is not one (continuations, garbage)."""
    m = _ERROR.match(line.rstrip("\n"))
    if m is None:
        return None
    t, level, pid, _tid, conn, msg = m.groups()
    return ErrorLine(t, level, int(pid), int(conn) if conn else None, msg)


def parse_access_line(line: str) -> AccessLine | None:
    """One access-log line in the lab format or nginx's ``combined``, else None."""
    line = line.rstrip("\n")
    m = _ACCESS.match(line)
    if m is None:
        c = _COMBINED.match(line)
        if c is None:
            return None
        client, t, request, status, size, _ua = c.groups()
        return AccessLine(client, t, request, int(status), 0 if size == "-" else int(size),
                          None, None)
    client, t, request, status, size, rt, _uct, _uht, _urt, us, cid = m.groups()
    try:
        rtime = float(rt)
    except ValueError:
        rtime = None
    return AccessLine(client, t, request, int(status), int(size), rtime, us,
                      int(cid) if cid else None)


def error_lines(lines: Iterable[str]) -> list[ErrorLine]:
    return [p for p in map(parse_error_line, lines) if p is not None]


def access_lines(lines: Iterable[str]) -> list[AccessLine]:
    return [p for p in map(parse_access_line, lines) if p is not None]


def match(lines: Iterable[ErrorLine], pattern: str, level: str | None = None) -> list[ErrorLine]:
    """Error lines whose message matches ``pattern`` (a regular expression) at ``level``."""
    if level is not None and level not in LEVELS:
        raise ValueError(f"unknown nginx log level {level!r} (levels: {', '.join(LEVELS)})")
    rx = re.compile(pattern)
    return [e for e in lines if (level is None or e.level == level) and rx.search(e.message)]


def signature(lines: Iterable[ErrorLine], name: str) -> list[ErrorLine]:
    """Error lines of a named :data:`SIGNATURES` entry."""
    if name not in SIGNATURES:
        raise ValueError(f"unknown nginx signature {name!r} (known: {', '.join(SIGNATURES)})")
    level, pattern = SIGNATURES[name]
    return match(lines, pattern, level)


def signature_counts(lines: Iterable[ErrorLine]) -> dict[str, int]:
    """How many lines of each signature (zeros included)."""
    ls = list(lines)
    return {name: len(signature(ls, name)) for name in SIGNATURES}


def levels(lines: Iterable[ErrorLine]) -> dict[str, int]:
    return dict(Counter(e.level for e in lines))


def status_census(lines: Iterable[AccessLine], path: str | None = None) -> dict[int, int]:
    """Access-log statuses (``path``: only requests for that path, e.g. ``/ws``)."""
    c: Counter[int] = Counter(a.status for a in lines if path is None or a.path == path)
    return dict(sorted(c.items()))


__all__ = ["LEVELS", "SIGNATURES", "AccessLine", "ErrorLine", "access_lines", "access_time",
           "error_lines", "error_time", "levels", "match", "parse_access_line",
           "parse_error_line", "signature", "signature_counts", "status_census"]
