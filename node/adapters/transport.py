"""JSON-RPC (and GraphQL) over pooled HTTP with failover, hedging, health scoring, backoff,
Retry-After and a per-call time budget.

:class:`RpcClient` sends each call to the best endpoint (:class:`~node.adapters.health.HealthBook`).
If that endpoint has not answered within its *hedge delay* (derived from its observed latency:
:meth:`~node.adapters.health.HealthBook.hedge_delay`) the next endpoint is asked too; the first good
answer wins and the other attempts are cancelled and scored as abandoned (so a black-holed or slow
endpoint loses its place after one call instead of after a request timeout). On a transport error,
timeout, 429, 5xx, malformed body or retryable JSON-RPC error the next endpoint is asked at once;
when a whole round fails it sleeps a full-jitter backoff (at least the largest bounded
``Retry-After`` seen) and tries again, up to ``attempts`` rounds. A call's ``timeout_s`` bounds all
of it (attempts, hedges, sleeps): each attempt gets at most what is left, so a caller's budget and
the adapter's timeouts are one budget. Every failure is logged with its endpoint and kind; none
escapes as anything but an :class:`~node.adapters.errors.AdapterError`.

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
    BudgetExceeded,
    EndpointUnavailable,
    MalformedResponse,
    RateLimited,
    RpcFailure,
    ServerBusy,
)
from node.adapters.health import EndpointHealth, HealthBook
from node.core import errors
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


class _Failed:
    """A round in which every endpoint failed: the last error and the shortest Retry-After."""

    def __init__(self) -> None:
        self.last: AdapterError | None = None
        self.retry_after: float | None = None


def _consume(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a late failure of an abandoned attempt is not an error


def _invalid(err: object) -> bool:
    """A GraphQL error about the query itself (validation), not about the server's state."""
    if not isinstance(err, dict):
        return False
    ext = err.get("extensions")
    code = ext.get("code") if isinstance(ext, dict) else None
    return code in ("GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED", "BAD_USER_INPUT")


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
        hedge: bool = True,
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
        #: Ask the next endpoint too when one has not answered within its hedge delay.
        self.hedge = hedge
        #: Hedged requests sent, and attempts abandoned (cancelled) since start.
        self.hedges = 0
        self.abandoned = 0
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
        self,
        method: str,
        params: list[Any] | dict[str, Any],
        parse: Callable[[Any], T],
        *,
        timeout_s: float | None = None,
    ) -> T:
        """Call ``method`` with failover and hedging; ``parse`` validates the result (a
        ``ValueError``/``TypeError``/``KeyError`` there counts as a malformed response from that
        endpoint). ``timeout_s``: the whole call's budget (attempts, hedges and backoff sleeps
        included); past it :class:`~node.adapters.errors.BudgetExceeded` is raised and the attempts
        still in flight are abandoned (and scored as such)."""
        calls: list[tuple[str, list[Any] | dict[str, Any]]] = [(method, params)]
        results = await self._with_failover(
            lambda eh, t: self._post(eh, calls, t), method, lambda rs: [parse(rs[0])], timeout_s
        )
        return results[0]

    async def call_on(
        self,
        eh: EndpointHealth,
        method: str,
        params: list[Any] | dict[str, Any],
        parse: Callable[[Any], T],
        *,
        timeout_s: float | None = None,
    ) -> T:
        """Call ``method`` on one endpoint only (no failover, no retry), scored like any
        attempt: for questions about that endpoint itself (which chain it serves)."""
        calls: list[tuple[str, list[Any] | dict[str, Any]]] = [(method, params)]
        results = await self._attempt(
            eh, lambda e, t: self._post(e, calls, t), method, lambda rs: [parse(rs[0])],
            timeout_s or self.request_timeout_s, 0)
        return results[0]

    async def call_batch(
        self,
        calls: Sequence[tuple[str, list[Any] | dict[str, Any]]],
        parse: Callable[[Any], T],
        *,
        timeout_s: float | None = None,
    ) -> list[T]:
        """Several calls in one HTTP request (a JSON-RPC batch), each result through ``parse``."""
        if not calls:
            return []
        cs = list(calls)
        what = cs[0][0] if len(cs) == 1 else f"batch of {len(cs)} ({cs[0][0]}...)"
        return await self._with_failover(
            lambda eh, t: self._post(eh, cs, t), what, lambda rs: [parse(r) for r in rs], timeout_s
        )

    async def graphql(
        self,
        query: str,
        variables: dict[str, Any],
        parse: Callable[[Any], T],
        *,
        what: str = "graphql",
        timeout_s: float | None = None,
    ) -> T:
        """A GraphQL query (``POST {query, variables}``) with the same failover, hedging and
        scoring as :meth:`call`; ``parse`` gets the response's ``data``. A response with
        ``errors`` raises :class:`~node.adapters.errors.RpcFailure` (code -32602 when the query
        was refused as invalid, not retried; -32603 otherwise, retried elsewhere)."""
        results = await self._with_failover(
            lambda eh, t: self._post_graphql(eh, query, variables, t),
            what,
            lambda rs: [parse(rs[0])],
            timeout_s,
        )
        return results[0]

    async def _with_failover(
        self,
        send: Callable[[EndpointHealth, float], Awaitable[list[Any]]],
        what: str,
        parse: Callable[[list[Any]], list[T]],
        timeout_s: float | None,
    ) -> list[T]:
        backoff = Backoff(self.policy, self.rng)
        last: AdapterError | None = None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for attempt in range(self.attempts):
            order = self.health.ready() or self.health.order()[:1]
            outcome = await self._round(order, send, what, parse, deadline, attempt)
            if not isinstance(outcome, _Failed):
                return outcome
            last = outcome.last or last
            if deadline is not None and time.monotonic() >= deadline:
                break
            if attempt + 1 < self.attempts:
                delay = backoff.next_delay(outcome.retry_after)
                if deadline is not None:
                    delay = min(delay, max(0.0, deadline - time.monotonic()))
                self.retry_delays.append(delay)
                self.log.info(
                    "%s: every endpoint failed (round %d); retrying in %.3fs",
                    what,
                    attempt + 1,
                    delay,
                )
                await self._sleep(delay)
        if deadline is not None and time.monotonic() >= deadline:
            assert timeout_s is not None
            raise BudgetExceeded(f"{what}: no answer within the {timeout_s:g} s budget", last)
        raise AllEndpointsFailed(f"{what} failed on every endpoint {self.attempts} times", last)

    async def _round(
        self,
        order: list[EndpointHealth],
        send: Callable[[EndpointHealth, float], Awaitable[list[Any]]],
        what: str,
        parse: Callable[[list[Any]], list[T]],
        deadline: float | None,
        attempt: int,
    ) -> list[T] | _Failed:
        """One pass over ``order``: ask the first endpoint; if it has not answered within its
        hedge delay, ask the next one too (and so on); a failed attempt moves on at once. The
        first good answer wins; attempts still in flight are cancelled and scored as
        abandoned."""
        queue = list(order)
        pending: dict[asyncio.Task[list[T]], tuple[EndpointHealth, float]] = {}
        failed = _Failed()
        newest: tuple[EndpointHealth, float] | None = None
        why = "cancelled: the caller's budget ran out"

        def launch() -> None:
            nonlocal newest
            eh = queue.pop(0)
            t0 = time.monotonic()
            budget = self.request_timeout_s
            if deadline is not None:
                budget = max(0.001, min(budget, deadline - t0))
            task = asyncio.ensure_future(self._attempt(eh, send, what, parse, budget, attempt))
            pending[task] = (eh, t0)
            newest = (eh, t0)

        launch()
        try:
            while pending:
                wait: float | None = None
                if queue and self.hedge and newest is not None:
                    eh, t0 = newest
                    wait = max(0.0, t0 + self.health.hedge_delay(eh) - time.monotonic())
                done, _ = await asyncio.wait(
                    pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    assert newest is not None
                    newest[0].hedged += 1
                    self.hedges += 1
                    launch()
                    continue
                for task in done:
                    pending.pop(task)
                    exc = task.exception()
                    if exc is None:
                        why = "another endpoint answered first"
                        return task.result()
                    if not isinstance(exc, AdapterError) or (
                        isinstance(exc, RpcFailure) and not exc.retryable
                    ):
                        why = "another endpoint answered first"
                        raise exc
                    failed.last = exc
                    ra = getattr(exc, "retry_after_s", None)
                    if isinstance(exc, RateLimited) and ra is None:
                        ra = self.policy.ceiling(attempt)
                    if ra is not None:
                        ra = min(ra, self.policy.max_retry_after_s)
                        failed.retry_after = (
                            ra if failed.retry_after is None else min(failed.retry_after, ra)
                        )
                if queue and not pending:
                    launch()
        finally:
            now = time.monotonic()
            for task, (eh, t0) in pending.items():
                task.cancel()
                task.add_done_callback(_consume)
                self.health.abandoned(eh, now - t0, why)
                self.abandoned += 1
        return failed

    async def _attempt(
        self,
        eh: EndpointHealth,
        send: Callable[[EndpointHealth, float], Awaitable[list[Any]]],
        what: str,
        parse: Callable[[list[Any]], list[T]],
        timeout_s: float,
        attempt: int,
    ) -> list[T]:
        """One request to one endpoint, scored (except when cancelled: the round scores that)."""
        url = eh.endpoint.rpc_url
        started = time.monotonic()
        try:
            raw = await send(eh, timeout_s)
            try:
                out = parse(raw)
            except (ValueError, TypeError, KeyError, IndexError) as e:
                raise MalformedResponse(
                    f"unexpected result shape for {what}: {e}", endpoint=url
                ) from None
        except RateLimited as e:
            ra = e.retry_after_s if e.retry_after_s is not None else self.policy.ceiling(attempt)
            self.health.limit(eh, min(ra, self.policy.max_retry_after_s), str(e))
            self._note(e, what)
            raise
        except RpcFailure as e:
            if not e.retryable:
                # a deterministic answer about our request: another endpoint would say the same
                self.health.success(eh, time.monotonic() - started)
                raise
            self.health.failure(eh, str(e), time.monotonic() - started)
            self._note(e, what)
            raise
        except AdapterError as e:
            self.health.failure(eh, str(e), time.monotonic() - started)
            self._note(e, what)
            raise
        self.health.success(eh, time.monotonic() - started)
        return out

    async def _http_post(self, url: str, body: bytes, timeout_s: float) -> bytes:
        """POST ``body``; the payload of a 200 answer, else the matching ``AdapterError``."""
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with self.session.post(
                url, data=body, headers={"Content-Type": "application/json"}, timeout=timeout
            ) as resp:
                payload = await resp.read()
                status = resp.status
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        except TimeoutError:
            raise EndpointUnavailable(f"no answer within {timeout_s:g} s", endpoint=url) from None
        except (aiohttp.ClientError, OSError) as e:
            raise EndpointUnavailable(f"{type(e).__name__}: {e}", endpoint=url) from None
        if status == 429:
            raise RateLimited("HTTP 429 Too Many Requests", endpoint=url, retry_after_s=retry_after)
        if status != 200:
            raise ServerBusy(
                f"HTTP {status}", endpoint=url, status=status, retry_after_s=retry_after
            )
        return payload

    async def _post_graphql(
        self, eh: EndpointHealth, query: str, variables: dict[str, Any], timeout_s: float
    ) -> list[Any]:
        url = eh.endpoint.rpc_url
        body = orjson.dumps({"query": query, "variables": variables})
        payload = await self._http_post(url, body, timeout_s)
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError as e:
            raise MalformedResponse(f"invalid JSON ({e})", endpoint=url) from None
        if not isinstance(obj, dict):
            raise MalformedResponse("GraphQL answer is not an object", endpoint=url)
        errs = obj.get("errors")
        if errs:
            first = errs[0] if isinstance(errs, list) and errs else errs
            msg = str(first.get("message", first)) if isinstance(first, dict) else str(first)
            code = errors.INVALID_PARAMS if obj.get("data") is None and _invalid(first) else (
                errors.INTERNAL_ERROR
            )
            raise RpcFailure(code, f"GraphQL: {msg}", data=errs, endpoint=url)
        if "data" not in obj:
            raise MalformedResponse("GraphQL answer has neither data nor errors", endpoint=url)
        return [obj["data"]]

    def _note(self, e: AdapterError, what: str) -> None:
        kind = type(e).__name__
        self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + 1
        # malformed answers are the peer's bug, worth an error line; the rest are weather
        level = logging.ERROR if isinstance(e, MalformedResponse) else logging.WARNING
        self.log.log(level, "%s: %s: %s", what, kind, e)

    async def _post(
        self,
        eh: EndpointHealth,
        calls: list[tuple[str, list[Any] | dict[str, Any]]],
        timeout_s: float,
    ) -> list[Any]:
        url = eh.endpoint.rpc_url
        ids = [next(self._ids) for _ in calls]
        reqs = [jsonrpc.request(m, p, i) for (m, p), i in zip(calls, ids, strict=True)]
        body = reqs[0] if len(reqs) == 1 else jsonrpc.batch(reqs)
        payload = await self._http_post(url, body, timeout_s)
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
