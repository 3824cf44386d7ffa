"""A proxy's toxics: JSON in and out, the chain per direction, and applying changes to live links.

Mirrors Toxiproxy's ``toxic_collection.go``: defaults (``stream`` downstream, ``toxicity`` 1.0,
``name`` ``<type>_<stream>``), names unique across both streams, the order of checks (stream, then
type, then duplicate name, then attributes), PATCH merging attributes into the current ones.
Lab extras: ``schedule`` and ``target`` fields (see ``schedule.py``) and proxy-wide toxics.

A toxic aimed at connections (``target``) is installed only on the links it matches: the
collection indexes its live links by connection ordinal, client address and client host, and its
toxics by the same keys, so adding, changing or removing an aimed toxic touches only the
connections it is aimed at, and a new connection looks up only the toxics that can match it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from lab.proxy.errors import (
    ERR_BAD_REQUEST_BODY,
    ERR_INVALID_STREAM,
    ERR_INVALID_TOXIC_TYPE,
    ERR_TOXIC_EXISTS,
    ERR_TOXIC_NOT_FOUND,
)
from lab.proxy.events import EventLog
from lab.proxy.link import Link
from lab.proxy.schedule import Schedule, ScheduleError, Target
from lab.proxy.stream import Direction
from lab.proxy.toxics import TOXICS, ProxyToxic, Toxic, ToxicAttributeError
from lab.proxy.toxics.base import LinkInfo, ProxyControl

_uids = itertools.count(1)

#: Index keys: ``None`` for every connection (no target), else one selective part of a target.
Key = tuple[Any, ...] | None


def _target_keys(target: Target | None) -> list[Key]:
    """The index keys a toxic is filed under: its most selective criterion."""
    if target is None:
        return [None]
    if target.nth:
        return [("conn", n) for n in sorted(target.nth)]
    if target.host is not None and target.port is not None:
        return [("client", target.host, target.port)]
    if target.host is not None:
        return [("host", target.host)]
    return [None]


def _link_keys(info: LinkInfo) -> list[Key]:
    """Every key a link is filed under (and so every key a toxic for it may be filed under)."""
    return [None, ("conn", info.conn_id), ("client", *info.client), ("host", info.client[0])]


@dataclass
class ToxicWrapper:
    """A toxic as the API sees it: the toxic plus name, stream, toxicity, schedule, target."""

    name: str
    type: str
    stream: Direction
    toxicity: float
    toxic: Toxic
    schedule: Schedule | None = None
    target: Target | None = None
    added_at: float = 0.0  # loop time when added
    started_at: float = 0.0  # loop time when (last) activated
    active: bool = True
    uid: int = field(default_factory=lambda: next(_uids))
    seq: int = 0  # order of insertion into its collection (chain order)

    def applies(self, info: LinkInfo) -> bool:
        """Whether the toxic should run (rather than pass through) on this link. The target is
        not looked at: the collection installs an aimed toxic only on links it matches."""
        return self.active

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's toxic JSON, plus ``schedule``/``target``/``active`` when scheduled or
        targeted."""
        out: dict[str, Any] = {
            "attributes": self.toxic.attributes(),
            "name": self.name,
            "type": self.type,
            "stream": self.stream.value,
            "toxicity": self.toxicity,
        }
        if self.schedule is not None:
            out["schedule"] = self.schedule.to_json()
            out["active"] = self.active
        if self.target is not None:
            out["target"] = self.target.to_json()
        return out


