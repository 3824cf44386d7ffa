"""Chunks, end markers and the channels that join toxic stubs (Toxiproxy's ``stream`` package).

A link moves :class:`Chunk` objects, each stamped with the loop time at which the proxy read it, so
time-based toxics compose (two latency toxics add up). The end of a stream is an :class:`End`
marker travelling behind the data, never an exception: whatever is queued ahead of it is still
delivered first.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from dataclasses import dataclass
from typing import Protocol


class Direction(enum.Enum):
    """Which way bytes flow: upstream is client -> server, downstream is server -> client."""

    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"

    @classmethod
    def parse(cls, text: str) -> Direction:
        """Case-insensitive parse (as Toxiproxy does); raises ``ValueError`` otherwise."""
        return cls(text.lower())


@dataclass(slots=True)
class Chunk:
    """Bytes as one read returned them, plus the loop time (seconds) they became due.

    Toxics that delay a chunk move ``ts`` forward by the delay they applied, so the next toxic in
    the chain counts from there.
    """

    data: bytes
    ts: float


class End(enum.Enum):
    """How a stream ends when this marker reaches the link's writer.

    ``EOF``: the source half-closed; the destination gets a FIN (``write_eof``) and the other
    direction keeps flowing. ``CLOSE``: close both sockets (FIN); this is what a toxic that "closes
    the link" sends, as Toxiproxy closes the whole connection. ``RESET``: abort both sockets with
    SO_LINGER 0 so each peer sees an RST (``ECONNRESET``).
    """

    EOF = "eof"
    CLOSE = "close"
    RESET = "reset"


Item = Chunk | End


class Outlet(Protocol):
    """Anything a stub can push items into: the next stub's :class:`Channel` or the link writer."""

    def put(self, item: Item) -> None: ...


class Channel:
    """Unbounded FIFO between two stubs; ``put`` never blocks.

    Flow control is done once per link (it pauses reading the source socket when the channels
    of its chain hold too many bytes, see ``nbytes``), so a channel needs no bound of its own. After
    :meth:`seal`,
    puts are dropped: the stub that owned this input has closed its output and nobody will read.
    """

    __slots__ = ("_sealed", "items", "nbytes", "waiter")

    def __init__(self) -> None:
        self.items: deque[Item] = deque()
        self.nbytes = 0  # bytes queued, for the link's flow control
        self.waiter: asyncio.Future[None] | None = None
        self._sealed = False

    def put(self, item: Item) -> None:
        if self._sealed:
            return
        self.items.append(item)
        if isinstance(item, Chunk):
            self.nbytes += len(item.data)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pop(self) -> Item:
        """The oldest item (the caller checked ``items`` is not empty)."""
        item = self.items.popleft()
        if isinstance(item, Chunk):
            self.nbytes -= len(item.data)
        return item

    def unpop(self, chunk: Chunk) -> None:
        """Put a chunk back at the head."""
        self.items.appendleft(chunk)
        self.nbytes += len(chunk.data)

    def seal(self) -> None:
        """Drop everything queued and everything put from now on."""
        self._sealed = True
        self.items.clear()
        self.nbytes = 0

    @property
    def sealed(self) -> bool:
        return self._sealed
