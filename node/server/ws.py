"""The WebSocket shell (RFC 6455 via aiohttp): JSON-RPC plus subscriptions on ``ws_bind``.

Per connection: a bounded outgoing queue drained by one writer task (a consumer that falls behind
is closed with 1008 and counted), a token bucket (over-limit requests get -32005; a connection
that keeps exceeding it is closed with 1008 and audited), server pings every
``ws_ping_interval_s`` (aiohttp heartbeat: no pong within half the interval closes the socket),
frames larger than ``max_frame_bytes`` close with 1009, and ``max_connections``: an extra
handshake gets HTTP 503 with ``Retry-After``. A handshake whose ``Host`` is not in ``[api] vhosts``
or whose ``Origin`` (browsers send one) is not in ``[api] ws_origins`` gets 403
(:mod:`node.server.origins`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable

from aiohttp import WSCloseCode, WSMsgType, web

from node.config import ApiConfig
from node.server.dispatch import Call, Dispatcher
from node.server.metrics import Metrics
from node.server.origins import OriginRules, VirtualHosts
from node.server.pubsub import Subscription
from node.server.security import AuditLog, IpBuckets, TokenBucket, check_bearer
from node.server.ws_text_frame import text_frame

log = logging.getLogger("node.ws")


#: Bytes the kernel-side transport buffer may hold before messages wait in the bounded queue.
HIGH_WATER = 256 * 1024


class WsConn:
    """One WebSocket connection's outgoing side and subscriptions.

    Fast path: when nothing is queued and the transport's buffer is below ``HIGH_WATER``, a
    message is framed and written at once (no task switch per message, which is what makes
    fan-out to thousands of sockets cheap). Otherwise it waits in a queue of at most ``limit``
    messages drained by :meth:`writer`; overflowing that queue closes the connection (1008).
    """

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None, limit: int,
                 on_overflow: Callable[[WsConn], None]) -> None:
        self.ws = ws
        self.transport = transport
        self.limit = limit
        self.subs: dict[str, Subscription] = {}
        self._q: collections.deque[str] = collections.deque()
        self._wake = asyncio.Event()
        self._on_overflow = on_overflow
        self.closing = False

    def enqueue(self, message: str) -> None:
        if self.closing:
            return
        t = self.transport
        if (
            not self._q
            and t is not None
            and not t.is_closing()
            and t.get_write_buffer_size() < HIGH_WATER
        ):
            t.write(text_frame(message.encode()))
            return
        if len(self._q) >= self.limit:
            self.closing = True
            self._q.clear()
            self._on_overflow(self)
            return
        self._q.append(message)
        self._wake.set()

    async def writer(self) -> None:
        q, ws = self._q, self.ws
        while not ws.closed:
            while q:
                await ws.send_str(q.popleft())
            self._wake.clear()
            if not q:
                await self._wake.wait()


class WsShell:
    """``on_close`` runs for every connection that ends (the pubsub drops its subscriptions)."""

    def __init__(
        self,
        api: ApiConfig,
        *,
        admin_token: str,
        dispatcher: Dispatcher,
        metrics: Metrics,
        audit: AuditLog,
        on_close: Callable[[WsConn], None],
        ip_buckets: IpBuckets | None = None,
    ) -> None:
        self.api = api
        self.ip_buckets = ip_buckets
        self.token = admin_token
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.audit = audit
        self.on_close = on_close
        self.conns: set[WsConn] = set()
        self.accepting = True
        self.vhosts = VirtualHosts(api.vhosts)
        self.origins = OriginRules(api.ws_origins)

    def app(self) -> web.Application:
        app = web.Application()
        for path in ("/", "/ws", "/wss"):
            app.router.add_get(path, self.handle)
        return app

    def _overflow(self, conn: WsConn) -> None:
        self.metrics.ws_closed.labels("slow_consumer").inc()
        asyncio.get_running_loop().create_task(
            conn.ws.close(
                code=WSCloseCode.POLICY_VIOLATION, message=b"slow consumer: outgoing queue full"
            )
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        m = self.metrics
        if not self.accepting:
            return web.Response(status=503, text="shutting down\n", headers={"Retry-After": "5"})
        if not self.vhosts.allows(request.headers.get("Host")):
            m.browser_refused.labels("ws", "host").inc()
            return web.Response(status=403, text="invalid host specified (api.vhosts)\n")
        origin = request.headers.get("Origin")
        if origin is not None and not self.origins.allows(origin):
            m.browser_refused.labels("ws", "origin").inc()
            return web.Response(status=403, text="origin not allowed (api.ws_origins)\n")
        if len(self.conns) >= self.api.max_connections:
            m.ws_rejected.inc()
            return web.Response(
                status=503, text="too many connections\n", headers={"Retry-After": "1"}
            )
        ws = web.WebSocketResponse(
            heartbeat=self.api.ws_ping_interval_s or None,
            max_msg_size=self.api.max_frame_bytes,
            autoping=True,
            compress=False,  # the notification fast path writes uncompressed frames itself
        )
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="expected a WebSocket upgrade\n")
        await ws.prepare(request)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        conn = WsConn(ws, request.transport, self.api.ws_queue_messages, self._overflow)
        bucket = TokenBucket(self.api.rate_limit_per_s, self.api.rate_limit_burst)
        tx_bucket = TokenBucket(self.api.tx_rate_limit_per_s, self.api.tx_rate_limit_burst)
        req_b, tx_b = (
            self.ip_buckets.link(str(peer[0]), bucket, tx_bucket)
            if self.ip_buckets is not None and peer else (bucket, tx_bucket)
        )
        call = Call(
            "ws",
            peer,
            check_bearer(request.headers.get("Authorization"), self.token),
            req_b,
            conn=conn,
            tx_bucket=tx_b,
        )
        self.conns.add(conn)
        m.ws_connections.set(len(self.conns))
        writer = asyncio.create_task(conn.writer())
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT or msg.type == WSMsgType.BINARY:
                    body = msg.data.encode() if isinstance(msg.data, str) else msg.data
                    out = await self.dispatcher.handle(body, call)
                    if out is not None:
                        conn.enqueue(out.decode())
                    if req_b.violations >= self.api.ws_rate_violations_close:
                        m.ws_closed.labels("rate_limit").inc()
                        self.audit.record(
                            "limit_close", peer=call.peer, request_id=call.request_id, reason="rate"
                        )
                        await ws.close(
                            code=WSCloseCode.POLICY_VIOLATION, message=b"rate limit exceeded"
                        )
                        break
                elif msg.type == WSMsgType.ERROR:
                    # aiohttp already closed with 1009 (too big) or 1002 (protocol error)
                    exc = ws.exception()
                    if ws.close_code == WSCloseCode.MESSAGE_TOO_BIG:
                        m.ws_closed.labels("frame_too_big").inc()
                    log.info("websocket error from %s: %s", call.peer, exc)
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            conn.closing = True
            writer.cancel()
            self.on_close(conn)
            self.conns.discard(conn)
            m.ws_connections.set(len(self.conns))
        return ws

    async def close_all(
        self, code: int = WSCloseCode.GOING_AWAY, reason: bytes = b"server shutting down"
    ) -> None:
        self.accepting = False
        await asyncio.gather(
            *(c.ws.close(code=code, message=reason) for c in list(self.conns)),
            return_exceptions=True,
        )
