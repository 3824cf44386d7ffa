"""The reconnecting JSON-RPC WebSocket client: the lab's reference client for node users.

::

    client = ReconnectingClient(url, connector=websockets_connector(ssl_context=ctx),
                                options=ClientOptions(ping_interval_s=10, seed=7))
    async with client:
        client.follow_heads()                      # newHeads, every block once and in order
        print(await client.call("eth_chainId"))
        async for head in client.heads():
            ...

What it guarantees, and how:

* **Reconnects** after any close it did not ask for and after failed handshakes, waiting
  :class:`~lab.clients.backoff.Backoff` delays (full jitter, seeded, capped). The retry count
  survives handshakes that succeed and drop at once; only a connection that stays up
  ``stable_s`` resets it. ``Retry-After`` (429, 503) is a floor. Fatal handshake failures (TLS,
  4xx other than 408/425/429) stop the client: :meth:`heads` and :meth:`call` raise
  :class:`ClientFatal` with a one-line message naming the URL and the cause.
* **Keepalive**: a ping every ``ping_interval_s``; no pong within ``ping_timeout_s`` drops the
  connection (the client then sees 1006, as with websockets' own keepalive) and reconnects.
* **Heads exactly once, in order**: after every (re)subscription it asks for the head number
  and fetches the blocks it has not delivered (``eth_getBlockByNumber``); a notification for a
  block already delivered is dropped; one that arrives ahead of a gap waits while the gap is
  fetched. With ``backfill=False`` (the naive client of the incident scenarios) notifications are
  handed on as they come, duplicates and gaps included.
* **Bounded memory**: at most ``buffer`` heads wait for the consumer (the client stops fetching
  while the consumer is behind: backpressure), and at most ``pending_limit`` notifications are held
  ahead of the delivery point; beyond that they are dropped and fetched again later.

Everything it does goes into its :class:`~lab.clients.history.History`. Timing uses the event
loop's clock only, so tests run it on a virtual clock with an in-memory connector.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any

import orjson

from lab.clients.backoff import Backoff, BackoffPolicy
from lab.clients.history import History
from lab.clients.rpc import RpcError
from lab.clients.transport import Closed, Conn, Connector, HandshakeFailed
from node.rpc import jsonrpc


class ClientFatal(Exception):
    """The client stopped for good: a handshake failure retrying cannot fix, or it gave up."""

    def __init__(self, url: str, message: str, cause: HandshakeFailed | None = None) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url
        self.cause = cause


class NotConnected(TimeoutError):
    """No connection opened within a call's time limit."""


