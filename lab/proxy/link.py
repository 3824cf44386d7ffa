"""One direction of one proxied connection: a chain of toxic stubs ending in the link's writer.

::

    source socket -> feed() -> [stub 1] -> [stub 2] -> ... -> put() (writer) -> destination

With no toxics the link is in *fast mode*: ``feed`` writes straight to the destination, with no
task, queue or timestamp in between. Adding the first toxic switches to chain mode; removing the
last one drains the chain synchronously into the destination and switches back, so bytes are
never reordered.

Chain changes follow Toxiproxy's ``link.go``: toxics are appended at the end, a change interrupts
the stub before the change point, rewires outputs, and restarts. Everything here runs on one
event loop, so the rewiring between two awaits is atomic; the only awaits are stub interrupts,
which return at the toxic's next wait point (no API call can block on traffic).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from lab.proxy import rng
from lab.proxy.stream import Channel, Chunk, Direction, End, Item, Outlet
from lab.proxy.toxics.base import CleanupToxic, LinkInfo, StatefulToxic, ToxicStub
from lab.proxy.ws_tracker import WsTracker

# Pause reading the source when the chain's queues hold this many bytes (e.g. waiting behind a
# latency toxic); 100 ms of latency at 200 MB/s is 20 MB, so the window must be larger.
HIGH_WATER = 64 * 1024 * 1024
LOW_WATER = HIGH_WATER // 2


class _NullCounter:
    def inc(self, amount: float = 1) -> None:
        pass


_NULL_COUNTER = _NullCounter()


class LinkOwner(Protocol):
    """The connection a link belongs to."""

    def link_write(self, link: Link, data: bytes) -> None: ...

    def link_end(self, link: Link, kind: End) -> None: ...

    def link_pause(self, link: Link, paused: bool) -> None: ...

    def record(self, event: str, toxic: str, **details: Any) -> None: ...

    def fired(self, link: Link, wrapper: WrapperView, **details: Any) -> None:
        """``wrapper``'s toxic fired on ``link`` (see ``toxics/base.py``, "Firing")."""


class WrapperView(Protocol):
    """What a link needs of a toxic wrapper (see ``toxic_collection.ToxicWrapper``)."""

    name: str
    type: str
    uid: int
    stream: Direction
    toxicity: float
    started_at: float

    @property
    def toxic(self) -> Any: ...

    def applies(self, info: LinkInfo) -> bool: ...


