"""Rule-based model of a link: any sequence of chain changes keeps the byte stream intact.

Rules add, update and remove toxics (latency, slicer, noop, bandwidth, slow_open, ws_message)
while numbered bytes flow; the invariant is that what reached the destination is always a prefix
of what was fed, and once every toxic is removed the rest arrives, in order, with nothing lost.
It runs on the virtual clock, so a replayed example waits exactly as the first run did.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from test_proxy_link import Recorder, make_link, toxic
from vclock import VirtualClockLoop

from lab.proxy.link import Link
from lab.proxy.toxic_collection import ToxicWrapper

BODIES: list[dict[str, Any]] = [
    {"type": "latency", "attributes": {"latency": 2, "jitter": 1}},
    {"type": "slicer", "attributes": {"average_size": 3, "size_variation": 2, "delay": 100}},
    {"type": "noop"},
    {"type": "bandwidth", "attributes": {"rate": 1000}},
    {"type": "slow_open", "attributes": {"delay": 3}},
    {"type": "ws_message", "attributes": {"delay": 1}},
    {"type": "latency", "toxicity": 0.5, "attributes": {"latency": 1}},
]


class LinkMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = VirtualClockLoop()
        self.owner = Recorder(clock=self.loop.time)
        self.link: Link = self.loop.run_until_complete(self._make())
        self.fed = bytearray()
        self.toxics: dict[str, ToxicWrapper] = {}
        self.counter = 0

    async def _make(self) -> Link:
        return make_link(self.owner)

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    @rule(n=st.integers(1, 40))
    def feed(self, n: int) -> None:
        data = bytes((len(self.fed) + i) % 251 for i in range(n))
        self.fed += data
        self.link.feed(data)

    @rule(body=st.sampled_from(BODIES))
    def add(self, body: dict[str, Any]) -> None:
        self.counter += 1
        name = f"t{self.counter}"

        async def go() -> ToxicWrapper:
            w = toxic(dict(body, name=name))
            await self.link.add(w)
            return w

        self.toxics[name] = self._run(go())

    @precondition(lambda self: bool(self.toxics))
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.toxics)))
        self._run(self.link.remove(self.toxics.pop(name)))

    @precondition(lambda self: bool(self.toxics))
    @rule(data=st.data())
    def update(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.toxics)))
        self._run(self.link.update(self.toxics[name]))

    @rule(ms=st.integers(0, 5))
    def wait(self, ms: int) -> None:
        self._run(asyncio.sleep(ms / 1000))

    @invariant()
    def output_is_a_prefix(self) -> None:
        assert bytes(self.owner.data) == bytes(self.fed[: len(self.owner.data)])

    def teardown(self) -> None:
        async def drain() -> None:
            for w in list(self.toxics.values()):
                await self.link.remove(w)
            await asyncio.sleep(0)

        self._run(drain())
        assert bytes(self.owner.data) == bytes(self.fed)
        assert self.link.entry is self.link and self.link.inflight == 0
        self.link.kill()
        self._run(asyncio.sleep(0))
        self.loop.close()


LinkMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestLinkChain = LinkMachine.TestCase
