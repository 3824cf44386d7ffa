"""The HTTP shell: JSON-RPC on ``POST /``, ``GET /health``, ``GET /metrics`` (aiohttp).

Before a body is read, every request passes the browser-origin rules of
:mod:`node.server.origins`: a ``Host`` not in ``[api] vhosts`` (names; IP addresses always pass)
and an ``Origin`` not in ``[api] cors_origins`` answer 403, and a JSON-RPC POST must be
``application/json`` (415 otherwise). Allowed origins get CORS headers, and ``OPTIONS /``
answers their preflight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import compression_utils, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from node.config import ApiConfig
from node.core import errors
from node.rpc import jsonrpc
from node.server.dispatch import Call, Dispatcher
from node.server.methods.table import PeerAddr
from node.server.metrics import Metrics
from node.server.origins import OriginRules, VirtualHosts, is_json
from node.server.security import Bucket, IpBuckets, TokenBucket, check_bearer

_JSON = "application/json"
_MAX_BUCKETS = 65_536

#: ``Content-Encoding`` values a request body may carry: aiohttp decodes them as it reads, and
#: ``client_max_size`` bounds the *decoded* size (a gzip bomb answers 413 after at most
#: ``max_body_bytes`` of output). Anything else answers 415 with ``Accept-Encoding``.
ENCODINGS = tuple(
    e for e, ok in (("identity", True), ("gzip", True), ("deflate", True),
                    ("br", compression_utils.HAS_BROTLI), ("zstd", compression_utils.HAS_ZSTD))
    if ok
)


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
        ip_buckets: IpBuckets | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.ip_buckets = ip_buckets
        self.body_timeout_s = api.body_timeout_s
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
        self._conns: dict[object, tuple[Bucket, Bucket, PeerAddr]] = {}
        self._sweep_at = 1024
        self.vhosts = VirtualHosts(api.vhosts)
        self.cors = OriginRules(api.cors_origins)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post("/", self.rpc)
        app.router.add_route("OPTIONS", "/", self.preflight)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        return app

    def _browser_check(self, request: web.Request) -> web.Response | None:
        """403 for a ``Host`` or ``Origin`` the config does not allow; None to go on."""
        if not self.vhosts.allows(request.headers.get("Host")):
            return self._forbidden("host", "invalid host specified (api.vhosts)")
        origin = request.headers.get("Origin")
        if origin is not None and not self.cors.allows(origin):
            return self._forbidden("origin", "origin not allowed (api.cors_origins)")
        return None

    def _forbidden(self, reason: str, text: str) -> web.Response:
        self.node_metrics.browser_refused.labels("http", reason).inc()
        return web.Response(status=403, text=text + "\n")

    @staticmethod
    def _cors(request: web.Request, resp: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin is not None:  # (allowed: _browser_check refused the others)
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Vary"] = "Origin"

    async def preflight(self, request: web.Request) -> web.Response:
        """CORS preflight of a cross-origin POST from an allowed origin."""
        refused = self._browser_check(request)
        if refused is not None:
            return refused
        if "Origin" not in request.headers:
            return web.Response(status=204, headers={"Allow": "POST, GET, OPTIONS"})
        resp = web.Response(status=204, headers={
            "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type, Authorization, Content-Encoding",
            "Access-Control-Max-Age": "600",
        })
        self._cors(request, resp)
        return resp

    async def rpc(self, request: web.Request) -> web.Response:
        refused = self._browser_check(request)
        if refused is not None:
            return refused
        if not is_json(request.headers.get("Content-Type")):
            self.node_metrics.browser_refused.labels("http", "content_type").inc()
            return self._refuse(
                415, errors.INVALID_REQUEST,
                "JSON-RPC requests must have Content-Type: application/json",
                headers={"Accept": _JSON},
            )
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding and encoding not in ENCODINGS:
            return self._refuse(
                415,
                errors.INVALID_REQUEST,
                f"unsupported Content-Encoding {encoding[:40]!r}: use one of "
                + ", ".join(ENCODINGS),
                headers={"Accept-Encoding": ", ".join(e for e in ENCODINGS if e != "identity")},
            )
        try:
            async with asyncio.timeout(self.body_timeout_s):
                body = await request.read()  # aiohttp enforces client_max_size (decoded size)
        except web.HTTPRequestEntityTooLarge:
            return self._too_big()
        except TimeoutError:
            self.node_metrics.http_timeouts.labels("http", "body").inc()
            resp = self._refuse(
                408, errors.LIMIT_EXCEEDED,
                f"request body not received within {self.body_timeout_s:g} s "
                "(api.body_timeout_s)",
            )
            resp.force_close()
            return resp
        except (RequestPayloadError, HttpProcessingError):
            # A body that does not decode as its Content-Encoding says (or a broken chunked
            # encoding): the client's fault, answered, never a 500.
            resp = self._refuse(
                400,
                errors.PARSE_ERROR,
                f"parse error: the body is not valid {encoding or 'chunked data'}",
            )
            resp.force_close()  # the rest of the stream cannot be trusted
            return resp
        transport = request.transport
        conn = self._conns.get(transport)
        if conn is None:
            peer = transport.get_extra_info("peername") if transport is not None else None
            req, tx = TokenBucket(self.rate, self.burst), TokenBucket(self.tx_rate, self.tx_burst)
            if self.ip_buckets is not None and peer:
                conn = (*self.ip_buckets.link(str(peer[0]), req, tx), peer)
            else:
                conn = (req, tx, peer)
            self._conns[transport] = conn
            if len(self._conns) > self._sweep_at:
                self._sweep()
        auth = request.headers.get("Authorization")
        call = Call("http", conn[2], check_bearer(auth, self.token) if auth else False, conn[0],
                    tx_bucket=conn[1])
        out = await self.dispatcher.handle(body, call)
        resp = web.Response(status=204) if out is None else web.Response(body=out,
                                                                         content_type=_JSON)
        if "Origin" in request.headers:
            self._cors(request, resp)
        return resp

    def _sweep(self) -> None:
        for t in [t for t in self._conns if getattr(t, "is_closing", lambda: True)()]:
            del self._conns[t]
        while len(self._conns) > _MAX_BUCKETS:
            del self._conns[next(iter(self._conns))]
        self._sweep_at = max(1024, 2 * len(self._conns))

    def _refuse(self, status: int, code: int, message: str,
                headers: dict[str, str] | None = None) -> web.Response:
        """An HTTP-level refusal carrying a JSON-RPC error body (``id: null``), counted."""
        self.node_metrics.errors.labels(str(code)).inc()
        return web.Response(status=status, body=jsonrpc.error(None, code, message),
                            content_type=_JSON, headers=headers)

    def _too_big(self) -> web.Response:
        self.node_metrics.errors.labels(str(errors.LIMIT_EXCEEDED)).inc()
        body = jsonrpc.error(
            None, errors.LIMIT_EXCEEDED, f"request body exceeds the limit of {self.max_body} bytes"
        )
        return web.Response(status=413, body=body, content_type=_JSON)

    async def health(self, request: web.Request) -> web.Response:
        refused = self._browser_check(request)
        if refused is not None:
            return refused
        st = self.node_health()
        return web.Response(
            body=orjson.dumps(st), content_type=_JSON, status=200 if st["status"] == "ok" else 503
        )

    async def metrics(self, request: web.Request) -> web.Response:
        refused = self._browser_check(request)
        if refused is not None:
            return refused
        self.refresh_gauges()
        return web.Response(
            body=self.node_metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"}
        )