class Link:
    """See the module docstring. Created by the connection once both sockets are up."""

    def __init__(self, owner: LinkOwner, info: LinkInfo, seed: int) -> None:
        self.owner = owner
        self.info = info
        self.seed = seed
        self.stubs: list[ToxicStub] = []
        self.wrappers: list[WrapperView] = []
        self.entry: Outlet = self
        self.tracker = WsTracker(info.direction)
        self.paused = False
        self.ended = False
        self.killed = False
        # Prometheus counter children, set by the connection (no-op stand-ins until then).
        self.received: Any = _NULL_COUNTER
        self.sent: Any = _NULL_COUNTER
        self._lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()
        self._timers: list[asyncio.TimerHandle] = []

    # -- data path --------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Bytes read from the source socket."""
        if self.entry is self:
            self._write(data)
            return
        self.entry.put(Chunk(data, self._loop.time()))
        if not self.paused and self.inflight > HIGH_WATER:
            self.paused = True
            self.owner.link_pause(self, True)

    @property
    def inflight(self) -> int:
        """Bytes queued inside the chain (dropped bytes no longer count)."""
        return sum(stub.input.nbytes for stub in self.stubs)

    def consumed(self) -> None:
        if self.paused and self.inflight < LOW_WATER:
            self.paused = False
            self.owner.link_pause(self, False)

    def feed_end(self, kind: End) -> None:
        """The source ended: ``EOF`` for a half-close, ``CLOSE`` when its socket is gone."""
        self.entry.put(kind)

    def put(self, item: Item) -> None:
        """The writer: the last outlet of the chain."""
        if isinstance(item, Chunk):
            self._write(item.data)
            return
        if not self.ended:
            self.ended = True
            self.owner.link_end(self, item)

    def _write(self, data: bytes) -> None:
        if self.ended or not data:
            return
        if self.tracker.active:
            self.tracker.skip(data)
        self.owner.link_write(self, data)

    # -- StubHost ----------------------------------------------------------------------
    def end_at(self, when: float, kind: End, then: Any = None) -> None:
        self._timers.append(self._loop.call_at(when, self._end_now, kind, then))

    def _end_now(self, kind: End, then: Any) -> None:
        if self.ended:
            return
        if then is not None:
            then()
        self.put(kind)

    def record(self, event: str, toxic: str, **details: Any) -> None:
        self.owner.record(event, toxic, conn=self.info.conn_id,
                          stream=self.info.direction.value, **details)

    def tracker_snapshot(self) -> WsTracker:
        return self.tracker.clone()

    # -- chain changes -----------------------------------------------------------------
    def _new_stub(self, wrapper: WrapperView, output: Outlet) -> ToxicStub:
        stub = ToxicStub(
            name=wrapper.name,
            input=Channel(),
            output=output,
            rng=rng.generator(self.seed, wrapper.name),
            info=self.info,
            host=self,
        )
        return stub

    @staticmethod
    def _init_state(stub: ToxicStub, wrapper: WrapperView) -> None:
        if isinstance(wrapper.toxic, StatefulToxic):
            stub.state = wrapper.toxic.new_state(stub)
            tracker = getattr(stub.state, "tracker", None)
            if isinstance(tracker, WsTracker):
                stub.on_passthrough = tracker.skip

    def _start(self, stub: ToxicStub, wrapper: WrapperView) -> None:
        if self.killed or stub.closed:
            # The connection went away while a chain change was waiting, or the toxic has
            # ended its stream: nothing to run (and no action to repeat).
            return
        stub.toxic_started = wrapper.started_at
        owner = self.owner

        def on_fire(**details: Any) -> None:
            owner.fired(self, wrapper, **details)

        stub.start(wrapper.toxic, wrapper.toxicity, wrapper.applies(self.info), on_fire)

    def build(self, wrappers: Sequence[WrapperView]) -> None:
        """Initial chain of a new link (nothing in flight yet, so no interrupts needed)."""
        for wrapper in wrappers:
            stub = self._new_stub(wrapper, self)
            self._init_state(stub, wrapper)
            if self.stubs:
                self.stubs[-1].output = stub.input
            else:
                self.entry = stub.input
            self.stubs.append(stub)
            self.wrappers.append(wrapper)
        for stub, wrapper in zip(self.stubs, self.wrappers, strict=True):
            self._start(stub, wrapper)

    async def add(self, wrapper: WrapperView) -> None:
        """Append a toxic to a live link."""
        async with self._lock:
            if self.ended:
                return
            stub = self._new_stub(wrapper, self)
            last = self.stubs[-1] if self.stubs else None
            if last is not None:
                await last.interrupt()
                stub.output = last.output
                last.output = stub.input
            else:
                self.entry = stub.input
            # After the interrupt everything ahead of the new stub has reached the writer, so
            # the writer's frame tracker is exactly at the new stub's input.
            self._init_state(stub, wrapper)
            self.stubs.append(stub)
            self.wrappers.append(wrapper)
            self._start(stub, wrapper)
            if last is not None:
                self._start(last, self.wrappers[-2])

    async def update(self, wrapper: WrapperView) -> None:
        """Restart a toxic with new attributes, toxicity or activity (toxicity is redrawn)."""
        async with self._lock:
            i = self._index(wrapper.name)
            if i is None:
                return
            stub = self.stubs[i]
            await stub.interrupt()
            self.wrappers[i] = wrapper
            self._start(stub, wrapper)

    async def remove(self, wrapper: WrapperView, cleanup: bool = True) -> None:
        """Take a toxic out of a live link; queued data moves on, in order."""
        async with self._lock:
            i = self._index(wrapper.name)
            if i is None:
                return
            stub = self.stubs[i]
            prev = self.stubs[i - 1] if i > 0 else None
            if prev is not None:
                await prev.interrupt()
            await stub.interrupt()
            toxic = self.wrappers[i].toxic
            if cleanup and stub.ran_toxic and isinstance(toxic, CleanupToxic) and not stub.closed:
                toxic.cleanup(stub)
            if not stub.closed:
                while stub.input.items:
                    stub.output.put(stub.input.pop())
                if stub.end is not None:
                    stub.output.put(stub.end)
            if prev is not None:
                prev.output = stub.output
            else:
                self.entry = stub.output
            del self.stubs[i]
            del self.wrappers[i]
            if prev is not None:
                self._start(prev, self.wrappers[i - 1])
            self.consumed()  # the removed stub's queue is gone: maybe resume the source

    def _index(self, name: str) -> int | None:
        for i, w in enumerate(self.wrappers):
            if w.name == name:
                return i
        return None

    def kill(self) -> None:
        """The connection is gone: stop every stub and timer (and never start one again)."""
        self.ended = True
        self.killed = True
        for stub in self.stubs:
            stub.kill()
        for timer in self._timers:
            timer.cancel()
