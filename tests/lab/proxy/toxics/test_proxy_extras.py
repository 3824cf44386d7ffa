"""Lab extras on the virtual clock: slow_open, cut, flap, targeting and schedules, to the ms."""

from __future__ import annotations

import asyncio

import pytest
from vclock import ms, virtual_time
from vlab import VirtualLab

from lab.proxy.proxy import Proxy


async def _rtt(lab: VirtualLab, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               data: bytes = b"q") -> float:
    t0 = lab.now()
    writer.write(data)
    await asyncio.wait_for(reader.readexactly(len(data)), 30)
    return ms(lab.now() - t0)


@virtual_time
async def test_slow_open_holds_only_the_first_bytes() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("sopen", await lab.echo())
        await lab.add(proxy, {"type": "slow_open", "stream": "upstream",
                              "attributes": {"delay": 200}})
        t0 = lab.now()
        reader, writer = await lab.connect(proxy)
        await asyncio.sleep(0.050)
        assert await _rtt(lab, reader, writer, b"first") == 150  # due 200 ms after accept
        assert ms(lab.now() - t0) == 200
        assert await _rtt(lab, reader, writer, b"later") == 0  # only the opening is slow
        late_r, late_w = await lab.connect(proxy)
        assert await _rtt(lab, late_r, late_w) == 200  # each new connection is slow to open


@virtual_time
async def test_slow_open_on_an_older_connection_does_nothing() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("sopen2", await lab.echo())
        reader, writer = await lab.connect(proxy)
        await asyncio.sleep(0.300)
        await lab.add(proxy, {"type": "slow_open", "stream": "upstream",
                              "attributes": {"delay": 200}})
        assert await _rtt(lab, reader, writer) == 0


@virtual_time
async def test_cut_after_closes_each_connection_on_time() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("cutafter", await lab.echo())
        await lab.add(proxy, {"type": "cut", "attributes": {"after": 150}})
        t0 = lab.now()
        reader, writer = await lab.connect(proxy)
        assert await _rtt(lab, reader, writer, b"ok") == 0  # data passes until the cut
        await asyncio.sleep(0.100)
        r2, _ = await lab.connect(proxy)  # opened 100 ms later: cut 100 ms later
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert ms(lab.now() - t0) == 150
        assert await asyncio.wait_for(r2.read(), 5) == b""
        assert ms(lab.now() - t0) == 250


@virtual_time
async def test_cut_at_resets_open_connections_and_spares_later_ones() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("cutat", await lab.echo())
        old_r, old_w = await lab.connect(proxy)
        assert await _rtt(lab, old_r, old_w) == 0
        t0 = lab.now()
        await lab.add(proxy, {"type": "cut", "attributes": {"at": 100, "reset": True}})
        await asyncio.sleep(0.050)
        new_r, _ = await lab.connect(proxy)  # opened before the cut, but after the add
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(old_r.read(10), 5)
        assert ms(lab.now() - t0) == 100
        later_r, later_w = await lab.connect(proxy)
        await asyncio.sleep(1)
        assert await _rtt(lab, later_r, later_w) == 0  # opened after the cut: untouched
        with pytest.raises(ConnectionResetError):  # open at +100 ms: cut with the old one
            await asyncio.wait_for(new_r.read(10), 5)


@virtual_time
async def test_flap_takes_the_proxy_down_and_up_on_its_period() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("flap", await lab.echo())
        reader, _ = await lab.connect(proxy)
        t0 = lab.now()
        await lab.add(proxy, {"type": "flap", "attributes": {"up": 100, "down": 200}})
        assert await asyncio.wait_for(reader.read(), 5) == b""  # down at 100 ms
        assert ms(lab.now() - t0) == 100
        assert proxy.enabled  # the JSON keeps enabled: true

        async def connect_at(when_ms: float) -> bool:
            await asyncio.sleep(t0 + when_ms / 1000 - lab.now())
            try:
                r, w = await lab.connect(proxy)
            except ConnectionRefusedError:
                return False
            assert await _rtt(lab, r, w) == 0
            w.close()
            return True

        # up [0, 100), down [100, 300), up [300, 400), down [400, 600), ...
        assert [await connect_at(t) for t in (100.001, 299.999, 300.001, 399.999, 400.001,
                                              600.001)] == [False, False, True, True, False,
                                                            True]
        await proxy.toxics.remove("flap_downstream")
        assert await connect_at(1000) is True  # removal leaves the proxy up
        kinds = [e["event"] for e in lab.events(proxy="flap")
                 if e["event"].startswith("proxy_flap")]
        assert kinds[:4] == ["proxy_flap_down", "proxy_flap_up", "proxy_flap_down",
                             "proxy_flap_up"]


