"""JSON-RPC over pooled HTTP with failover, health scoring, backoff and Retry-After.

:class:`RpcClient` sends each call to the best endpoint (:class:`~node.adapters.health.HealthBook`)
and, on a transport error, timeout, 429, 5xx, malformed body or retryable JSON-RPC error, to the
next; when a whole round fails it sleeps a full-jitter backoff (at least the largest bounded
``Retry-After`` seen) and tries again, up to ``attempts`` rounds. Every failure is logged with its
endpoint and kind; none escapes as anything but an :class:`~node.adapters.errors.AdapterError`.

HTTP connections are pooled per endpoint by one :class:`aiohttp.ClientSession` (keep-alive).
Requests are encoded with the node's codec (:mod:`node.rpc.jsonrpc`), responses decoded here
(:func:`decode_response`), so the same framing is used on both ends.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp
import orjson

from node.adapters.backoff import Backoff, BackoffPolicy, parse_retry_after
from node.adapters.errors import (
    AdapterError,
    AdapterStopped,
    AllEndpointsFailed,
    EndpointUnavailable,
    MalformedResponse,
    RateLimited,
    RpcFailure,
    ServerBusy,
)
from node.adapters.health import EndpointHealth, HealthBook
from node.rpc import jsonrpc

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


def decode_response(body: bytes, expected_id: int, *, endpoint: str | None = None) -> Any:
    """The ``result`` of one JSON-RPC response; raises ``MalformedResponse`` or ``RpcFailure``."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise MalformedResponse(
            f"invalid JSON ({e}); body starts {body[:60]!r}", endpoint=endpoint
        ) from None
    return result_of(obj, expected_id, endpoint)


def result_of(obj: object, expected_id: int, endpoint: str | None) -> Any:
    """The ``result`` of a decoded response object; raises ``MalformedResponse`` or
    ``RpcFailure``."""
    if not isinstance(obj, dict) or obj.get("jsonrpc") != "2.0":
        raise MalformedResponse("not a JSON-RPC 2.0 response object", endpoint=endpoint)
    if "error" in obj:
        err = obj["error"]
        if not isinstance(err, dict) or not isinstance(err.get("code"), int):
            raise MalformedResponse(
                "error member is not a JSON-RPC error object", endpoint=endpoint
            )
        raise RpcFailure(
            err["code"], str(err.get("message", "")), data=err.get("data"), endpoint=endpoint
        )
    if obj.get("id") != expected_id:
        raise MalformedResponse(
            f"response id {obj.get('id')!r} does not match request id {expected_id}",
            endpoint=endpoint,
        )
    if "result" not in obj:
        raise MalformedResponse("response has neither result nor error", endpoint=endpoint)
    return obj["result"]


