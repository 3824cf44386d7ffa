"""JSON-RPC dispatch shared by the HTTP and WebSocket shells.

:class:`Dispatcher` takes a request body (bytes) and a :class:`Call` describing who is calling,
and returns the response body (or ``None`` when every request was a notification). It applies,
per request: the rate limit (-32005), admin authorization (-32010 with ``data.requestId``, the
node's id of the request, which the audit record carries too; every item of a batch has its own,
and the audit record also carries the JSON-RPC ``rpc_id``), method lookup
(-32601), the request timeout (-32005), the response size (-32005 naming
``api.max_response_bytes``: one response, or a batch's responses together, past which the rest
of the batch is not executed, as geth does with its batch response limit) and error mapping.
Unexpected exceptions become -32603 with a request id; the traceback goes to the log, never to
the client. Handlers marked ``offload`` run (with the encoding of their result) on a worker
thread when their result may be large.
"""

from __future__ import annotations

import asyncio
import logging
import time

from node.core.errors import (
    LimitExceeded,
    LocalError,
    MethodNotFound,
    MethodUnavailable,
    NodeError,
    Unauthorized,
)
from node.rpc import jsonrpc
from node.rpc.jsonrpc import Params, Request
from node.server.methods.table import Call, Handler, MethodTable, new_request_id
from node.server.metrics import Metrics
from node.server.security import AuditLog

log = logging.getLogger("node.rpc")


