"""One ToxicStub on its own (lab.proxy.toxics.base): what a toxic may call and what the link
does with it: forwarding and closing (once), a moment toxic's firings (none once closed), a
continuous toxic reported once per link, toxicity 0 never drawn, interrupting and killing a
run in any state, a toxic that raises kept from wedging the stream."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from lab.proxy.stream import Channel, Chunk, Direction, End
from lab.proxy.toxics import Toxic, ToxicStub
from lab.proxy.toxics.base import LinkInfo


class Host:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def end_at(self, when: float, kind: End, then: Any = None) -> None: ...

    def record(self, event: str, toxic: str, **details: Any) -> None:
        self.records.append((event, toxic, details))

    def tracker_snapshot(self) -> Any: ...

    def consumed(self) -> None: ...


def stub(name: str = "t") -> tuple[ToxicStub, Channel, Channel, Host]:
    inp, out, host = Channel(), Channel(), Host()
    info = LinkInfo("p", 1, ("127.0.0.1", 1), Direction.DOWNSTREAM, 0.0)
    s = ToxicStub(name=name, input=inp, output=out, rng=random.Random(1), info=info, host=host)
    return s, inp, out, host


class Moment(Toxic):
    moment = True

    async def pipe(self, stub: ToxicStub) -> None:
        stub.fired("cut", at=1)
        stub.close(End.RESET)
        stub.fired("cut", at=2)  # after closing: not reported


class Forward(Toxic):
    async def pipe(self, stub: ToxicStub) -> None:
        while (chunk := await stub.recv()) is not None:
            stub.send(chunk)
        stub.close()


class Boom(Toxic):
    async def pipe(self, stub: ToxicStub) -> None:
        raise RuntimeError("bug")


def test_a_moment_toxic_reports_each_firing_until_it_closed() -> None:
    async def main() -> None:
        s, _, out, _ = stub()
        fires: list[dict[str, Any]] = []
        s.start(Moment(), 1.0, True, lambda **d: fires.append(d))
        await s.task  # type: ignore[misc]
        assert fires == [{"action": "cut", "at": 1}]
        assert list(out.items) == [End.RESET] and s.closed
        s.close()  # closing again puts nothing more
        assert list(out.items) == [End.RESET]

    asyncio.run(main())


def test_a_continuous_toxic_is_reported_once_per_link_and_toxicity_0_never_runs() -> None:
    async def main() -> None:
        s, inp, out, _ = stub()
        fires: list[dict[str, Any]] = []
        s.start(Forward(), 1.0, True, lambda **d: fires.append(d))
        assert s.ran_toxic and fires == [{}]
        await s.interrupt()
        s.start(Forward(), 1.0, True, lambda **d: fires.append(d))  # a restart: not again
        assert fires == [{}]
        await s.interrupt()
        s2, *_ = stub()
        seen: list[dict[str, Any]] = []
        for _ in range(50):
            s2.start(Forward(), 0.0, True, lambda **d: seen.append(d))
            assert not s2.ran_toxic
            await s2.interrupt()
        s2.start(Forward(), 1.0, False, lambda **d: seen.append(d))  # does not apply here
        assert not s2.ran_toxic and seen == []
        await s2.interrupt()
        inp.put(Chunk(b"x", 0.0))
        inp.put(End.EOF)
        s.start(Forward(), 1.0, True, lambda **d: None)
        await s.task  # type: ignore[misc]
        assert [i.data if isinstance(i, Chunk) else i for i in out.items] == [b"x", End.EOF]

    asyncio.run(main())


def test_interrupting_or_killing_is_safe_in_any_state() -> None:
    async def main() -> None:
        s, inp, _, _ = stub()
        await s.interrupt()  # never started
        s.kill()
        s.start(Forward(), 1.0, True, lambda **d: None)
        await asyncio.sleep(0)
        await s.interrupt()  # waiting for input: stops at once
        assert s.task is not None and s.task.done()
        await s.interrupt()  # already stopped
        s.kill()
        assert inp.waiter is None  # the run left no waiter behind on its input
        s.start(Forward(), 1.0, True, lambda **d: None)
        await asyncio.sleep(0)
        s.kill()
        await asyncio.sleep(0)
        assert s.task.cancelled()

    asyncio.run(main())


def test_a_toxic_that_raises_is_logged_and_the_bytes_keep_flowing() -> None:
    async def main() -> None:
        s, inp, out, host = stub("broken")
        seen: list[bytes] = []
        s.on_passthrough = seen.append
        inp.put(Chunk(b"a", 0.0))
        inp.put(End.EOF)
        s.start(Boom(), 1.0, True, lambda **d: None)
        await s.task  # type: ignore[misc]
        assert host.records == [("toxic_error", "broken", {"error": "RuntimeError: bug"})]
        assert [i.data if isinstance(i, Chunk) else i for i in out.items] == [b"a", End.EOF]
        assert seen == [b"a"]  # a pass-through run shows what it forwards to the trackers

    asyncio.run(main())


def test_recording_names_the_toxic() -> None:
    async def main() -> None:
        s, _, _, host = stub("lat")
        s.record("ws_close_sent", code=1006)
        assert host.records == [("ws_close_sent", "lat", {"code": 1006})]
        assert s.toxic_started == 0.0 and s.state is None and not s.announced

    asyncio.run(main())
