"""What a client did and saw, as data: one JSON object per event (the checkers' input).

Every event has ``t`` (the event loop's clock, seconds: monotonic, virtual in timing tests),
``wall`` (Unix seconds, comparable with the node's ``timestampMs`` and the proxy's event times),
``client`` (a name) and ``ev`` (the kind). The kinds and their fields are listed in
docs/results.md ("History events"); :data:`EVENTS` holds the names.

A :class:`History` keeps its events in memory (``events``) and can also stream them to a JSON
lines file as they happen (``sink``), so a run that dies still leaves what it saw, and hand each
to a ``listener`` (live progress lines).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import orjson

#: Event kinds a client records (docs/results.md describes each one's fields).
EVENTS = frozenset({
    "start", "stop", "connect", "handshake", "open", "close", "backoff", "subscribe",
    "reconnected", "notify", "deliver", "drop", "request", "keepalive_timeout", "fatal",
})


def loop_time() -> float:
    """The running loop's clock, or the monotonic clock outside a loop."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


class History:
    """An append-only list of events of one client (or of several sharing a ``sink``)."""

    def __init__(self, client: str, *, sink: IO[bytes] | None = None,
                 clock: Callable[[], float] = loop_time,
                 wall: Callable[[], float] = time.time,
                 listener: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.client = client
        self.events: list[dict[str, Any]] = []
        self._sink = sink
        #: Called with each event as it is recorded (live progress); must not block.
        self.listener = listener
        self._clock = clock
        self._wall = wall

    def record(self, ev: str, **fields: Any) -> dict[str, Any]:
        """Append an event of kind ``ev`` (one of :data:`EVENTS`) and return it."""
        if ev not in EVENTS:
            raise ValueError(f"unknown history event {ev!r} (known: {', '.join(sorted(EVENTS))})")
        entry: dict[str, Any] = {"t": round(self._clock(), 6), "wall": round(self._wall(), 6),
                                 "client": self.client, "ev": ev}
        entry.update(fields)
        self.events.append(entry)
        if self._sink is not None:
            self._sink.write(orjson.dumps(entry) + b"\n")
        if self.listener is not None:
            self.listener(entry)
        return entry

    def of(self, *kinds: str) -> list[dict[str, Any]]:
        """The events of the given kinds, in order."""
        return [e for e in self.events if e["ev"] in kinds]


def write_jsonl(path: Path, events: Iterable[dict[str, Any]]) -> int:
    """Write events as JSON lines (whole file, via a temporary name); returns the count."""
    tmp = path.with_name(f".{path.name}.tmp")
    n = 0
    with tmp.open("wb") as f:
        for e in events:
            f.write(orjson.dumps(e) + b"\n")
            n += 1
    tmp.replace(path)
    return n


def merge(histories: Iterable[History]) -> list[dict[str, Any]]:
    """The events of several clients in one list, ordered by time (stable per client)."""
    out = [e for h in histories for e in h.events]
    out.sort(key=lambda e: e["t"])
    return out


__all__ = ["EVENTS", "History", "loop_time", "merge", "write_jsonl"]
