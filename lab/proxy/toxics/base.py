"""The toxic seam: one required coroutine, optional capabilities, and the stub it runs on.

A toxic is a small dataclass whose fields are its JSON ``attributes`` (Toxiproxy's units: ms, KB/s,
bytes, µs for ``slicer.delay``) with one method::

    async def pipe(self, stub: ToxicStub) -> None

``pipe`` reads chunks with ``await stub.recv()`` (``None`` means the stream ended), forwards them
with ``stub.send(chunk)`` and ends the stream with ``stub.close()``. It must wait **only** through
the stub (``recv``, ``recv_before``, ``sleep``/``sleep_until``), because those are the points
where the stub can be interrupted: when the chain changes (a toxic added, updated or removed) the
stub raises :class:`Interrupted` from its current wait; ``pipe`` must give back any chunk it holds
with ``stub.unread(chunk)`` (never drop data on an interrupt, never reorder it) and let the
exception out. The stub is then restarted, possibly with new attributes, and reads that chunk
again; if the toxic was removed, the chunk moves on to the next stub. That keeps every API call
short: no toxic can make the API wait.

Firing: a toxic that acts continuously (latency, bandwidth, timeout, ...) is reported as fired
(``toxic_fired`` event, activation metric) once per connection when it starts acting there. A
toxic that acts at a moment (``moment = True``: cut, close, reset) is reported once per action,
by calling ``stub.fired(action)`` when it acts. A restart of the chain is never a firing.

Optional capabilities (discovered with ``isinstance``, as Toxiproxy's Go interfaces):
:class:`StatefulToxic` (per-link state that survives restarts), :class:`CleanupToxic` (runs when
the toxic is removed from a live link) and :class:`ProxyToxic` (a proxy-wide task, e.g. flapping).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from lab.proxy.stream import Channel, Chunk, Direction, End, Outlet
from lab.proxy.ws_tracker import WsTracker

log = logging.getLogger("lab.proxy.toxics")


class Interrupted(Exception):
    """Raised from a stub wait when the chain is being changed; let it propagate out of ``pipe``."""


class TimedOut:
    """The value :meth:`ToxicStub.recv_before` returns when its deadline passed first."""

    _instance: ClassVar[TimedOut | None] = None

    def __new__(cls) -> TimedOut:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance


TIMED_OUT = TimedOut()


class ToxicAttributeError(ValueError):
    """An attribute is unknown or has the wrong type; ``key`` names it."""

    def __init__(self, toxic_type: str, key: str, message: str) -> None:
        super().__init__(f"{toxic_type}.attributes.{key}: {message}")
        self.toxic_type = toxic_type
        self.key = key


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """What a toxic may know about the connection it runs on."""

    proxy: str
    conn_id: int  # 1-based ordinal of the connection on this proxy
    client: tuple[str, int]
    direction: Direction
    opened_at: float  # loop time the connection was accepted


class StubHost(Protocol):
    """The link side of a stub: what toxics can ask of the link beyond moving chunks."""

    def end_at(self, when: float, kind: End, then: Callable[[], None] | None = None) -> None:
        """End the connection with ``kind`` at loop time ``when``, whatever the chain does;
        ``then`` runs just before, if the connection is still there to be ended."""

    def record(self, event: str, toxic: str, **details: Any) -> None:
        """Append to the server's event log (and metrics)."""

    def tracker_snapshot(self) -> WsTracker:
        """A copy of the WebSocket frame tracker at the position of the link's writer."""

    def consumed(self) -> None:
        """A stub took a chunk from its input (lets the link resume a paused source)."""