async def _three_rtts(lab: VirtualLab, proxy: Proxy) -> list[float]:
    times = []
    for _ in range(3):
        reader, writer = await lab.connect(proxy)
        times.append(await _rtt(lab, reader, writer))
        writer.close()
    return times


@virtual_time
async def test_target_nth_connection_only() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("nth", await lab.echo())
        await lab.add(proxy, {"type": "latency", "attributes": {"latency": 200},
                              "target": {"nth": [2]}})
        assert await _three_rtts(lab, proxy) == [0, 200, 0]


@virtual_time
async def test_target_by_client_port() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("byport", await lab.echo())
        reader, writer = await lab.connect(proxy)
        port = writer.get_extra_info("sockname")[1]
        t0 = lab.now()
        await lab.add(proxy, {"type": "timeout", "attributes": {"timeout": 1},
                              "target": {"client": f"127.0.0.1:{port}"}})
        other_r, other_w = await lab.connect(proxy)
        assert await _rtt(lab, other_r, other_w, b"k") == 0
        assert await asyncio.wait_for(reader.read(), 5) == b""  # only the targeted client
        assert ms(lab.now() - t0) == 1
        assert await _rtt(lab, other_r, other_w, b"k") == 0


@virtual_time
async def test_schedule_runs_a_timeline() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("sched", await lab.echo())
        reader, writer = await lab.connect(proxy)
        t0 = lab.now()
        toxic = await lab.add(proxy, {"type": "latency", "attributes": {"latency": 100},
                                      "schedule": {"start": 100, "stop": 300}})
        assert toxic.active is False and toxic.schedule is not None
        assert await _rtt(lab, reader, writer) == 0  # before start
        await asyncio.sleep(0.099)
        assert await _rtt(lab, reader, writer) == 0  # at 99 ms: not yet
        await asyncio.sleep(0.001)
        w = proxy.toxics.find("latency_downstream")
        assert w.active is True and ms(w.started_at - t0) == 100
        assert await _rtt(lab, reader, writer) == 100  # sent at 100, inside the window
        await asyncio.sleep(0.099)
        assert await _rtt(lab, reader, writer) == 1  # sent at 299: released by the stop
        assert ms(lab.now() - t0) == 300
        assert proxy.toxics.find("latency_downstream").active is False  # stopped at 300
        assert await _rtt(lab, reader, writer) == 0  # after stop
        kinds = [e["event"] for e in lab.events(proxy="sched")
                 if e.get("toxic") == "latency_downstream"]
        assert kinds[0] == "toxic_added"
        assert kinds.index("toxic_started") < kinds.index("toxic_stopped")


@virtual_time
async def test_repeating_schedule_windows_are_exact() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("rep", await lab.echo())
        t0 = lab.now()
        await lab.add(proxy, {"type": "noop", "schedule": {"start": 50, "stop": 80,
                                                           "repeat": 100}})
        await asyncio.sleep(0.5)
        w = proxy.toxics.find("noop_downstream")
        changes = []
        for e in lab.events(proxy="rep"):
            if e["event"] in ("toxic_started", "toxic_stopped"):
                changes.append(e["event"])
        assert changes == ["toxic_started", "toxic_stopped"] * 5
        assert ms(w.started_at - t0) == 480  # the last change: the fifth window closed
