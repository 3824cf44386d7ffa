"""Connection-level protection of the node's listeners (HTTP and WebSocket): no lock-out by slow
or many clients.

aiohttp has an idle (keep-alive) timeout but no header timeout and no connection cap, so clients
that trickle a header byte per second hold their sockets (and the process's descriptors) as long
as they like. :class:`GuardedRunner` serves an aiohttp app through :class:`GuardedHandler`, a
``RequestHandler`` that adds, per listener (a :class:`Policy`):

* a **connection cap**: at the cap, the oldest *idle* keep-alive connection (one waiting for its
  next request with no byte of it received) is closed to make room, as nginx reuses idle
  connections when it runs out. When none is idle the newcomer is admitted *on probation* (at
  most :data:`MAX_PROBATION` at once, beyond them ``503`` with ``Retry-After: 1``): if its
  request head is complete within :data:`PROBATION_S` (or half the header timeout, if shorter)
  it stays, and the connection whose head has been incomplete the longest is closed (408) to
  bring the listener back to its cap; if not, the newcomer itself is closed (408). A real client
  sends its head in milliseconds, so slow clients spread over many addresses (which no
  per-address cap catches) cannot keep it out, nor push out anything but each other;
* a **per-IP connection cap** shared by every listener (:class:`ConnTable`), for addresses outside
  the exempt networks (loopback by default: in the lab every client, nginx included, connects
  from 127.0.0.1, so only a proxy in front could tell clients apart); over it, ``503``;
* a **header timeout**: from the first byte of a request until its head is complete; past it,
  ``408`` and close (counted). The idle timeout (aiohttp's keep-alive timeout) covers the time
  before that first byte; the body timeout is applied by the HTTP shell while it reads;
* **RFC 6455 strictness** once a connection is a WebSocket (:mod:`node.server.ws_frames`): an
  unmasked client frame or a Close frame with 1005/1006/1015 fails the connection with 1002;
* **quiet refusal of malformed HTTP**: a request aiohttp cannot parse is answered 400 (415 for an
  unsupported ``Content-Encoding``) and counted in ``/metrics``; it is logged at INFO without a
  traceback, at most once per peer address per minute (with the number suppressed).

Every decision is counted in :class:`~node.server.metrics.Metrics` by listener.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from node.server.http import ENCODINGS
from node.server.metrics import Metrics
from node.server.ws_frames import ClientFrameCheck, close_frame

log = logging.getLogger("node.http")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: How often one peer address's malformed requests are logged (the rest are counted).
MALFORMED_LOG_INTERVAL_S = 60.0
#: A refused connection is half-closed after its 503 and kept this long (discarding input) so
#: the client reads the 503 instead of a reset; at most MAX_LINGERING per listener at once
#: (beyond, refused connections close at once: a flood cannot pin descriptors this way).
LINGER_S = 1.0
MAX_LINGERING = 64
#: At the cap, a newcomer must complete its request head within this long (or half the header
#: timeout, if shorter) to displace the slowest incomplete head; at most MAX_PROBATION at once.
PROBATION_S = 1.0
MAX_PROBATION = 64
_MAX_LOGGED_PEERS = 4096


def networks(specs: Iterable[str]) -> tuple[IpNetwork, ...]:
    """Parse ``["127.0.0.1", "10.0.0.0/8", "::1"]`` (addresses or CIDR blocks)."""
    return tuple(ipaddress.ip_network(s, strict=False) for s in specs)


@dataclass(frozen=True, slots=True)
class Policy:
    """One listener's limits. ``label`` names it in metrics and logs (``http``, ``ws``)."""

    label: str
    max_connections: int
    header_timeout_s: float
    idle_timeout_s: float


