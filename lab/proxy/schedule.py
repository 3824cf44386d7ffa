"""Schedules and targets: when and on which connections a toxic is active (lab extras).

Both travel as extra top-level fields of the toxic JSON, which stock Toxiproxy clients ignore::

    {"type": "latency", "attributes": {"latency": 500},
     "schedule": {"start": 2000, "stop": 5000, "repeat": 10000},
     "target": {"client": "127.0.0.1", "nth": [2, 3]}}

``schedule`` offsets are ms after the toxic was added: active in ``[start, stop)``, repeated
every ``repeat`` ms if given (``stop`` omitted: active from ``start`` on). ``target`` picks
connections by client address (``host`` or ``host:port``) and/or by 1-based connection ordinal
on the proxy; others run the toxic as a pass-through. The timing logic is pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lab.proxy.toxics.base import LinkInfo


class ScheduleError(ValueError):
    """A schedule or target field is invalid; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def _ms(obj: Mapping[str, Any], key: str, prefix: str) -> int | None:
    raw = obj.get(key)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise ScheduleError(f"{prefix}.{key}", f"must be a number of ms >= 0, got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class Schedule:
    """Active windows ``[start + k*repeat, stop + k*repeat)`` in ms after the toxic was added."""

    start: int = 0
    stop: int | None = None
    repeat: int | None = None

    @classmethod
    def parse(cls, raw: Any) -> Schedule:
        """From JSON/TOML; raises :class:`ScheduleError` naming the bad key."""
        if not isinstance(raw, Mapping):
            raise ScheduleError("schedule", "must be an object")
        unknown = set(raw) - {"start", "stop", "repeat"}
        if unknown:
            raise ScheduleError(
                f"schedule.{sorted(unknown)[0]}", "unknown key (start, stop, repeat)"
            )
        start = _ms(raw, "start", "schedule") or 0
        stop = _ms(raw, "stop", "schedule")
        repeat = _ms(raw, "repeat", "schedule")
        if stop is not None and stop <= start:
            raise ScheduleError("schedule.stop", "must be greater than start")
        if repeat is not None and (stop is None or repeat < stop - start or repeat == 0):
            raise ScheduleError("schedule.repeat", "needs stop and must be >= stop - start")
        return cls(start, stop, repeat)

    def to_json(self) -> dict[str, int]:
        out = {"start": self.start}
        if self.stop is not None:
            out["stop"] = self.stop
        if self.repeat is not None:
            out["repeat"] = self.repeat
        return out

    def active_at(self, elapsed_ms: float) -> bool:
        """Whether the toxic is active ``elapsed_ms`` after it was added."""
        if elapsed_ms < self.start:
            return False
        if self.stop is None:
            return True
        t = elapsed_ms
        if self.repeat is not None:
            t = self.start + (elapsed_ms - self.start) % self.repeat
        return t < self.stop

    def next_change(self, elapsed_ms: float) -> float | None:
        """The next time (ms after adding) at which :meth:`active_at` flips, or ``None``."""
        if elapsed_ms < self.start:
            return float(self.start)
        if self.stop is None:
            return None
        if self.repeat is None:
            return float(self.stop) if elapsed_ms < self.stop else None
        k = math.floor((elapsed_ms - self.start) / self.repeat)
        base = k * self.repeat
        if elapsed_ms < base + self.stop:
            return float(base + self.stop)
        return float(base + self.repeat + self.start)


@dataclass(frozen=True)
class Target:
    """Which connections a toxic applies to; every given criterion must match."""

    host: str | None = None
    port: int | None = None
    nth: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, raw: Any) -> Target:
        """From JSON/TOML; raises :class:`ScheduleError` naming the bad key."""
        if not isinstance(raw, Mapping):
            raise ScheduleError("target", "must be an object")
        unknown = set(raw) - {"client", "nth"}
        if unknown:
            raise ScheduleError(f"target.{sorted(unknown)[0]}", "unknown key (client, nth)")
        host = port = None
        client = raw.get("client")
        if client is not None:
            if not isinstance(client, str) or not client:
                raise ScheduleError("target.client", "must be 'host' or 'host:port'")
            host, sep, port_text = client.rpartition(":")
            if not sep or not port_text.isdigit():
                host, port = client, None
            else:
                port = int(port_text)
            host = host.strip("[]")
        nth_raw = raw.get("nth", [])
        nth_list = [nth_raw] if isinstance(nth_raw, int) else nth_raw
        if not isinstance(nth_list, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in nth_list
        ):
            raise ScheduleError("target.nth", "must be an integer >= 1 or a list of them")
        return cls(host, port, frozenset(nth_list))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.host is not None:
            out["client"] = self.host if self.port is None else f"{self.host}:{self.port}"
        if self.nth:
            out["nth"] = sorted(self.nth)
        return out

    def matches(self, info: LinkInfo) -> bool:
        if self.host is not None and info.client[0] != self.host:
            return False
        if self.port is not None and info.client[1] != self.port:
            return False
        return not self.nth or info.conn_id in self.nth
