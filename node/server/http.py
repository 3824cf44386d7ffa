"""The HTTP shell: JSON-RPC on ``POST /``, ``GET /health``, ``GET /metrics`` (aiohttp)."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from node.core import errors
from node.rpc import jsonrpc
from node.server.dispatch import Call
from node.server.security import TokenBucket, check_bearer

if TYPE_CHECKING:
    from node.server.node import Node

_JSON = "application/json"
_MAX_BUCKETS = 65_536


class HttpShell:
    def __init__(self, node: Node) -> None:
        self.node = node
        api = node.cfg.api
        self.max_body = api.max_body_bytes
        self.rate = api.rate_limit_per_s
        self.burst = api.rate_limit_burst
        self.token = node.cfg.security.admin_token
        # One bucket per TCP connection (peer ip:port), bounded LRU.
        self._buckets: OrderedDict[object, TokenBucket] = OrderedDict()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body + 1)
        app.router.add_post("/", self.rpc)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        return app

    def _bucket(self, peer: object) -> TokenBucket:
        b = self._buckets.get(peer)
        if b is None:
            b = self._buckets[peer] = TokenBucket(self.rate, self.burst)
            if len(self._buckets) > _MAX_BUCKETS:
                self._buckets.popitem(last=False)
        return b

    async def rpc(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > self.max_body:
            return self._too_big()
        body = await request.content.read(self.max_body + 1)
        if len(body) > self.max_body:
            return self._too_big()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        peer_s = f"{peer[0]}:{peer[1]}" if peer else "?"
        auth = request.headers.get("Authorization")
        call = Call("http", peer_s, check_bearer(auth, self.token), self._bucket(peer))
        out = await self.node.dispatcher.handle(body, call)
        if out is None:
            return web.Response(status=204)
        return web.Response(body=out, content_type=_JSON)

    def _too_big(self) -> web.Response:
        self.node.metrics.errors.labels(str(errors.LIMIT_EXCEEDED)).inc()
        body = jsonrpc.error(None, errors.LIMIT_EXCEEDED, f"request body exceeds the limit of {self.max_body} bytes")
        return web.Response(status=413, body=body, content_type=_JSON)

    async def health(self, request: web.Request) -> web.Response:
        st = self.node.health()
        return web.Response(body=orjson.dumps(st), content_type=_JSON, status=200 if st["status"] == "ok" else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        self.node.refresh_gauges()
        return web.Response(body=self.node.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"})
