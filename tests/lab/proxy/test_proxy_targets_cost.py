"""Aimed toxics cost O(1): they touch only the connections they are aimed at, and a new
connection evaluates only the targets that can match it. Counted in operations, not timed
(``dubhe-bench proxy`` times it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from vclock import virtual_time
from vlab import VirtualLab

from lab.proxy.link import Link
from lab.proxy.schedule import Target


def _client(writer: asyncio.StreamWriter) -> str:
    host, port = writer.get_extra_info("sockname")[:2]
    return f"{host}:{port}"


class Touches:
    """Counts chain changes per link and target evaluations."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.links: dict[int, int] = {}
        self.matches = 0
        for name in ("add", "update", "remove"):
            original = getattr(Link, name)
            monkeypatch.setattr(Link, name, self._counting(original))
        original_matches = Target.matches

        def matches(target: Target, info: Any) -> bool:
            self.matches += 1
            return original_matches(target, info)

        monkeypatch.setattr(Target, "matches", matches)

    def _counting(self, original: Any) -> Any:
        async def wrapper(link: Link, *args: Any, **kwargs: Any) -> None:
            self.links[link.info.conn_id] = self.links.get(link.info.conn_id, 0) + 1
            await original(link, *args, **kwargs)

        return wrapper

    def reset(self) -> None:
        self.links.clear()
        self.matches = 0


@pytest.mark.parametrize("target_kind", ["client", "nth"])
def test_an_aimed_toxic_touches_only_its_connection(monkeypatch: pytest.MonkeyPatch,
                                                   target_kind: str) -> None:
    touches = Touches(monkeypatch)

    @virtual_time
    async def body() -> None:
        async with VirtualLab() as lab:
            proxy = await lab.proxy("aim", await lab.echo())
            conns = [await lab.connect(proxy) for _ in range(200)]
            for i in range(100):  # 100 aimed toxics already in place, one per connection
                await lab.add(proxy, {"type": "latency", "name": f"pre{i}",
                                      "target": {"nth": [i + 1]}})
            for _, w in conns:
                w.write(b"x")
            for r, _ in conns:
                await r.readexactly(1)
            assert [len(link.stubs) for link in sorted(
                (lk for lk in proxy.toxics.links if lk.info.direction.value == "downstream"),
                key=lambda lk: lk.info.conn_id)] == [1] * 100 + [0] * 100
            target = ({"client": _client(conns[149][1])} if target_kind == "client"
                      else {"nth": [150]})
            for name in ("up", "down"):
                touches.reset()
                await lab.add(proxy, {"type": "slicer", "name": name, "stream": f"{name}stream",
                                      "attributes": {"average_size": 2}, "target": target})
                await proxy.toxics.update(name, {"attributes": {"average_size": 3}})
                await proxy.toxics.remove(name)
                assert touches.links == {150: 3}  # add, update, remove on connection 150 only
                assert touches.matches == 3  # once per operation
            touches.reset()
            await lab.connect(proxy)  # a new connection: its own keys only, no scan
            await asyncio.sleep(0.001)
            assert touches.matches == 0  # no toxic can be aimed at connection 201 yet
            await lab.add(proxy, {"type": "noop", "name": "late", "target": {"nth": [202]}})
            touches.reset()
            r, w = await lab.connect(proxy)
            w.write(b"y")
            assert await r.readexactly(1) == b"y"
            assert touches.matches == 1  # "late" checked once, for its stream's link of 202
            assert [e["conn"] for e in lab.events("toxic_fired") if e["toxic"] == "late"] == [202]

    body()
