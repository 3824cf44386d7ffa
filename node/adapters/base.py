"""The asyncio shell shared by the chain adapters: follow loop, WebSocket session, listeners.

A :class:`ChainAdapter` runs three tasks:

* **sync** - the only task that touches the :class:`~node.adapters.follow.Follower`: it takes
  headers (from the subscription) and poll ticks from an inbox, carries out the follower's actions
  (fetching ranges over HTTP, enriching each new block with its events) and emits events;
* **ws** - keeps one WebSocket subscription to the best endpoint with a WS URL (keepalive pings,
  reconnect with full-jitter backoff, resubscribe); each (re)connect queues a poll, so whatever was
  missed while disconnected is backfilled, in order, before newer heads are emitted. The session
  moves to another endpoint when its own endpoint stops being good (down, degraded or slow by the
  HTTP health) while another is good, and back to the preferred endpoint once that one has
  answered ``ws_return_after`` requests in a row again;
* **poll** - queues a poll tick every ``poll_interval_s`` (the only head source without WS, and a
  safety net with it), and a *silence probe* when no new head arrived for 1.5 times the usual gap
  between heads: a stalled subscription (a black-holed endpoint keeps its socket open) costs a
  fraction of a block, not a poll interval or a ping timeout.

Subclasses supply the chain specifics: how to read the latest header, a header range, a block's
events, and what to subscribe to.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import orjson

from node.adapters.backoff import Backoff, BackoffPolicy
from node.adapters.errors import (
    AdapterError,
    AdapterStopped,
    EndpointUnavailable,
    MalformedResponse,
)
from node.adapters.events import AdapterEvent, Endpoint, Header, NewHead, Reorg
from node.adapters.follow import Advance, Dropped, Fetch, Follower, Rollback
from node.adapters.health import EndpointHealth, HealthBook
from node.adapters.transport import RpcClient, result_of
from node.rpc import jsonrpc

_POLL = object()


class EventStream:
    """An async iterator over adapter events, from :meth:`ChainAdapter.listen`.

    Bounded: if the consumer falls ``maxsize`` events behind, the oldest are dropped and counted
    in ``dropped`` (an error is logged) - the adapter never blocks on a slow listener.
    """

    def __init__(self, adapter: ChainAdapter, maxsize: int) -> None:
        self._adapter = adapter
        self._queue: asyncio.Queue[AdapterEvent | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def _put(self, ev: AdapterEvent | None) -> None:
        while True:
            try:
                self._queue.put_nowait(ev)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()
                self.dropped += 1
                self._adapter.log.error(
                    "%s: listener is %d events behind; dropped the oldest",
                    self._adapter.chain,
                    self._queue.maxsize,
                )

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> AdapterEvent:
        ev = await self._queue.get()
        if ev is None:
            raise StopAsyncIteration
        return ev

    async def get(self, timeout_s: float | None = None) -> AdapterEvent:
        """The next event; raises ``TimeoutError`` after ``timeout_s``, ``StopAsyncIteration`` when
        closed."""
        async with asyncio.timeout(timeout_s):
            return await self.__anext__()

    def close(self) -> None:
        self._adapter._streams.discard(self)
        self._put(None)


class ChainAdapter(abc.ABC):
    """Follows one L1 chain over a list of endpoints. See :mod:`node.adapters` for the API.

    Parameters (all keyword-only after ``endpoints``; the first endpoint is the primary):

    * ``backoff`` - :class:`~node.adapters.backoff.BackoffPolicy` for call retries and WS
      reconnects;
    * ``rng_seed`` - seeds the jitter (``"<seed>:rpc"`` and ``"<seed>:ws"`` streams); None picks
      one,
      logs it at start and keeps it in ``rng_seed`` so a run can be replayed;
    * ``request_timeout_s`` - per HTTP attempt (and WS handshake/subscribe);
    * ``call_attempts`` - rounds over all endpoints before a call raises ``AllEndpointsFailed``;
    * ``ping_interval_s`` - WebSocket keepalive ping period (no pong within half of it: reconnect);
    * ``poll_interval_s`` - poll of the latest head (safety net with WS, the only source without);
    * ``window`` - headers remembered for reorg detection; ``max_fetch`` - backfill chunk size;
    * ``pool_size`` - pooled HTTP connections per endpoint; ``use_ws`` - False: poll only;
    * ``start_from`` - anchor at this block number and backfill from it (e.g. a persisted head);
    * ``hedge`` / ``hedge_min_s`` / ``hedge_max_s`` - hedged requests and the bounds of the hedge
      delay (see :mod:`node.adapters.transport`);
    * ``ws_return_after`` - consecutive good answers of a preferred endpoint before the WebSocket
      moves back to it.
    """

    chain: str = "?"

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        backoff: BackoffPolicy | None = None,
        rng_seed: int | None = None,
        request_timeout_s: float = 5.0,
        call_attempts: int = 4,
        ping_interval_s: float = 10.0,
        poll_interval_s: float = 1.0,
        window: int = 256,
        max_fetch: int = 64,
        pool_size: int = 8,
        use_ws: bool = True,
        start_from: int | None = None,
        hedge: bool = True,
        hedge_min_s: float = 0.05,
        hedge_max_s: float = 2.0,
        ws_return_after: int = 3,
        logger: logging.Logger | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is required")
        self.endpoints = tuple(endpoints)
        self.policy = backoff or BackoffPolicy()
        if rng_seed is None:
            rng_seed = random.SystemRandom().randrange(2**32)
        self.rng_seed = rng_seed
        self.log = logger or logging.getLogger(f"node.adapters.{self.chain}")
        #: Listeners of failover/recovery transitions (``dict`` events, see
        #: :meth:`~node.adapters.health.HealthBook.served`).
        self.transition_listeners: list[Callable[[dict[str, Any]], None]] = []
        #: The last sync error (logged once while it repeats), None after a good sync.
        self._sync_error: str | None = None
        self.health_book = HealthBook(
            self.endpoints,
            hedge_min_s=hedge_min_s,
            hedge_max_s=max(hedge_min_s, min(hedge_max_s, request_timeout_s)),
            on_transition=self._on_transition,
            on_recovered=self._on_recovered,
        )
        # separate streams per consumer so a test can recompute each schedule from the seed
        self.rpc = RpcClient(
            self.health_book,
            policy=self.policy,
            rng=random.Random(f"{rng_seed}:rpc"),
            request_timeout_s=request_timeout_s,
            attempts=call_attempts,
            pool_size=pool_size,
            hedge=hedge,
            logger=self.log,
        )
        self.ws_return_after = ws_return_after
        self._ws_rng = random.Random(f"{rng_seed}:ws")
        self.ping_interval_s = ping_interval_s
        self.poll_interval_s = poll_interval_s
        self.request_timeout_s = request_timeout_s
        self.use_ws = use_ws and any(e.ws_url for e in self.endpoints)
        self.follower = Follower(window=window, max_fetch=max_fetch)
        #: Anchor at this block number on the first sync (then backfill to the peer's head).
        self.start_from = start_from
        self._inbox: asyncio.Queue[object] = asyncio.Queue()
        self._poll_queued = False
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: set[asyncio.Task[Any]] = set()
        self._streams: set[EventStream] = set()
        self._listeners: list[Callable[[AdapterEvent], None]] = []
        self._ready = asyncio.Event()
        self._running = False
        self.ws_connected: str | None = None
        #: Reconnect delays actually slept by the WS task (newest last).
        self.ws_delays: list[float] = []
        self.stats: dict[str, int] = {
            "heads": 0, "reorgs": 0, "backfilled": 0, "duplicates": 0, "stale": 0,
            "ws_connects": 0, "ws_errors": 0, "ws_moves": 0, "malformed": 0, "sync_errors": 0,
            "events": 0, "silence_probes": 0,
        }
        #: Smoothed wall-clock gap between consecutive heads (seconds; None before two heads).
        self.head_gap_s: float | None = None
        self._last_advance_at = 0.0
        self._last_poll_at = 0.0
        self.last_events: list[AdapterEvent] = []

    # ------------------------------------------------------------------ public API

    @property
    def head(self) -> Header | None:
        """The newest header emitted (None before the first)."""
        return self.follower.head

    async def start(self) -> None:
        """Start following; returns at once (see :meth:`wait_ready`). Logs the RNG seed."""
        if self._running:
            return
        self._running = True
        self.rpc.reopen()
        self.log.info(
            "%s adapter: %d endpoint(s), backoff rng seed=%d",
            self.chain,
            len(self.endpoints),
            self.rng_seed,
        )
        self._tasks = [asyncio.create_task(self._sync_loop(), name=f"{self.chain}-sync"),
                       asyncio.create_task(self._poll_loop(), name=f"{self.chain}-poll")]
        if self.use_ws:
            self._tasks.append(asyncio.create_task(self._ws_loop(), name=f"{self.chain}-ws"))
        self._queue_poll()

    async def wait_ready(self, timeout_s: float | None = None) -> Header:
        """Wait until the first head is known."""
        async with asyncio.timeout(timeout_s):
            await self._ready.wait()
        head = self.head
        assert head is not None
        return head

    async def stop(self) -> None:
        """Stop every task, close connections and end every :meth:`listen` stream."""
        self._running = False
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []
        await self.rpc.close()
        for s in list(self._streams):
            s.close()

    async def __aenter__(self) -> ChainAdapter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def listen(self, maxsize: int = 10_000) -> EventStream:
        """A new stream of every event emitted from now on."""
        s = EventStream(self, maxsize)
        self._streams.add(s)
        return s

    def add_listener(self, callback: Callable[[AdapterEvent], None]) -> None:
        """Call ``callback(event)`` synchronously for each event (must not block; errors are
        logged)."""
        self._listeners.append(callback)

    def health(self) -> list[dict[str, object]]:
        """Per-endpoint state/score/latency/counters, for /metrics and dubhe_status."""
        return self.health_book.snapshot()

    def status(self) -> dict[str, object]:
        """Head, WS state, counters and endpoint health, for dubhe_status."""
        h = self.head
        return {
            "chain": self.chain,
            "head": None if h is None else {"number": h.number, "hash": h.hash},
            "ws_connected": self.ws_connected,
            "rng_seed": self.rng_seed,
            "stats": {**self.stats, "hedges": self.rpc.hedges, "abandoned": self.rpc.abandoned},
            "head_gap_ms": None if self.head_gap_s is None else round(self.head_gap_s * 1000, 1),
            "errors": dict(self.rpc.errors_by_kind),
            "serving": {
                t: self.endpoints[i].ws_url if t == "ws" else self.endpoints[i].rpc_url
                for t, i in self.health_book.serving.items()
            },
            "failovers": self.health_book.counts["failover"],
            "recoveries": self.health_book.counts["recovery"],
            "transitions": list(self.health_book.transitions)[-20:],
            "endpoints": self.health(),
        }

    async def call(
        self, method: str, params: list[Any] | dict[str, Any], *, timeout_s: float | None = None
    ) -> Any:
        """A raw JSON-RPC call with failover and hedging (result unvalidated); ``timeout_s`` is
        the whole call's budget."""
        if not self._running:
            raise AdapterStopped(f"{self.chain} adapter is not running")
        return await self.rpc.call(method, params, lambda r: r, timeout_s=timeout_s)

    def _on_recovered(self, e: EndpointHealth, failures: int, seconds: float) -> None:
        self.log.info("%s endpoint %s recovered: answering again after %d failure(s) over "
                      "%.1f s", self.chain, e.endpoint.rpc_url, failures, seconds)

    def _on_transition(self, ev: dict[str, Any]) -> None:
        ev = {"chain": self.chain, **ev}
        level = logging.WARNING if ev["kind"] == "failover" else logging.INFO
        self.log.log(level, "%s %s %s: %s -> %s (%s)", self.chain, ev["transport"], ev["kind"],
                     ev["from"], ev["to"], ev["reason"])
        for cb in self.transition_listeners:
            try:
                cb(ev)
            except Exception:
                self.log.exception("%s transition listener failed", self.chain)

    def poll(self) -> None:
        """Ask the sync task to look at the peer's latest head now."""
        self._queue_poll()

    # ------------------------------------------------------------------ chain specifics

    @abc.abstractmethod
    async def _latest_header(self) -> Header: ...

    @abc.abstractmethod
    async def _headers(self, first: int, last: int) -> list[Header]:
        """Canonical headers ``first..last`` ascending; stops early where the peer has none."""

    @abc.abstractmethod
    async def _block_events(self, header: Header) -> list[AdapterEvent]:
        """Events of a block that just joined the chain (emitted after its NewHead)."""

    async def _after_sync(self) -> list[AdapterEvent]:
        """Events to emit after each sync step (Sui: cursor-paged event queries)."""
        return []

    def _reverted_code(self, dropped: tuple[Header, ...]) -> tuple[str, ...]:
        return ()

    @abc.abstractmethod
    def _subscriptions(self) -> list[tuple[str, list[Any]]]:
        """(method, params) of the WebSocket subscriptions to hold."""

    @abc.abstractmethod
    def _on_notification(self, result: Any) -> Header | None:
        """A notification's result: a header to feed, or None to just poll (raise ValueError if
        malformed)."""

    # ------------------------------------------------------------------ sync task

    def _queue_poll(self) -> None:
        self._last_poll_at = time.monotonic()
        if not self._poll_queued:
            self._poll_queued = True
            self._inbox.put_nowait(_POLL)

    def silence_s(self) -> float:
        """How long without a new head before a silence probe (1.5 usual gaps, within
        [0.2 s, poll_interval_s])."""
        if self.head_gap_s is None:
            return self.poll_interval_s
        return min(self.poll_interval_s, max(0.2, 1.5 * self.head_gap_s))

    async def _poll_loop(self) -> None:
        tick = min(0.05, self.poll_interval_s)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            since_poll = now - self._last_poll_at
            if since_poll >= self.poll_interval_s:
                self._queue_poll()
            elif (self._last_advance_at and now - self._last_advance_at >= self.silence_s()
                  and since_poll >= self.silence_s()):
                self.stats["silence_probes"] += 1
                self._queue_poll()

    async def _sync_loop(self) -> None:
        while True:
            item = await self._inbox.get()
            try:
                if item is _POLL:
                    self._poll_queued = False
                    if self.follower.head is None and self.start_from is not None:
                        await self._anchor_at(self.start_from)
                    header = await self._latest_header()
                else:
                    assert isinstance(item, Header)
                    header = item
                await self._feed(header)
                for ev in await self._after_sync():
                    self._emit(ev)
                if self._sync_error is not None:
                    self.log.info("%s sync: recovered (was: %s)", self.chain, self._sync_error)
                    self._sync_error = None
            except AdapterError as e:
                self.stats["sync_errors"] += 1
                msg = f"{type(e).__name__}: {e}"
                # the same error at every poll is logged once (then at DEBUG) until it changes
                level = logging.DEBUG if msg == self._sync_error else logging.WARNING
                self._sync_error = msg
                self.log.log(level, "%s sync: %s", self.chain, msg)
            except Exception:  # our bug: log it and keep following
                self.stats["sync_errors"] += 1
                self.log.exception("%s sync failed", self.chain)

    async def _anchor_at(self, number: int) -> None:
        got = await self._headers(number, number)
        if not got:
            raise MalformedResponse(f"start_from block {number} is beyond the peer's head")
        await self._feed(got[0])

    async def _feed(self, header: Header) -> None:
        f = self.follower
        actions = f.on_header(header) if f.head is not None else f.anchor(header)
        fetched = False
        advanced = 0
        while actions:
            a = actions.pop(0)
            if isinstance(a, Fetch):
                try:
                    headers = await self._headers(a.first, a.last)
                except BaseException:
                    f.truncate(f.head.number if f.head else -1)
                    raise
                fetched = True
                actions.extend(f.on_fetched(headers))
            elif isinstance(a, Advance):
                try:
                    extra = await self._block_events(a.header)
                except BaseException:
                    f.truncate(a.header.number - 1)  # not applied: refetched on the next poll
                    raise
                self.stats["heads"] += 1
                advanced += 1
                if fetched:
                    self.stats["backfilled"] += 1
                self._emit(NewHead(self.chain, a.header))
                for ev in extra:
                    self._emit(ev)
                self._ready.set()
            elif isinstance(a, Rollback):
                self.stats["reorgs"] += 1
                self.log.warning(
                    "%s reorg: %d block(s) dropped, fork point %s", self.chain, len(a.dropped),
                    None if a.fork_point is None else a.fork_point.number,
                )
                self._emit(
                    Reorg(self.chain, a.fork_point, a.dropped, self._reverted_code(a.dropped))
                )
            elif isinstance(a, Dropped):
                self.stats["duplicates" if a.reason == "duplicate" else "stale"] += 1
        if advanced:
            now = time.monotonic()
            if advanced == 1 and self._last_advance_at:
                gap = min(30.0, max(0.01, now - self._last_advance_at))
                self.head_gap_s = gap if self.head_gap_s is None else (
                    self.head_gap_s + 0.2 * (gap - self.head_gap_s)
                )
            self._last_advance_at = now

    def _emit(self, ev: AdapterEvent) -> None:
        if not isinstance(ev, NewHead):
            self.stats["events"] += 1
            self.last_events.append(ev)
            del self.last_events[:-64]
        for s in list(self._streams):
            s._put(ev)
        for cb in self._listeners:
            try:
                cb(ev)
            except Exception:
                self.log.exception("%s listener failed", self.chain)

    # ------------------------------------------------------------------ WebSocket task

    async def _ws_loop(self) -> None:
        backoff = Backoff(self.policy, self._ws_rng)
        while True:
            eh = self.health_book.preferred(ws=True)
            moved = False
            try:
                moved = await self._ws_session(eh, backoff)
            except AdapterError as e:
                self.stats["ws_errors"] += 1
                self.health_book.failure(eh, str(e))
                self.log.warning("%s ws: %s: %s", self.chain, type(e).__name__, e)
            finally:
                self.ws_connected = None
            if moved:
                continue  # to the better endpoint at once
            delay = backoff.next_delay()
            self.ws_delays.append(delay)
            del self.ws_delays[:-256]
            await asyncio.sleep(delay)

    def _trusted(self, eh: EndpointHealth) -> bool:
        """Whether what ``eh`` pushes may be followed (it is known to serve our chain)."""
        return eh.wrong_chain is None

    def _ws_better(self, current: EndpointHealth) -> EndpointHealth | None:
        """The endpoint the subscription should move to, or None to stay on ``current``."""
        hb = self.health_book
        best = hb.preferred(ws=True)
        if best is current or not hb.good(best):
            return None
        if not hb.good(current):
            return best  # ours went bad (down, degraded or slow) and another is good
        if best.index < current.index and best.consecutive_successes >= self.ws_return_after:
            return best  # the preferred endpoint has been answering again: go back to it
        return None

    async def _ws_session(self, eh: EndpointHealth, backoff: Backoff) -> bool:
        """Hold one subscription on ``eh``; True when it ended to move to a better endpoint."""
        url = eh.endpoint.ws_url
        assert url is not None
        ws: aiohttp.ClientWebSocketResponse | None = None
        try:
            async with asyncio.timeout(self.request_timeout_s):
                ws = await self.rpc.session.ws_connect(
                    url,
                    heartbeat=self.ping_interval_s,
                    timeout=aiohttp.ClientWSTimeout(ws_close=self.request_timeout_s),
                    max_msg_size=16 << 20,
                )
                sub_ids = await self._ws_subscribe(ws, url)
            backoff.reset()
            self.stats["ws_connects"] += 1
            self.ws_connected = url
            self.health_book.served(eh, "ws")
            self.log.info("%s ws: subscribed on %s", self.chain, url)
            self._queue_poll()  # backfill whatever was produced while we were away
            while True:
                try:
                    msg = await ws.receive(timeout=0.25)
                except TimeoutError:
                    msg = None
                if msg is not None:
                    if (msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)
                            and not self._trusted(eh)):
                        self._queue_poll()  # not known to serve our chain: poll (checks) instead
                    elif msg.type == aiohttp.WSMsgType.TEXT:
                        self._ws_message(msg.data.encode(), sub_ids, url)
                    elif msg.type == aiohttp.WSMsgType.BINARY:
                        self._ws_message(msg.data, sub_ids, url)
                    elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED,
                                      aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING):
                        break
                better = self._ws_better(eh)
                if better is not None:
                    self.stats["ws_moves"] += 1
                    self.log.info("%s ws: moving from %s to %s", self.chain, url,
                                  better.endpoint.ws_url)
                    return True
            why = ws.exception() or "closed by the peer"
            raise EndpointUnavailable(
                f"WebSocket closed (code {ws.close_code}): {why}", endpoint=url
            )
        except TimeoutError:
            raise EndpointUnavailable("WebSocket timed out", endpoint=url) from None
        except (aiohttp.ClientError, OSError) as e:
            raise EndpointUnavailable(f"WebSocket {type(e).__name__}: {e}", endpoint=url) from None
        finally:
            if ws is not None and not ws.closed:
                # in the background: a stalled peer would hold a polite close for ws_close seconds
                task = asyncio.ensure_future(ws.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
                task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _ws_subscribe(self, ws: aiohttp.ClientWebSocketResponse, url: str) -> set[object]:
        ids: set[object] = set()
        for n, (method, params) in enumerate(self._subscriptions(), start=1):
            await ws.send_bytes(jsonrpc.request(method, params, n))
            async with asyncio.timeout(self.request_timeout_s):
                while True:
                    msg = await ws.receive()
                    if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        raise MalformedResponse(f"connection ended during {method}", endpoint=url)
                    try:
                        obj = orjson.loads(msg.data)
                    except orjson.JSONDecodeError:
                        raise MalformedResponse(
                            f"invalid JSON answering {method}", endpoint=url
                        ) from None
                    if isinstance(obj, dict) and obj.get("id") == n:
                        break
            sid = result_of(obj, n, url)
            if not isinstance(sid, str | int) or isinstance(sid, bool):
                raise MalformedResponse(f"{method} returned a non-id {sid!r}", endpoint=url)
            ids.add(sid)
        return ids

    def _ws_message(self, raw: bytes, sub_ids: set[object], url: str) -> None:
        try:
            obj = orjson.loads(raw)
            if not isinstance(obj, dict) or "params" not in obj:
                raise ValueError("not a notification")
            params = obj["params"]
            if not isinstance(params, dict) or params.get("subscription") not in sub_ids:
                raise ValueError("notification for an unknown subscription")
            header = self._on_notification(params.get("result"))
        except (ValueError, TypeError, KeyError) as e:
            self.stats["malformed"] += 1
            self.log.error("%s ws %s: malformed notification (%s): %.120r", self.chain, url, e, raw)
            return
        if header is None:
            self._queue_poll()
        else:
            self._inbox.put_nowait(header)