class Dispatcher:
    """Runs requests against ``table`` (see :mod:`node.server.methods.table` for the admission
    rules a method carries)."""

    def __init__(
        self,
        table: MethodTable,
        *,
        metrics: Metrics,
        audit: AuditLog,
        timeout_s: float,
        max_batch: int,
        max_depth: int = jsonrpc.MAX_DEPTH,
        max_response_bytes: int = 32 << 20,
    ) -> None:
        self.table = table
        self.metrics = metrics
        self.audit = audit
        self.timeout_s = timeout_s
        self.max_batch = max_batch
        self.max_depth = max_depth
        self.max_response = max_response_bytes
        self._offload = {m.name: m.offload for m in table if m.offload is not None}
        self._handlers: dict[str, Handler] = {m.name: m.handler for m in table}
        self._async = frozenset(m.name for m in table if m.is_async)
        self._ws_only = frozenset(m.name for m in table if m.ws_only)
        self._admin = frozenset(m.name for m in table if m.admin)
        self._count = metrics.rpc.count
        self._observe = metrics.rpc.observe
        # Methods with no admission rule beyond the rate limit: checked with one set lookup.
        self._plain = (frozenset(self._handlers) - self._async - self._ws_only - self._admin
                       - frozenset(self._offload))

    async def handle(self, body: bytes, call: Call) -> bytes | None:
        t0 = time.perf_counter()
        call.new_request()
        parsed = jsonrpc.parse(body, max_batch=self.max_batch, max_depth=self.max_depth)
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
                    if len(resp) > self.max_response:
                        resp = self._too_large(item.id, len(resp))
                else:
                    self.metrics.rate_limited.labels(call.transport).inc()
                    resp = self._err(item.id, LimitExceeded("rate limit exceeded"))
                self._observe(call.transport, time.perf_counter() - t0)
                return None if item.notification else resp
        out: list[bytes] = []
        size = 2  # the batch's brackets
        full = False  # the batch response reached max_response_bytes: the rest is not run
        for item in parsed.items:
            if isinstance(item, bytes):
                self._count_error(item)
                out.append(item)
                size += len(item) + 1
                continue
            if parsed.batch:
                call.new_request()  # each item its own request id (logs, audit, -32010)
            if full:
                if not item.notification:
                    out.append(self._err(item.id, LimitExceeded(
                        f"not executed: the batch response reached the limit of "
                        f"{self.max_response} bytes (api.max_response_bytes)")))
                continue
            # Most handlers are synchronous: answer them without creating a coroutine.
            refused = self._check(item, call)
            if refused is not None:
                one = refused
            elif item.method in self._async:
                one = await self._call_async(item, call)
            elif item.method in self._offload and self._wants_thread(item):
                one = await asyncio.to_thread(self._call_sync, item, call)
            else:
                one = self._call_sync(item, call)
            if len(one) > self.max_response:
                one = self._too_large(item.id, len(one))
            elif parsed.batch and size + len(one) + 1 > self.max_response:
                full = True
                one = self._err(item.id, LimitExceeded(
                    f"response of {len(one)} bytes would take the batch response past the "
                    f"limit of {self.max_response} bytes (api.max_response_bytes); later "
                    "requests of the batch are not executed"))
            if not item.notification:
                out.append(one)
                size += len(one) + 1
        self._observe(call.transport, time.perf_counter() - t0)
        if not out:
            return None
        return jsonrpc.batch(out) if parsed.batch else out[0]

    def _wants_thread(self, req: jsonrpc.Request) -> bool:
        return self._offload[req.method](Params(req.params))

    def _too_large(self, id_: jsonrpc.Id, n: int) -> bytes:
        return self._err(id_, LimitExceeded(
            f"response of {n} bytes exceeds the limit of {self.max_response} bytes "
            "(api.max_response_bytes)"))

    def _count_error(self, resp: bytes) -> None:
        # Error responses are rare: decode the code only for them.
        i = resp.find(b'"code":')
        code = resp[i + 7 : resp.find(b",", i)].decode() if i >= 0 else "?"
        self.metrics.errors.labels(code).inc()

    def _err(self, id_: jsonrpc.Id, e: NodeError) -> bytes:
        """The error response for ``e`` (its wire code, message and data), counted."""
        self.metrics.errors.labels(str(e.rpc_code)).inc()
        return jsonrpc.error(id_, e.rpc_code, e.message, e.data)

    def _check(self, req: jsonrpc.Request, call: Call) -> bytes | None:
        """Admission of one request: rate limit, method lookup, transport, authorization.
        Returns an error response, or None when the handler may run."""
        method = req.method
        known = method in self._handlers
        self._count(method if known else "(unknown)", call.transport)
        if call.bucket is not None and not call.bucket.take():
            self.metrics.rate_limited.labels(call.transport).inc()
            return self._err(req.id, LimitExceeded("rate limit exceeded"))
        if not known:
            return self._err(req.id, MethodNotFound(f"method not found: {method}"))
        if method in self._ws_only and call.transport != "ws":
            return self._err(
                req.id, MethodUnavailable(f"{method} is only available over WebSocket")
            )
        if method in self._admin:
            rid = call.request_id
            if not call.admin:
                self.metrics.unauthorized.inc()
                self.audit.record("auth_failure", peer=call.peer, request_id=rid, method=method,
                                  rpc_id=req.id)
                return self._err(
                    req.id,
                    Unauthorized("unauthorized: admin methods need a valid bearer token",
                                 data={"requestId": rid}),
                )
            self.audit.record("admin_call", peer=call.peer, request_id=rid, method=method,
                              rpc_id=req.id)
        return None

    def _call_sync(self, req: jsonrpc.Request, call: Call) -> bytes:
        try:
            value = self._handlers[req.method](Params(req.params), call)
        except Exception as e:
            return self._failure(req, call, e)
        return jsonrpc.result(req.id, value)

    async def _call_async(self, req: jsonrpc.Request, call: Call) -> bytes:
        try:
            async with asyncio.timeout(self.timeout_s):
                value = await self._handlers[req.method](Params(req.params), call)
        except Exception as e:
            return self._failure(req, call, e)
        return jsonrpc.result(req.id, value)

    def _failure(self, req: jsonrpc.Request, call: Call, e: Exception) -> bytes:
        if isinstance(e, NodeError):
            return self._err(req.id, e)
        if isinstance(e, TimeoutError):
            return self._err(
                req.id, LimitExceeded(f"request timed out after {self.timeout_s * 1000:.0f} ms")
            )
        log.error(
            "internal error in %s", req.method, exc_info=e, extra={"request_id": call.request_id}
        )
        return self._err(req.id, LocalError(f"internal error (request id {call.request_id})"))


__all__ = ["Call", "Dispatcher", "Handler", "new_request_id"]