def _toxicity(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ERR_BAD_REQUEST_BODY.joined(f"toxicity must be a number, got {raw!r}")
    return float(raw)


def parse_toxic(body: Any) -> ToxicWrapper:
    """Validate a toxic creation body; raises :class:`ApiError` with Toxiproxy's messages."""
    if not isinstance(body, Mapping):
        raise ERR_BAD_REQUEST_BODY.joined("a toxic must be a JSON object")
    stream_text = body.get("stream", "downstream")
    if not isinstance(stream_text, str):
        raise ERR_INVALID_STREAM
    try:
        stream = Direction.parse(stream_text)
    except ValueError:
        raise ERR_INVALID_STREAM from None
    type_name = body.get("type", "")
    cls = TOXICS.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise ERR_INVALID_TOXIC_TYPE
    name = body.get("name") or f"{type_name}_{stream_text}"
    if not isinstance(name, str):
        raise ERR_BAD_REQUEST_BODY.joined(f"name must be a string, got {name!r}")
    try:
        toxic = cls.from_attributes(body.get("attributes") or {})
        schedule = Schedule.parse(body["schedule"]) if body.get("schedule") is not None else None
        target = Target.parse(body["target"]) if body.get("target") is not None else None
    except (ToxicAttributeError, ScheduleError) as exc:
        raise ERR_BAD_REQUEST_BODY.joined(str(exc)) from None
    return ToxicWrapper(
        name=name, type=type_name, stream=stream,
        toxicity=_toxicity(body.get("toxicity", 1.0)), toxic=toxic,
        schedule=schedule, target=target,
    )


class ToxicCollection:
    """The toxics of one proxy and the live links they apply to."""

    def __init__(self, proxy: str, events: EventLog, control: ProxyControl,
                 on_fired: Callable[..., None] | None = None) -> None:
        self.proxy = proxy
        self.events = events
        self.control = control
        self.on_fired = on_fired or (lambda wrapper, link=None, **details: None)
        self.toxics: dict[str, ToxicWrapper] = {}  # by name, in the order added
        self._toxic_index: dict[Key, dict[str, ToxicWrapper]] = {}
        self._link_index: dict[Key, set[Link]] = {}
        self._seq = itertools.count(1)
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._loop = asyncio.get_running_loop()

    # -- links ----------------------------------------------------------------------------
    def attach(self, link: Link) -> list[ToxicWrapper]:
        """Register a new link; returns the toxics its chain starts with, in chain order.

        Only toxics filed under the link's keys are looked at, and each target once.
        """
        info = link.info
        found: dict[str, ToxicWrapper] = {}
        for key in _link_keys(info):
            self._link_index.setdefault(key, set()).add(link)
            for w in self._toxic_index.get(key, {}).values():
                if w.stream is info.direction and (w.target is None or w.target.matches(info)):
                    found[w.name] = w
        return sorted(found.values(), key=lambda w: w.seq)

    def detach(self, link: Link) -> None:
        """The link's connection is gone."""
        for key in _link_keys(link.info):
            links = self._link_index.get(key)
            if links is not None:
                links.discard(link)
                if not links:
                    del self._link_index[key]

    @property
    def links(self) -> set[Link]:
        """Every live link of this proxy."""
        return set(self._link_index.get(None, ()))

    def _links_of(self, w: ToxicWrapper) -> list[Link]:
        """The live links ``w`` is (or would be) installed on."""
        out: dict[int, Link] = {}
        for key in _target_keys(w.target):
            for link in self._link_index.get(key, ()):
                info = link.info
                if info.direction is w.stream and (w.target is None or w.target.matches(info)):
                    out[id(link)] = link
        return list(out.values())

    # -- toxics ---------------------------------------------------------------------------
    def chain(self, direction: Direction) -> list[ToxicWrapper]:
        """Toxics of one direction, in the order they were added."""
        return [t for t in self.toxics.values() if t.stream is direction]

    def find(self, name: str) -> ToxicWrapper:
        try:
            return self.toxics[name]
        except KeyError:
            raise ERR_TOXIC_NOT_FOUND from None

    def _file(self, w: ToxicWrapper) -> None:
        self.toxics[w.name] = w
        for key in _target_keys(w.target):
            self._toxic_index.setdefault(key, {})[w.name] = w

    def _unfile(self, w: ToxicWrapper) -> None:
        del self.toxics[w.name]
        for key in _target_keys(w.target):
            bucket = self._toxic_index.get(key)
            if bucket is not None:
                bucket.pop(w.name, None)
                if not bucket:
                    del self._toxic_index[key]

    def to_json(self) -> list[dict[str, Any]]:
        """Upstream toxics first, then downstream, each in the order added (as Toxiproxy)."""
        return [t.to_json() for d in (Direction.UPSTREAM, Direction.DOWNSTREAM)
                for t in self.chain(d)]

    def _record(self, event: str, w: ToxicWrapper, **extra: Any) -> None:
        self.events.append(event, proxy=self.proxy, toxic=w.name, type=w.type,
                           stream=w.stream.value, **extra)

    async def _each_link(self, w: ToxicWrapper, op: Callable[[Link], Awaitable[None]]) -> None:
        links = self._links_of(w)
        if len(links) == 1:
            await op(links[0])
        elif links:
            await asyncio.gather(*(op(link) for link in links))

    async def add(self, body: Any) -> ToxicWrapper:
        """POST /proxies/{p}/toxics."""
        w = parse_toxic(body)
        if w.name in self.toxics:
            raise ERR_TOXIC_EXISTS
        await self.insert(w)
        return w

    async def insert(self, w: ToxicWrapper) -> None:
        """Add a validated toxic (also used by profiles) and start its schedule."""
        now = self._loop.time()
        w.added_at = w.started_at = now
        w.active = w.schedule.active_at(0) if w.schedule is not None else True
        w.seq = next(self._seq)
        self._file(w)
        self._record("toxic_added", w, attributes=w.toxic.attributes(), toxicity=w.toxicity,
                     active=w.active)
        await self._each_link(w, lambda link: link.add(w))
        if w.active:
            self._start_proxy_task(w)
        if w.schedule is not None:
            self._tasks.setdefault(w.name, []).append(
                self._loop.create_task(self._run_schedule(w, w.schedule))
            )

    async def update(self, name: str, body: Any) -> ToxicWrapper:
        """PATCH /proxies/{p}/toxics/{t}: only ``attributes`` (merged) and ``toxicity``."""
        w = self.find(name)
        if not isinstance(body, Mapping):
            raise ERR_BAD_REQUEST_BODY.joined("a toxic must be a JSON object")
        try:
            toxic = type(w.toxic).from_attributes(body.get("attributes") or {}, base=w.toxic)
        except ToxicAttributeError as exc:
            raise ERR_BAD_REQUEST_BODY.joined(str(exc)) from None
        toxicity = _toxicity(body["toxicity"]) if "toxicity" in body else w.toxicity
        new = replace(w, toxic=toxic, toxicity=toxicity)
        self._file(new)  # same name and target: replaces it in place, keeping its order
        self._record("toxic_updated", new, attributes=toxic.attributes(), toxicity=toxicity)
        self._stop_proxy_task(w.name)
        await self._each_link(new, lambda link: link.update(new))
        if new.active:
            self._start_proxy_task(new)
        return new

    async def remove(self, name: str) -> None:
        """DELETE /proxies/{p}/toxics/{t}."""
        w = self.find(name)
        self._unfile(w)
        for task in self._tasks.pop(name, []):
            task.cancel()
        self._stop_proxy_task(name)
        self._record("toxic_removed", w)
        await self._each_link(w, lambda link: link.remove(w))

    async def clear(self) -> None:
        """Remove every toxic (POST /reset)."""
        for name in list(self.toxics):
            await self.remove(name)

    # -- lab extras ---------------------------------------------------------------------
    async def set_active(self, w: ToxicWrapper, active: bool) -> None:
        """Switch a scheduled toxic on or off on every live link (stopping runs cleanup)."""
        current = self.toxics.get(w.name)
        if current is None or current.active == active:
            return
        current.active = active
        current.started_at = self._loop.time()
        self._record("toxic_started" if active else "toxic_stopped", current)
        if active:
            await self._each_link(current, lambda link: link.update(current))
            self._start_proxy_task(current)
        else:
            self._stop_proxy_task(current.name)
            await self._each_link(current, lambda link: self._deactivate(link, current))

    async def _deactivate(self, link: Link, w: ToxicWrapper) -> None:
        # A stop is a removal as far as the stream is concerned (a timeout's Cleanup closes),
        # then the stub goes back in as a pass-through so a later window can restart it.
        await link.remove(w)
        await link.add(w)

    async def _run_schedule(self, w: ToxicWrapper, schedule: Schedule) -> None:
        # Walk the schedule's changes by their offsets, not by reading the clock back: a clock
        # read just after a wake-up may still be a hair before the change it woke for.
        mark = 0.0  # ms after adding, of the last change applied
        while (nxt := schedule.next_change(mark)) is not None:
            await _sleep_until(self._loop, w.added_at + nxt / 1000.0)
            mark = nxt
            await self.set_active(w, schedule.active_at(nxt))

    def _start_proxy_task(self, w: ToxicWrapper) -> None:
        if isinstance(w.toxic, ProxyToxic):
            control = _FiringControl(self.control, lambda: self.on_fired(w, action="down"))
            task = self._loop.create_task(w.toxic.run_proxy(control))
            self._tasks.setdefault(w.name + "\0proxy", []).append(task)

    def _stop_proxy_task(self, name: str) -> None:
        for task in self._tasks.pop(name + "\0proxy", []):
            task.cancel()

    def stop_all_tasks(self) -> None:
        for tasks in self._tasks.values():
            for task in tasks:
                task.cancel()
        self._tasks.clear()


class _FiringControl:
    """A proxy-wide toxic's control that reports each change down as a firing."""

    def __init__(self, control: ProxyControl, fire: Callable[[], None]) -> None:
        self._control = control
        self._fire = fire

    async def set_down(self, down: bool) -> bool:
        changed = await self._control.set_down(down)
        if changed and down:
            self._fire()
        return changed

    async def sleep(self, seconds: float) -> None:
        await self._control.sleep(seconds)


async def _sleep_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    """Sleep until loop time ``when`` (at once if it has passed)."""
    fut: asyncio.Future[None] = loop.create_future()
    handle = loop.call_at(when, _set_done, fut)
    try:
        await fut
    finally:
        handle.cancel()


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