class RpcClient:
    """Failover JSON-RPC client over a list of endpoints (see the module docstring)."""

    def __init__(
        self,
        health: HealthBook,
        *,
        policy: BackoffPolicy,
        rng: random.Random,
        request_timeout_s: float = 5.0,
        attempts: int = 4,
        pool_size: int = 8,
        logger: logging.Logger | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.health = health
        self.policy = policy
        self.rng = rng
        self.request_timeout_s = request_timeout_s
        self.attempts = attempts
        self.pool_size = pool_size
        self.log = logger or logging.getLogger("node.adapters")
        self._sleep = sleep
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        #: Recent retry delays (seconds), newest last: the backoff schedule actually used.
        self.retry_delays: deque[float] = deque(maxlen=256)
        self.errors_by_kind: dict[str, int] = {}

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled session, created on first use; raises ``AdapterStopped`` after
        :meth:`close`."""
        if self._closed:
            raise AdapterStopped("the adapter's connections are closed (stopped)")
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit_per_host=self.pool_size, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def reopen(self) -> None:
        """Allow new connections again after :meth:`close` (an adapter restarted)."""
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self, method: str, params: list[Any] | dict[str, Any], parse: Callable[[Any], T]
    ) -> T:
        """Call ``method`` with failover; ``parse`` validates the result (a
        ``ValueError``/``TypeError``/
        ``KeyError`` there counts as a malformed response from that endpoint)."""
        results = await self._with_failover([(method, params)], lambda rs: [parse(rs[0])])
        return results[0]

    async def call_batch(
        self, calls: Sequence[tuple[str, list[Any] | dict[str, Any]]], parse: Callable[[Any], T]
    ) -> list[T]:
        """Several calls in one HTTP request (a JSON-RPC batch), each result through ``parse``."""
        if not calls:
            return []
        return await self._with_failover(list(calls), lambda rs: [parse(r) for r in rs])

    async def _with_failover(
        self,
        calls: list[tuple[str, list[Any] | dict[str, Any]]],
        parse: Callable[[list[Any]], list[T]],
    ) -> list[T]:
        backoff = Backoff(self.policy, self.rng)
        last: AdapterError | None = None
        what = calls[0][0] if len(calls) == 1 else f"batch of {len(calls)} ({calls[0][0]}...)"
        for attempt in range(self.attempts):
            order = self.health.ready() or self.health.order()[:1]
            retry_after: float | None = None
            for eh in order:
                url = eh.endpoint.rpc_url
                started = time.monotonic()
                try:
                    raw = await self._post(eh, calls)
                    try:
                        out = parse(raw)
                    except (ValueError, TypeError, KeyError, IndexError) as e:
                        raise MalformedResponse(
                            f"unexpected result shape for {what}: {e}", endpoint=url
                        ) from None
                except RateLimited as e:
                    ra = (
                        e.retry_after_s
                        if e.retry_after_s is not None
                        else self.policy.ceiling(attempt)
                    )
                    ra = min(ra, self.policy.max_retry_after_s)
                    retry_after = ra if retry_after is None else min(retry_after, ra)
                    self.health.limit(eh, ra, str(e))
                    self._note(e, what)
                    last = e
                    continue
                except RpcFailure as e:
                    if not e.retryable:
                        # a deterministic answer about our request: another endpoint would say the
                        # same
                        self.health.success(eh, time.monotonic() - started)
                        raise
                    self.health.failure(eh, str(e))
                    self._note(e, what)
                    last = e
                    continue
                except AdapterError as e:
                    if isinstance(e, ServerBusy) and e.retry_after_s is not None:
                        retry_after = min(e.retry_after_s, self.policy.max_retry_after_s)
                    self.health.failure(eh, str(e))
                    self._note(e, what)
                    last = e
                    continue
                self.health.success(eh, time.monotonic() - started)
                return out
            if attempt + 1 < self.attempts:
                delay = backoff.next_delay(retry_after)
                self.retry_delays.append(delay)
                self.log.info(
                    "%s: every endpoint failed (round %d); retrying in %.3fs",
                    what,
                    attempt + 1,
                    delay,
                )
                await self._sleep(delay)
        raise AllEndpointsFailed(f"{what} failed on every endpoint {self.attempts} times", last)

    def _note(self, e: AdapterError, what: str) -> None:
        kind = type(e).__name__
        self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + 1
        # malformed answers are the peer's bug, worth an error line; the rest are weather
        level = logging.ERROR if isinstance(e, MalformedResponse) else logging.WARNING
        self.log.log(level, "%s: %s: %s", what, kind, e)

    async def _post(
        self, eh: EndpointHealth, calls: list[tuple[str, list[Any] | dict[str, Any]]]
    ) -> list[Any]:
        url = eh.endpoint.rpc_url
        ids = [next(self._ids) for _ in calls]
        reqs = [jsonrpc.request(m, p, i) for (m, p), i in zip(calls, ids, strict=True)]
        body = reqs[0] if len(reqs) == 1 else jsonrpc.batch(reqs)
        timeout = aiohttp.ClientTimeout(total=self.request_timeout_s)
        try:
            async with self.session.post(
                url, data=body, headers={"Content-Type": "application/json"}, timeout=timeout
            ) as resp:
                payload = await resp.read()
                status = resp.status
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        except TimeoutError:
            raise EndpointUnavailable(
                f"no answer within {self.request_timeout_s}s", endpoint=url
            ) from None
        except (aiohttp.ClientError, OSError) as e:
            raise EndpointUnavailable(f"{type(e).__name__}: {e}", endpoint=url) from None
        if status == 429:
            raise RateLimited("HTTP 429 Too Many Requests", endpoint=url, retry_after_s=retry_after)
        if status != 200:
            raise ServerBusy(
                f"HTTP {status}", endpoint=url, status=status, retry_after_s=retry_after
            )
        if len(reqs) == 1:
            return [decode_response(payload, ids[0], endpoint=url)]
        try:
            arr = orjson.loads(payload)
        except orjson.JSONDecodeError as e:
            raise MalformedResponse(f"invalid JSON ({e})", endpoint=url) from None
        if not isinstance(arr, list):
            raise MalformedResponse("batch answered with a non-array", endpoint=url)
        by_id = {o.get("id"): o for o in arr if isinstance(o, dict)}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise MalformedResponse(f"batch response lacks ids {missing[:5]}", endpoint=url)
        return [result_of(by_id[i], i, url) for i in ids]
