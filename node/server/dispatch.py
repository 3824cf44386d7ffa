"""JSON-RPC dispatch shared by the HTTP and WebSocket shells.

:class:`Dispatcher` takes a request body (bytes) and a :class:`Call` describing who is calling,
and returns the response body (or ``None`` when every request was a notification). It applies,
per request: the rate limit (-32005), admin authorization (-32010, audited), method lookup
(-32601), the request timeout (-32005) and error mapping. Unexpected exceptions become -32603 with
a request id; the traceback goes to the log, never to the client.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from node.core import errors
from node.core.errors import NodeError
from node.rpc import jsonrpc
from node.rpc.jsonrpc import Params, Request
from node.server.metrics import Metrics
from node.server.security import AuditLog, TokenBucket, is_admin_method

log = logging.getLogger("node.rpc")

Handler = Callable[[Params, "Call"], Any | Awaitable[Any]]

_ids = itertools.count(1)
_PID = f"{os.getpid():x}"


def new_request_id() -> str:
    return f"{_PID}-{next(_ids):x}"


@dataclass(slots=True)
class Call:
    """Who is calling: transport (``http``/``ws``), peer address, admin flag, rate bucket.

    ``request_id`` (for logs and the audit trail) is made on first use: most requests never
    need one."""

    transport: str
    peer_addr: Any  # (host, port) from the socket, or None; formatted only when needed
    admin: bool
    bucket: TokenBucket | None
    conn: Any = None  # the WebSocket connection, for subscription methods
    _rid: str = ""

    @property
    def peer(self) -> str:
        a = self.peer_addr
        return f"{a[0]}:{a[1]}" if a else "?"

    @property
    def request_id(self) -> str:
        if not self._rid:
            self._rid = new_request_id()
        return self._rid

    def new_request(self) -> None:
        """A new message on the same connection: the next request id will be a new one."""
        self._rid = ""


class Dispatcher:
    def __init__(
        self,
        methods: dict[str, Handler],
        *,
        metrics: Metrics,
        audit: AuditLog,
        timeout_s: float,
        max_batch: int,
        ws_only: frozenset[str] = frozenset(),
    ) -> None:
        self.methods = methods
        self.metrics = metrics
        self.audit = audit
        self.timeout_s = timeout_s
        self.max_batch = max_batch
        self.ws_only = ws_only
        self._async = {name for name, h in methods.items() if inspect.iscoroutinefunction(h)}
        self._count = metrics.rpc.count
        self._observe = metrics.rpc.observe
        # Methods with no admission rule beyond the rate limit: checked with one set lookup.
        self._plain = frozenset(
            m for m in methods if m not in self._async and m not in ws_only and not is_admin_method(m)
        )

    async def handle(self, body: bytes, call: Call) -> bytes | None:
        t0 = time.perf_counter()
        call.new_request()
        parsed = jsonrpc.parse(body, max_batch=self.max_batch)
        if parsed.fatal is not None:
            self._count_error(parsed.fatal)
            self._observe(call.transport, time.perf_counter() - t0)
            return parsed.fatal
        if not parsed.batch:
            item = parsed.items[0]
            if isinstance(item, Request) and item.method in self._plain:
                # The common case: one plain synchronous call.
                self._count(item.method, call.transport)
                bucket = call.bucket
                if bucket is None or bucket.take():
                    resp = self._call_sync(item, call)
                else:
                    self.metrics.rate_limited.labels(call.transport).inc()
                    resp = self._err(item.id, errors.LIMIT_EXCEEDED, "rate limit exceeded")
                self._observe(call.transport, time.perf_counter() - t0)
                return None if item.notification else resp
        out: list[bytes] = []
        for item in parsed.items:
            if isinstance(item, bytes):
                self._count_error(item)
                out.append(item)
                continue
            # Most handlers are synchronous: answer them without creating a coroutine.
            refused = self._check(item, call)
            if refused is not None:
                one = refused
            elif item.method in self._async:
                one = await self._call_async(item, call)
            else:
                one = self._call_sync(item, call)
            if not item.notification:
                out.append(one)
        self._observe(call.transport, time.perf_counter() - t0)
        if not out:
            return None
        return jsonrpc.batch(out) if parsed.batch else out[0]

    def _count_error(self, resp: bytes) -> None:
        # Error responses are rare: decode the code only for them.
        i = resp.find(b'"code":')
        code = resp[i + 7 : resp.find(b",", i)].decode() if i >= 0 else "?"
        self.metrics.errors.labels(code).inc()

    def _err(self, id_: jsonrpc.Id, code: int, message: str, data: object = None) -> bytes:
        self.metrics.errors.labels(str(code)).inc()
        return jsonrpc.error(id_, code, message, data)

    def _check(self, req: jsonrpc.Request, call: Call) -> bytes | None:
        """Admission of one request: rate limit, method lookup, transport, authorization.
        Returns an error response, or None when the handler may run."""
        method = req.method
        known = method in self.methods
        self._count(method if known else "(unknown)", call.transport)
        if call.bucket is not None and not call.bucket.take():
            self.metrics.rate_limited.labels(call.transport).inc()
            return self._err(req.id, errors.LIMIT_EXCEEDED, "rate limit exceeded")
        if not known:
            return self._err(req.id, errors.METHOD_NOT_FOUND, f"method not found: {method}")
        if method in self.ws_only and call.transport != "ws":
            return self._err(req.id, errors.METHOD_NOT_FOUND, f"{method} is only available over WebSocket")
        if is_admin_method(method):
            if not call.admin:
                self.metrics.unauthorized.inc()
                self.audit.record("auth_failure", peer=call.peer, request_id=call.request_id, method=method)
                return self._err(req.id, errors.UNAUTHORIZED, "unauthorized: admin methods need a valid bearer token")
            self.audit.record("admin_call", peer=call.peer, request_id=call.request_id, method=method)
        return None

    def _call_sync(self, req: jsonrpc.Request, call: Call) -> bytes:
        try:
            value = self.methods[req.method](Params(req.params), call)
        except Exception as e:
            return self._failure(req, call, e)
        return jsonrpc.result(req.id, value)

    async def _call_async(self, req: jsonrpc.Request, call: Call) -> bytes:
        try:
            async with asyncio.timeout(self.timeout_s):
                value = await self.methods[req.method](Params(req.params), call)
        except Exception as e:
            return self._failure(req, call, e)
        return jsonrpc.result(req.id, value)

    def _failure(self, req: jsonrpc.Request, call: Call, e: Exception) -> bytes:
        if isinstance(e, NodeError):
            return self._err(req.id, e.rpc_code, e.message, e.data)
        if isinstance(e, TimeoutError):
            return self._err(req.id, errors.LIMIT_EXCEEDED, f"request timed out after {self.timeout_s * 1000:.0f} ms")
        log.error("internal error in %s", req.method, exc_info=e, extra={"request_id": call.request_id})
        return self._err(req.id, errors.INTERNAL_ERROR, f"internal error (request id {call.request_id})")
