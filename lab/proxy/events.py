"""Append-only event log served at ``GET /events``: what changed, what fired, and when.

Each event is a dict with ``seq`` (1, 2, ...), ``time`` (Unix seconds), ``event`` and the
fields of that event (``proxy``, ``toxic``, ``type``, ``stream``, ``conn`` ...). Reports use the
``toxic_added``/``toxic_removed``/``toxic_started``/``toxic_stopped`` pairs to shade fault
windows; ``toxic_fired`` says a fault really acted: once per connection when a toxic starts acting
there, once per cut, close or reset for toxics that act at a moment (``action`` field), never
for a restart caused by another toxic being added or removed. The log keeps the newest ``maxlen``
events; ``seq`` keeps counting, so a reader polling
with ``since`` can tell it missed some.

Every event is also logged (logger ``lab.proxy``, ``key=value`` fields), at the levels Toxiproxy
uses for the same happenings: proxy and toxic changes at INFO, upstream failures and toxic errors
at WARNING, per-connection toxic activity at DEBUG (``LOG_LEVEL=info`` / ``debug``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

log = logging.getLogger("lab.proxy")

_INFO = frozenset({"proxy_created", "proxy_deleted", "proxy_enabled", "proxy_disabled", "reset",
                   "toxic_added", "toxic_updated", "toxic_removed", "proxy_flap_down",
                   "proxy_flap_up"})
_WARNING = frozenset({"upstream_failed", "toxic_error", "proxy_flap_error"})


def _level(event: str) -> int:
    if event in _INFO:
        return logging.INFO
    if event in _WARNING:
        return logging.WARNING
    return logging.DEBUG


class EventLog:
    """In-memory, bounded, append-only."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._seq = 0

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Record ``event`` now and return the stored entry."""
        self._seq += 1
        entry: dict[str, Any] = {"seq": self._seq, "time": time.time(), "event": event}
        entry.update(fields)
        self._events.append(entry)
        level = _level(event)
        if log.isEnabledFor(level):
            log.log(level, "%s %s", event, " ".join(f"{k}={v}" for k, v in fields.items()))
        return entry

    def since(self, seq: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Events with ``seq`` greater than ``seq``, oldest first, at most ``limit``."""
        out = [e for e in self._events if e["seq"] > seq]
        return out if limit is None else out[:limit]

    @property
    def last_seq(self) -> int:
        return self._seq