class Toxic:
    """Base of every toxic. Subclasses are dataclasses registered with :func:`register`."""

    type_name: ClassVar[str] = ""
    #: True for toxics that act at a moment (cut, close, reset): they report each action with
    #: ``stub.fired(...)`` instead of being reported when they start.
    moment: ClassVar[bool] = False

    async def pipe(self, stub: ToxicStub) -> None:
        """Move data from ``stub`` input to output until the stream ends; see the module doc."""
        raise NotImplementedError

    # -- attributes <-> JSON ------------------------------------------------------------
    @classmethod
    def from_attributes(cls: type[T], attrs: Mapping[str, Any], base: T | None = None) -> T:
        """Build from JSON ``attributes``, merged over ``base`` (PATCH) or over the defaults.

        Raises :class:`ToxicAttributeError` naming the key for an unknown key or a wrong type;
        a missing key keeps its default (Toxiproxy's zero value for its own toxics).
        """
        if not isinstance(attrs, Mapping):
            raise ToxicAttributeError(cls.type_name, "*", "attributes must be a JSON object")
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
        values: dict[str, Any] = {}
        for key, raw in attrs.items():
            if key not in known:
                names = ", ".join(sorted(known)) or "none"
                raise ToxicAttributeError(
                    cls.type_name, key, f"unknown attribute (known: {names})"
                )
            values[key] = _coerce(cls.type_name, key, hints[key], raw)
        if base is not None:
            return dataclasses.replace(base, **values)  # type: ignore[type-var]
        return cls(**values)

    def attributes(self) -> dict[str, Any]:
        """The JSON ``attributes`` object."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}  # type: ignore[arg-type]


T = TypeVar("T", bound=Toxic)


def _coerce(toxic_type: str, key: str, hint: Any, raw: Any) -> Any:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if raw is None and type(None) in allowed:
        return None
    for kind in allowed:
        if kind is bool and isinstance(raw, bool):
            return raw
        if kind is bool and isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        if kind is int and isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if kind is int and isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if kind is float and isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        if kind is str and isinstance(raw, str):
            return raw
    want = " or ".join("integer" if k is int else getattr(k, "__name__", str(k)) for k in allowed)
    raise ToxicAttributeError(toxic_type, key, f"must be {want}, got {raw!r}")


@runtime_checkable
class StatefulToxic(Protocol):
    """A toxic whose per-link state survives restarts (limit_data's byte count, frame trackers)."""

    def new_state(self, stub: ToxicStub) -> object: ...


@runtime_checkable
class CleanupToxic(Protocol):
    """A toxic that must act when removed from a live link (timeout closes it, as Toxiproxy)."""

    def cleanup(self, stub: ToxicStub) -> None: ...


@runtime_checkable
class ProxyToxic(Protocol):
    """A toxic acting on the whole proxy (flap); ``run_proxy`` is cancelled when it stops."""

    async def run_proxy(self, control: ProxyControl) -> None: ...


class ProxyControl(Protocol):
    """What a proxy-wide toxic may do to its proxy."""

    async def set_down(self, down: bool) -> bool:
        """Take the proxy down (listener and connections) or bring it back; returns whether
        that changed anything. Each change down is reported as a firing of the toxic."""
        ...

    async def sleep(self, seconds: float) -> None: ...


TOXICS: dict[str, type[Toxic]] = {}

TT = TypeVar("TT", bound=type[Toxic])


def register(name: str) -> Callable[[TT], TT]:
    """Class decorator: make a toxic type available to the API and profiles under ``name``."""

    def deco(cls: TT) -> TT:
        cls.type_name = name
        TOXICS[name] = cls
        return cls

    return deco


class ToxicStub:
    """One toxic's place in one link: its input, its output and the hooks to interrupt it.

    Created by the link; toxics only call the public coroutines and ``send``/``close``.
    """

    def __init__(
        self,
        *,
        name: str,
        input: Channel,
        output: Outlet,
        rng: random.Random,
        info: LinkInfo,
        host: StubHost,
    ) -> None:
        self.name = name
        self.input = input
        self.output = output
        self.rng = rng
        self.info = info
        self.host = host
        self.state: object = None
        self.end: End | None = None  # the end marker received and not yet forwarded
        self.closed = False  # we put an end marker into output
        self.ran_toxic = False  # last run drew the real toxic (not noop)
        self.announced = False  # reported as fired on this link (continuous toxics)
        self._on_fire: Callable[..., None] = _ignore
        self.toxic_started = 0.0  # loop time the toxic was added or (re)activated
        # Called with the bytes a pass-through run forwards, so stream trackers kept in the
        # toxic's state stay in step even while toxicity or a schedule keeps the toxic off.
        self.on_passthrough: Callable[[bytes], None] | None = None
        self._interrupted = False
        self._waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()

    # -- for toxics -------------------------------------------------------------------
    def now(self) -> float:
        """The loop clock (seconds), the clock chunk timestamps use."""
        return self._loop.time()

    def send(self, chunk: Chunk) -> None:
        """Forward a chunk; never blocks."""
        if not self.closed:
            self.output.put(chunk)

    def unread(self, chunk: Chunk) -> None:
        """Put a held chunk back at the head of the input (on :class:`Interrupted`)."""
        if not self.closed:
            self.input.unpop(chunk)

    def close(self, kind: End | None = None) -> None:
        """End the stream downstream of this stub and stop reading its input.

        Without ``kind``, forwards the end marker received (``EOF`` stays a half-close) or, if the
        toxic ends the stream on its own, ``CLOSE``.
        """
        if self.closed:
            return
        self.closed = True
        self.output.put(kind or self.end or End.CLOSE)
        self.end = None
        self.input.seal()

    async def recv(self) -> Chunk | None:
        """Next chunk, or ``None`` once the stream ended (and again on every later call)."""
        item = await self.recv_before(None)
        assert not isinstance(item, TimedOut)
        return item

    async def recv_before(self, deadline: float | None) -> Chunk | TimedOut | None:
        """Like :meth:`recv` but returns :data:`TIMED_OUT` if loop time ``deadline`` comes first."""
        while True:
            if self._interrupted:
                raise Interrupted
            if self.closed:
                return None
            if self.input.items:
                item = self.input.pop()
                if isinstance(item, End):
                    self.end = item
                    return None
                self.host.consumed()
                return item
            if self.end is not None:
                return None
            if deadline is not None and self._loop.time() >= deadline:
                return TIMED_OUT
            await self._wait(deadline, self.input)

    async def sleep(self, seconds: float) -> None:
        """Sleep, or raise :class:`Interrupted` when the chain changes first."""
        await self.sleep_until(self._loop.time() + seconds)

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until loop time ``deadline`` (no-op if passed) unless interrupted first."""
        while True:
            if self._interrupted:
                raise Interrupted
            if self._loop.time() >= deadline:
                return
            await self._wait(deadline, None)

    def record(self, event: str, **details: Any) -> None:
        """Log a toxic-specific event (e.g. ``ws_close_sent``) in the server event log."""
        self.host.record(event, self.name, **details)

    def fired(self, action: str, **details: Any) -> None:
        """A moment toxic acted now (``action``: "cut", "close", "reset"): one ``toxic_fired``
        event and one activation per call. Ignored once this stub has closed its output."""
        if not self.closed:
            self._on_fire(action=action, **details)

    # -- for the link -----------------------------------------------------------------
    async def _wait(self, deadline: float | None, channel: Channel | None) -> None:
        fut: asyncio.Future[None] = self._loop.create_future()
        handle = None
        if deadline is not None:
            # Wake a hair late rather than early: loop timers may fire up to ~1 ms early or late
            # (selector granularity); the loops above re-check the clock anyway.
            handle = self._loop.call_at(deadline, _wake, fut)
        self._waiter = fut
        if channel is not None:
            channel.waiter = fut
        try:
            await fut
        finally:
            self._waiter = None
            if channel is not None and channel.waiter is fut:
                channel.waiter = None
            if handle is not None:
                handle.cancel()

    def start(self, toxic: Toxic, toxicity: float, applies: bool,
              on_fire: Callable[..., None]) -> None:
        """(Re)start: draw toxicity, then run the toxic or a pass-through.

        ``on_fire(**details)`` reports a firing: here, the first time a continuous toxic is
        drawn to run on this link; for a moment toxic, each :meth:`fired` call.
        """
        self._interrupted = False
        self._on_fire = on_fire
        fire = applies and self.rng.random() < toxicity
        self.ran_toxic = fire
        if fire and not toxic.moment and not self.announced:
            self.announced = True
            on_fire()
        self.task = self._loop.create_task(self._run(toxic if fire else _NOOP))

    async def _run(self, toxic: Toxic) -> None:
        try:
            await toxic.pipe(self)
        except Interrupted:
            pass
        except Exception as exc:
            # A toxic bug must not wedge the connection: log it and keep the bytes flowing.
            log.exception("toxic %s failed on %s", self.name, self.info)
            self.record("toxic_error", error=f"{type(exc).__name__}: {exc}")
            try:
                await _NOOP.pipe(self)
            except Interrupted:
                pass

    async def interrupt(self) -> None:
        """Stop the running toxic at its next wait and wait until it has returned."""
        task = self.task
        if task is None or task.done():
            return
        self._interrupted = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        await _join(task)

    def kill(self) -> None:
        """Cancel the task for good (the connection is gone)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()


async def _join(task: Awaitable[None]) -> None:
    try:
        await task
    except asyncio.CancelledError:
        if asyncio.current_task() is not None and asyncio.current_task().cancelling():  # type: ignore[union-attr]
            raise


def _ignore(**details: Any) -> None:
    pass


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Noop(Toxic):
    async def pipe(self, stub: ToxicStub) -> None:
        observe = stub.on_passthrough
        while True:
            chunk = await stub.recv()
            if chunk is None:
                stub.close()
                return
            if observe is not None:
                observe(chunk.data)
            stub.send(chunk)


_NOOP = _Noop()