class ConnTable:
    """Open connections per peer address, shared by every listener of a node, with the per-IP
    cap (0 = off) and the exempt networks."""

    def __init__(self, max_per_ip: int, exempt: tuple[IpNetwork, ...]) -> None:
        self.max_per_ip = max_per_ip
        self.exempt = exempt
        self.per_ip: dict[str, int] = {}
        self._exempt_cache: dict[str, bool] = {}

    def is_exempt(self, ip: str) -> bool:
        hit = self._exempt_cache.get(ip)
        if hit is None:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                hit = False
            else:
                hit = any(addr in n for n in self.exempt)
            if len(self._exempt_cache) > 65_536:
                self._exempt_cache.clear()
            self._exempt_cache[ip] = hit
        return hit

    def admit(self, ip: str) -> bool:
        """Count a new connection from ``ip``; False (nothing counted) when over the cap."""
        n = self.per_ip.get(ip, 0)
        if self.max_per_ip and n >= self.max_per_ip and not self.is_exempt(ip):
            return False
        self.per_ip[ip] = n + 1
        return True

    def release(self, ip: str) -> None:
        n = self.per_ip.get(ip, 0) - 1
        if n > 0:
            self.per_ip[ip] = n
        else:
            self.per_ip.pop(ip, None)


class PeerLogLimiter:
    """At most one log line per peer address per ``interval_s``; counts what it suppressed."""

    def __init__(self, interval_s: float = MALFORMED_LOG_INTERVAL_S,
                 clock: Any = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self._last: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def allow(self, peer: str) -> int | None:
        """None to suppress; else the number suppressed since this peer's last logged line."""
        now = self.clock()
        last = self._last.get(peer)
        if last is not None and now - last[0] < self.interval_s:
            self._last[peer] = (last[0], last[1] + 1)
            return None
        self._last[peer] = (now, 0)
        self._last.move_to_end(peer)
        while len(self._last) > _MAX_LOGGED_PEERS:
            self._last.popitem(last=False)
        return 0 if last is None else last[1]


@dataclass(slots=True)
class Listener:
    """A listener's policy and live state: its open connections (oldest first)."""

    policy: Policy
    table: ConnTable
    metrics: Metrics
    limiter: PeerLogLimiter
    conns: OrderedDict[GuardedHandler, None] = field(default_factory=OrderedDict)
    lingering: int = 0
    probation: int = 0

    @property
    def full(self) -> bool:
        return len(self.conns) - self.probation >= self.policy.max_connections

    @property
    def probation_s(self) -> float:
        return min(PROBATION_S, self.policy.header_timeout_s / 2)

    def refuse(self, reason: str) -> None:
        self.metrics.conn_refused.labels(self.policy.label, reason).inc()
        if self.policy.label == "ws":
            self.metrics.ws_rejected.inc()

    def drain_idle(self) -> bool:
        """Close the oldest idle connection; False when none is idle."""
        for h in self.conns:
            if h.is_idle():
                h.force_close()
                self.metrics.conn_drained.labels(self.policy.label, "idle").inc()
                return True
        return False

    def evict_slowest_head(self, spare: GuardedHandler) -> bool:
        """Close the connection (other than ``spare``, not on probation) whose request head has
        been incomplete the longest; False when no head is pending."""
        slowest: GuardedHandler | None = None
        for h in self.conns:
            since = h.head_since
            if (since is not None and h is not spare and not h.on_probation
                    and (slowest is None or since < (slowest.head_since or since))):
                slowest = h
        if slowest is None:
            return False
        slowest.close_late_head()
        self.metrics.conn_drained.labels(self.policy.label, "slow_head").inc()
        return True


def _status_line(status: int, reason: str, body: str, extra: str = "") -> bytes:
    b = body.encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n{extra}"
            f"Connection: close\r\nContent-Length: {len(b)}\r\n\r\n").encode() + b


_TOO_MANY = _status_line(503, "Service Unavailable", "too many connections\n", "Retry-After: 1\r\n")
_TOO_MANY_IP = _status_line(503, "Service Unavailable", "too many connections from this address\n",
                            "Retry-After: 1\r\n")
_HEADER_TIMEOUT = _status_line(408, "Request Timeout", "request header not received in time\n")