@dataclass(frozen=True)
class ClientOptions:
    """How a :class:`ReconnectingClient` behaves (seconds throughout)."""

    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    #: Seed of the backoff jitter; None draws one (recorded in the history's ``start`` event).
    seed: int | None = None
    #: Keepalive ping period; None turns keepalive off.
    ping_interval_s: float | None = 10.0
    ping_timeout_s: float = 5.0
    request_timeout_s: float = 10.0
    #: Heads waiting for the consumer.
    buffer: int = 256
    #: Notifications held ahead of the delivery point.
    pending_limit: int = 4096
    #: False: stop (and end :meth:`ReconnectingClient.heads`) after the first close.
    reconnect: bool = True
    #: False: hand notifications on as they come (no resubscription catch-up, no dedup).
    backfill: bool = True
    #: Consecutive failed attempts before giving up (None: never).
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.ping_interval_s is not None and self.ping_interval_s <= 0:
            problems.append("ping_interval_s must be > 0 or None")
        if self.ping_timeout_s <= 0 or self.request_timeout_s <= 0:
            problems.append("ping_timeout_s and request_timeout_s must be > 0")
        if self.buffer < 1 or self.pending_limit < 1:
            problems.append("buffer and pending_limit must be >= 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            problems.append("max_attempts must be >= 1 or None")
        if problems:
            raise ValueError("client options: " + "; ".join(problems))

    def describe(self) -> dict[str, Any]:
        return asdict(self)


_END = object()


class ReconnectingClient:
    """See the module docstring. One connection at a time; start with ``async with`` or
    :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, url: str, *, connector: Connector, options: ClientOptions | None = None,
                 name: str = "client", history: History | None = None) -> None:
        self.url = url
        self.options = options or ClientOptions()
        self.name = name
        self.history = history or History(name)
        self.backoff = Backoff(self.options.backoff, self.options.seed)
        self._connector = connector
        self._ids = itertools.count(1)
        self._conn: Conn | None = None
        self._conn_no = 0
        self._open = asyncio.Event()
        self._pending: dict[int, tuple[asyncio.Future[Any], str]] = {}
        self._sids: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._fatal: ClientFatal | None = None
        self._ended = asyncio.Event()
        self._close_cause: Closed | None = None
        self._last_close_t: float | None = None
        # heads
        self._follow = False
        self._start_from: int | None = None
        self._delivered: int | None = None
        self._latest_seen = -1
        self._ahead: dict[int, dict[str, Any]] = {}
        self._naive: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._out: asyncio.Queue[Any] = asyncio.Queue(self.options.buffer)
        self._sequencer: asyncio.Task[None] | None = None
        self._end_put: asyncio.Task[None] | None = None
        #: Counters for quick looks (the history has the detail).
        self.stats = {"connects": 0, "opens": 0, "closes": 0, "notifications": 0,
                      "delivered": 0, "backfilled": 0, "dropped": 0, "keepalive_timeouts": 0}

    # -- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> ReconnectingClient:
        self.start()
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def start(self) -> None:
        """Start connecting (in the background)."""
        if self._task is not None:
            raise RuntimeError("client already started")
        self.history.record("start", url=self.url, seed=self.backoff.seed,
                            options=self.options.describe())
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-run")

    async def stop(self) -> None:
        """Close the connection (1000) and stop; :meth:`heads` ends after what is buffered."""
        if self._stopping:
            return
        self._stopping = True
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)
        for task in (self._task, self._sequencer):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._finish()

    def _finish(self) -> None:
        if self._ended.is_set():
            return
        self._ended.set()
        self.history.record("stop", delivered=self._delivered, stats=dict(self.stats))
        self._wake.set()
        try:
            self._out.put_nowait(_END)
        except asyncio.QueueFull:  # the consumer is behind: the end goes after what it has
            self._end_put = asyncio.get_running_loop().create_task(self._out.put(_END))

    @property
    def stopping(self) -> bool:
        """:meth:`stop` was called."""
        return self._stopping

    @property
    def connected(self) -> bool:
        return self._open.is_set()

    @property
    def fatal(self) -> ClientFatal | None:
        return self._fatal

    @property
    def delivered(self) -> int | None:
        """The number of the last head handed to the consumer."""
        return self._delivered

    async def wait_open(self, timeout_s: float) -> None:
        """Wait until a connection is open (raises :class:`NotConnected` or
        :class:`ClientFatal`)."""
        loop = asyncio.get_running_loop()
        await self._wait_open(loop.time() + timeout_s)

    # -- connection loop --------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        try:
            while not self._stopping:
                self.stats["connects"] += 1
                self.history.record("connect", attempt=self.backoff.attempt, url=self.url)
                t0 = loop.time()
                try:
                    conn = await self._connector(self.url)
                except HandshakeFailed as e:
                    ms = round((loop.time() - t0) * 1000, 3)
                    self.history.record("handshake", ok=False, kind=e.kind, status=e.status,
                                        error=e.message, exception=e.exception,
                                        retry_after_s=e.retry_after_s, ms=ms)
                    failures += 1
                    if e.fatal:
                        self._give_up(e.message, e)
                        return
                    if (
                        self.options.max_attempts is not None
                        and failures >= self.options.max_attempts
                    ):
                        self._give_up(f"gave up after {failures} failed attempts "
                                      f"(last: {e.message})", e)
                        return
                    await self._sleep_backoff(f"handshake {e.kind}"
                                              + (f" {e.status}" if e.status else ""),
                                              e.retry_after_s or 0.0)
                    continue
                failures = 0
                self.history.record("handshake", ok=True, kind="ok", status=101,
                                    ms=round((loop.time() - t0) * 1000, 3))
                closed, up_s = await self._session(conn)
                self._last_close_t = loop.time()
                self.stats["closes"] += 1
                fields = {"stop": True} if self.stopping else {}
                self.history.record("close", conn=self._conn_no, code=closed.code,
                                    reason=closed.reason, by=closed.by, up_s=round(up_s, 6),
                                    **fields)
                if self.stopping or not self.options.reconnect:
                    return
                self.backoff.connection_lasted(up_s)
                await self._sleep_backoff(f"close {closed.code}")
        finally:
            if not self._stopping:
                self._finish()

    def _give_up(self, message: str, cause: HandshakeFailed | None) -> None:
        self._fatal = ClientFatal(self.url, message, cause)
        self.history.record("fatal", kind=cause.kind if cause else "gave_up",
                            status=cause.status if cause else None, message=message)
        for fut, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(self._fatal)
        self._pending.clear()

    async def _sleep_backoff(self, reason: str, at_least: float = 0.0) -> None:
        attempt = self.backoff.attempt
        delay = self.backoff.next_delay(at_least=at_least)
        self.history.record("backoff", attempt=attempt, delay_s=round(delay, 6), reason=reason,
                            seed=self.backoff.seed)
        await asyncio.sleep(delay)

    async def _session(self, conn: Conn) -> tuple[Closed, float]:
        """Run one open connection until it ends; returns how it ended and how long it lasted."""
        loop = asyncio.get_running_loop()
        opened = loop.time()
        self._conn_no += 1
        self._conn = conn
        self._close_cause = None
        self._sids = set()
        self.stats["opens"] += 1
        self.history.record("open", conn=self._conn_no)
        self._open.set()
        helpers = []
        if self.options.ping_interval_s is not None:
            helpers.append(asyncio.create_task(self._keepalive(conn, self._conn_no)))
        if self._follow:
            helpers.append(asyncio.create_task(self._subscribe(conn, self._conn_no)))
        try:
            closed = await self._read(conn)
        finally:
            self._open.clear()
            self._conn = None
            for task in helpers:
                task.cancel()
            for task in helpers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        # The keepalive (or a failed resubscription) knows better why it ended than the socket.
        closed = self._close_cause or closed
        for fut, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(closed)
        self._pending.clear()
        return closed, loop.time() - opened

    async def _read(self, conn: Conn) -> Closed:
        while True:
            try:
                raw = await conn.recv()
            except Closed as closed:
                return closed
            try:
                msg = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(msg, dict):
                self._dispatch(msg)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        if isinstance(method, str):
            params = msg.get("params")
            if (method == "eth_subscription" and isinstance(params, dict)
                    and params.get("subscription") in self._sids):
                result = params.get("result")
                if isinstance(result, dict):
                    self._on_head(result, params.get("emittedMs"))
            return
        entry = self._pending.pop(msg.get("id"), None)  # type: ignore[arg-type]
        if entry is None:
            return
        fut, sent_method = entry
        if sent_method == "eth_subscribe" and isinstance(msg.get("result"), str):
            # Registered here, before the next message is read: the node sends a
            # subscription's first notification right after its id.
            self._sids.add(msg["result"])
        if not fut.done():
            fut.set_result(msg)

    async def _keepalive(self, conn: Conn, conn_no: int) -> None:
        interval = self.options.ping_interval_s
        assert interval is not None
        while True:
            await asyncio.sleep(interval)
            try:
                waiter = await conn.ping()
            except Closed:
                return
            try:
                await asyncio.wait_for(waiter, self.options.ping_timeout_s)
            except TimeoutError:
                self.stats["keepalive_timeouts"] += 1
                self.history.record("keepalive_timeout", conn=conn_no,
                                    waited_s=self.options.ping_timeout_s)
                self._close_cause = Closed(1006, "keepalive ping timeout", "client")
                conn.abort()
                return
            except Closed:
                return

    async def _subscribe(self, conn: Conn, conn_no: int) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            sid = await self._call_on(conn, "eth_subscribe", ["newHeads"],
                                      t0 + self.options.request_timeout_s)
            self.history.record("subscribe", conn=conn_no, kind="newHeads", id=sid,
                                ms=round((loop.time() - t0) * 1000, 3))
            if self._last_close_t is not None:
                self.history.record("reconnected", conn=conn_no,
                                    down_s=round(loop.time() - self._last_close_t, 6))
            if self.options.backfill:
                head = int(await self._call_on(conn, "eth_blockNumber", [],
                                               loop.time() + self.options.request_timeout_s), 16)
                if self._delivered is None:
                    # Following "from now": now is the head at the first subscription, so a
                    # connection lost before the first notification loses nothing.
                    self._delivered = head - 1
                self._saw(head)
        except (Closed, asyncio.CancelledError):
            raise
        except (RpcError, TimeoutError, ValueError) as e:
            # A connection we cannot subscribe on is useless: drop it and start again.
            self._close_cause = Closed(1006, f"resubscribe failed: {e}", "client")
            conn.abort()

    # -- requests ---------------------------------------------------------------------------
    async def _wait_open(self, deadline: float) -> Conn:
        loop = asyncio.get_running_loop()
        while True:
            if self._fatal is not None:
                raise self._fatal
            if self._stopping or self._ended.is_set():
                raise NotConnected(f"{self.url}: client stopped")
            conn = self._conn
            if conn is not None and self._open.is_set():
                return conn
            left = deadline - loop.time()
            if left <= 0:
                raise NotConnected(f"{self.url}: not connected")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._open.wait(), min(left, 0.5))

    async def _call_on(self, conn: Conn, method: str, params: list[Any], deadline: float) -> Any:
        loop = asyncio.get_running_loop()
        i = next(self._ids)
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending[i] = (fut, method)
        t0 = loop.time()
        fields: dict[str, Any] = {"transport": "ws", "id": i, "method": method}
        try:
            await conn.send(jsonrpc.request(method, params, i).decode())
            resp = await asyncio.wait_for(fut, max(0.0, deadline - loop.time()))
        except Closed as e:
            self.history.record("request", **fields, ok=False, error=f"closed {e.code}",
                                ms=round((loop.time() - t0) * 1000, 3))
            raise
        except TimeoutError:
            self._pending.pop(i, None)
            self.history.record("request", **fields, ok=False, error="timeout",
                                ms=round((loop.time() - t0) * 1000, 3))
            raise
        ms = round((loop.time() - t0) * 1000, 3)
        if "error" in resp:
            err = resp["error"] if isinstance(resp["error"], dict) else {}
            self.history.record("request", **fields, ok=False, code=err.get("code"),
                                error=str(err.get("message", "")), ms=ms)
            raise RpcError(int(err.get("code", 0)), str(err.get("message", "")), err.get("data"))
        self.history.record("request", **fields, ok=True, ms=ms)
        return resp.get("result")

    async def call(self, method: str, *params: Any, timeout_s: float | None = None,
                   retry: bool = False) -> Any:
        """Call ``method`` on the current connection (waiting for one, within ``timeout_s``).

        ``retry``: if the connection drops before the answer, call again on the next one
        (for idempotent reads) until the time limit. Raises :class:`RpcError` (the node's
        answer), :class:`Closed`, :class:`NotConnected` or :class:`ClientFatal`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (
            self.options.request_timeout_s if timeout_s is None else timeout_s
        )
        while True:
            conn = await self._wait_open(deadline)
            try:
                return await self._call_on(conn, method, list(params), deadline)
            except Closed:
                if not retry or loop.time() >= deadline:
                    raise
                # The send can fail before the reader has seen the close, while the connection
                # still counts as open: wait until the session ends, else this loop would spin
                # without ever yielding to the reader that ends it.
                while self._conn is conn and loop.time() < deadline:  # noqa: ASYNC110 - no event
                    await asyncio.sleep(0.005)  # marks a session's end

    # -- heads ------------------------------------------------------------------------------
    def follow_heads(self, start_from: int | None = None) -> None:
        """Subscribe to newHeads on every connection from now on. ``start_from``: deliver from
        this block number (fetching the ones before the first notification); None: from the
        node's head when the first subscription is acknowledged (or the first notification,
        whichever comes first)."""
        if self._follow:
            raise RuntimeError("already following heads")
        self._follow = True
        self._start_from = start_from
        if start_from is not None:
            self._delivered = start_from - 1
        if self.options.backfill:
            self._sequencer = asyncio.create_task(self._sequence(), name=f"{self.name}-heads")
        conn = self._conn
        if conn is not None and self._open.is_set():
            asyncio.get_running_loop().create_task(self._subscribe(conn, self._conn_no))

    async def heads(self) -> AsyncIterator[dict[str, Any]]:
        """The heads, in order, each once (see the module docstring); ends when the client
        stops, raises :class:`ClientFatal` if it gave up."""
        while True:
            item = await self._out.get()
            if item is _END:
                if self._fatal is not None:
                    raise self._fatal
                return
            yield item

    def _saw(self, number: int) -> None:
        if number > self._latest_seen:
            self._latest_seen = number
            self._wake.set()

    def _on_head(self, head: dict[str, Any], emitted: Any = None) -> None:
        try:
            number = int(head["number"], 16)
        except (KeyError, TypeError, ValueError):
            return
        self.stats["notifications"] += 1
        wall = time.time()
        emit_ms = _emit_ms(head, emitted)
        self.history.record("notify", conn=self._conn_no, n=number, hash=head.get("hash"),
                            emit_ms=emit_ms,
                            lat_ms=None if emit_ms is None else round(wall * 1000 - emit_ms, 3))
        if not self.options.backfill:
            self._deliver_naive(number, head)
            return
        if self._delivered is None:
            self._delivered = number - 1  # the first notification is where delivery starts
        if number <= self._delivered or number in self._ahead:
            self.stats["dropped"] += 1
            self.history.record("drop", n=number, why="duplicate")
        elif len(self._ahead) >= self.options.pending_limit:
            self.stats["dropped"] += 1
            self.history.record("drop", n=number, why="pending_limit")
        else:
            self._ahead[number] = head
        self._saw(number)

    def _deliver_naive(self, number: int, head: dict[str, Any]) -> None:
        try:
            self._out.put_nowait(head)
        except asyncio.QueueFull:
            self.stats["dropped"] += 1
            self.history.record("drop", n=number, why="buffer")
            return
        self._delivered = number
        self.stats["delivered"] += 1
        self.history.record("deliver", n=number, hash=head.get("hash"), src="notify")

    async def _sequence(self) -> None:
        """Deliver ``delivered + 1`` next: from the notifications held, else fetched."""
        while not (self._stopping or self._fatal is not None):
            nxt = None if self._delivered is None else self._delivered + 1
            if nxt is None or (nxt not in self._ahead and self._latest_seen < nxt):
                self._wake.clear()
                await self._wake.wait()
                continue
            head = self._ahead.pop(nxt, None)
            src = "notify"
            if head is None:
                head = await self._fetch(nxt)
                src = "backfill"
                if head is None:
                    continue
            await self._out.put(head)
            self._delivered = nxt
            self.stats["delivered"] += 1
            if src == "backfill":
                self.stats["backfilled"] += 1
            self.history.record("deliver", n=nxt, hash=head.get("hash"), src=src)
            for stale in [n for n in self._ahead if n <= nxt]:
                del self._ahead[stale]

    async def _fetch(self, number: int) -> dict[str, Any] | None:
        """Block ``number`` from the node, retried across reconnects until the client stops."""
        while True:
            try:
                block = await self.call("eth_getBlockByNumber", hex(number), False,
                                        retry=True)
            except (Closed, NotConnected, TimeoutError, ClientFatal):
                if self._stopping or self._fatal is not None:
                    return None
                continue
            except RpcError:
                await asyncio.sleep(self.options.backoff.base_s)
                continue
            if isinstance(block, dict):
                return block
            # Not there yet (the head we were told of is not visible on this node): wait.
            await asyncio.sleep(self.options.backoff.base_s)


def _emit_ms(head: dict[str, Any], emitted: Any) -> int | None:
    """When the node sent the notification (``params.emittedMs``), else when it made the block
    (``timestampMs``, nodes before emittedMs existed)."""
    for raw in (emitted, head.get("timestampMs")):
        if isinstance(raw, str):
            with contextlib.suppress(ValueError):
                return int(raw, 16)
    return None


__all__ = ["ClientFatal", "ClientOptions", "NotConnected", "ReconnectingClient"]
