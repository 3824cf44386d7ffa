"""The HTTP shell: JSON-RPC on ``POST /``, ``GET /health``, ``GET /metrics`` (aiohttp)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from node.config import ApiConfig
from node.core import errors
from node.rpc import jsonrpc
from node.server.dispatch import Call, Dispatcher
from node.server.methods.table import PeerAddr
from node.server.metrics import Metrics
from node.server.security import TokenBucket, check_bearer

_JSON = "application/json"
_MAX_BUCKETS = 65_536


class HttpShell:
    """``health`` gives the ``/health`` document (its ``status`` is ``ok`` or not: 200 or 503);
    ``refresh_gauges`` runs before each ``/metrics`` scrape."""

    def __init__(
        self,
        api: ApiConfig,
        *,
        admin_token: str,
        dispatcher: Dispatcher,
        metrics: Metrics,
        health: Callable[[], dict[str, Any]],
        refresh_gauges: Callable[[], None],
    ) -> None:
        self.dispatcher = dispatcher
        self.node_metrics = metrics
        self.node_health = health
        self.refresh_gauges = refresh_gauges
        self.max_body = api.max_body_bytes
        self.rate = api.rate_limit_per_s
        self.burst = api.rate_limit_burst
        self.tx_rate = api.tx_rate_limit_per_s
        self.tx_burst = api.tx_rate_limit_burst
        self.token = admin_token
        # Per TCP connection (keyed by its transport): request and transaction rate buckets and
        # peer address. Entries of closed connections are swept whenever the table doubles; the
        # oldest are evicted past a hard bound.
        self._conns: dict[object, tuple[TokenBucket, TokenBucket, PeerAddr]] = {}
        self._sweep_at = 1024

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post("/", self.rpc)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def rpc(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()  # aiohttp enforces client_max_size
        except web.HTTPRequestEntityTooLarge:
            return self._too_big()
        transport = request.transport
        conn = self._conns.get(transport)
        if conn is None:
            peer = transport.get_extra_info("peername") if transport is not None else None
            conn = self._conns[transport] = (
                TokenBucket(self.rate, self.burst), TokenBucket(self.tx_rate, self.tx_burst), peer
            )
            if len(self._conns) > self._sweep_at:
                self._sweep()
        auth = request.headers.get("Authorization")
        call = Call("http", conn[2], check_bearer(auth, self.token) if auth else False, conn[0],
                    tx_bucket=conn[1])
        out = await self.dispatcher.handle(body, call)
        if out is None:
            return web.Response(status=204)
        return web.Response(body=out, content_type=_JSON)

    def _sweep(self) -> None:
        for t in [t for t in self._conns if getattr(t, "is_closing", lambda: True)()]:
            del self._conns[t]
        while len(self._conns) > _MAX_BUCKETS:
            del self._conns[next(iter(self._conns))]
        self._sweep_at = max(1024, 2 * len(self._conns))

    def _too_big(self) -> web.Response:
        self.node_metrics.errors.labels(str(errors.LIMIT_EXCEEDED)).inc()
        body = jsonrpc.error(
            None, errors.LIMIT_EXCEEDED, f"request body exceeds the limit of {self.max_body} bytes"
        )
        return web.Response(status=413, body=body, content_type=_JSON)

    async def health(self, request: web.Request) -> web.Response:
        st = self.node_health()
        return web.Response(
            body=orjson.dumps(st), content_type=_JSON, status=200 if st["status"] == "ok" else 503
        )

    async def metrics(self, request: web.Request) -> web.Response:
        self.refresh_gauges()
        return web.Response(
            body=self.node_metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"}
        )