class GuardedHandler(RequestHandler):
    """aiohttp's ``RequestHandler`` with the protections of the module docstring. It uses a few
    of aiohttp's private fields and methods (``_request_count``, ``_request_in_progress``,
    ``_upgraded``, ``_payload_parser``, ``_waiter``, ``_messages``, ``_process_keepalive``); the
    node's tests exercise each one, so an aiohttp change that moves them fails there."""

    def __init__(self, manager: web.Server, *, listener: Listener, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.listener = listener
        self.peer_ip = ""
        self._admitted = False
        self._header_timer: asyncio.TimerHandle | None = None
        #: Loop time when the current request's first byte arrived (None: no head pending).
        self.head_since: float | None = None
        self.on_probation = False
        self._probation_timer: asyncio.TimerHandle | None = None
        self._parsed = 0
        self._frames: ClientFrameCheck | None = None
        self._refused = False
        self._linger: asyncio.TimerHandle | None = None

    # -- admission ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        ls = self.listener
        peer = transport.get_extra_info("peername")
        self.peer_ip = str(peer[0]) if peer else ""
        if not ls.table.admit(self.peer_ip):
            self._refuse(_TOO_MANY_IP, "per_ip")
            return
        if ls.full and not ls.drain_idle():
            if ls.probation >= MAX_PROBATION:
                ls.table.release(self.peer_ip)
                self._refuse(_TOO_MANY, "max_connections")
                return
            self.on_probation = True
            ls.probation += 1
            self._probation_timer = self._loop.call_later(ls.probation_s, self._probation_over)
        self._admitted = True
        ls.conns[self] = None
        ls.metrics.connections.labels(ls.policy.label).set(len(ls.conns) - ls.probation)

    def _end_probation(self) -> None:
        if self.on_probation:
            self.on_probation = False
            self.listener.probation -= 1
            if self._probation_timer is not None:
                self._probation_timer.cancel()
                self._probation_timer = None

    def _probation_over(self) -> None:
        """The probation window ended with the head still incomplete: this one goes."""
        self._probation_timer = None
        if not self.on_probation:
            return
        self._end_probation()
        self.listener.refuse("late_head")
        self.close_late_head()

    def _proved(self) -> None:
        """A probationer completed its head in time: it stays; the slowest head makes room."""
        self._end_probation()
        ls = self.listener
        if len(ls.conns) - ls.probation > ls.policy.max_connections:
            ls.evict_slowest_head(spare=self)

    def _refuse(self, response: bytes, reason: str) -> None:
        ls = self.listener
        ls.refuse(reason)
        self._refused = True
        t = self.transport
        if t is None:
            return
        t.write(response)
        if ls.lingering < MAX_LINGERING and t.can_write_eof():
            ls.lingering += 1
            t.write_eof()
            self._linger = self._loop.call_later(LINGER_S, self.force_close)
        else:
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        self._end_probation()
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
            self.listener.lingering -= 1
        if self._admitted:
            self._admitted = False
            ls = self.listener
            ls.table.release(self.peer_ip)
            ls.conns.pop(self, None)
            ls.metrics.connections.labels(ls.policy.label).set(len(ls.conns) - ls.probation)
        super().connection_lost(exc)

    def is_idle(self) -> bool:
        """Waiting for a next request of which no byte has arrived (safe to close)."""
        w = self._waiter
        return (
            w is not None and not w.done() and self._header_timer is None
            and not self._request_in_progress and not self._messages
        )

    # -- reading ----------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._force_close or self._close or self._refused:
            return
        if self._payload_parser is not None:  # a WebSocket: check frames first
            self._ws_data(data)
            return
        if (
            self._header_timer is None and not self._request_in_progress and not self._messages
            and not self._upgraded
        ):
            # The first byte of a request: its head must be complete within the timeout.
            self._parsed = self._request_count
            self._header_timer = self._loop.call_later(
                self.listener.policy.header_timeout_s, self._header_timeout
            )
            self.head_since = self._loop.time()
        super().data_received(data)
        if self._header_timer is not None and self._request_count != self._parsed:
            self._disarm()
            if self.on_probation:
                self._proved()

    def _process_keepalive(self) -> None:
        # aiohttp's idle timer also fires on a connection that has started a request (it only
        # checks that no request is being handled); once a byte has arrived the header
        # timeout is in charge. aiohttp re-arms the idle timer after the next response.
        if self._header_timer is not None:
            self._keepalive_handle = None
            return
        super()._process_keepalive()

    def _disarm(self) -> None:
        self.head_since = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def close_late_head(self) -> None:
        """Close this connection because its request head is late (408)."""
        self._disarm()
        t = self.transport
        if t is not None:
            t.write(_HEADER_TIMEOUT)
        self.force_close()

    def _header_timeout(self) -> None:
        self._header_timer = None
        self.head_since = None
        if self._request_count != self._parsed or self._force_close:
            return
        ls = self.listener
        ls.metrics.http_timeouts.labels(ls.policy.label, "header").inc()
        t = self.transport
        if t is not None:
            t.write(_HEADER_TIMEOUT)
        self.force_close()

    def _ws_data(self, data: bytes) -> None:
        if self._frames is None:
            self._frames = ClientFrameCheck()
        ok, problem = self._frames.feed(data)
        if problem is None:
            super().data_received(data)
            return
        if ok:
            super().data_received(data[:ok])
        ls = self.listener
        ls.metrics.ws_closed.labels("protocol_error").inc()
        self._note(f"WebSocket protocol error, closed with 1002: {problem}")
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(close_frame(1002, problem[:60]))
        self.force_close()

    # -- errors -----------------------------------------------------------------------------
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        ls = self.listener
        headers = {}
        if isinstance(exc, ContentEncodingError):
            status, text = 415, "unsupported Content-Encoding\n"
            headers["Accept-Encoding"] = ", ".join(e for e in ENCODINGS if e != "identity")
        else:
            text = f"{status} Bad Request: malformed HTTP request\n"
        ls.metrics.http_malformed.labels(ls.policy.label, str(status)).inc()
        self._note(f"malformed HTTP request answered {status}: {_brief(exc, message)}")
        resp = web.Response(status=status, text=text, headers=headers)
        resp.force_close()
        return resp

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, RequestPayloadError | ContentEncodingError | ConnectionError):
            # A broken body or a vanished client: the peer's doing, already answered.
            self._note(f"request body error: {_brief(exc, None)}")
            return
        super().log_exception(*args, **kw)

    def _note(self, what: str) -> None:
        suppressed = self.listener.limiter.allow(self.peer_ip)
        if suppressed is None:
            return
        more = f" ({suppressed} more from this address suppressed)" if suppressed else ""
        log.info("%s from %s on %s%s", what, self.peer_ip or "?", self.listener.policy.label,
                 more)


def _brief(exc: BaseException | None, message: str | None) -> str:
    """A one-line description of a parse failure, never echoing request bytes at length."""
    text = message or (getattr(exc, "message", None) or str(exc) if exc else "")
    first = str(text).strip().splitlines()[0] if text else ""
    name = type(exc).__name__ if exc is not None else "error"
    return f"{name}: {first[:80]}" if first else name


class _GuardedServer(web.Server):
    def __init__(self, *args: Any, listener: Listener, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listener = listener

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, listener=self.listener, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """``AppRunner`` whose connections are :class:`GuardedHandler`\\ s of ``listener``; aiohttp's
    keep-alive timeout is the listener's idle timeout."""

    def __init__(self, app: web.Application, listener: Listener, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=listener.policy.idle_timeout_s, **kwargs)
        self.listener = listener

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts the app up; its handler kwargs
        return _GuardedServer(
            plain.request_handler, request_factory=plain.request_factory, loop=plain._loop,
            listener=self.listener, **plain._kwargs,
        )
