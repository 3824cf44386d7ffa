"""latency, on the virtual clock: delays are exact (Toxiproxy's toxics/latency_test.go cases).

Toxiproxy asserts these within jitter + 10 ms per direction on the wall clock; here the proxy runs
on the in-memory network and a loop whose time moves only when every task waits, so a 100 ms
toxic makes a round trip of exactly 100 ms. ``test_proxy_wallclock.py`` checks the real loop.
"""

from __future__ import annotations

import asyncio

import pytest
from vclock import ms, virtual_time
from vlab import VirtualLab

from lab.proxy import rng

PAYLOAD = b"x" * 32 * 1024  # Toxiproxy's latency tests echo 32 KiB


async def _echo_ms(lab: VirtualLab, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   payload: bytes = PAYLOAD) -> float:
    t0 = lab.now()
    writer.write(payload)
    await asyncio.wait_for(reader.readexactly(len(payload)), 30)
    return ms(lab.now() - t0)


@pytest.mark.parametrize(("up", "down"), [(100, 0), (0, 100), (100, 100), (50, 200), (0, 0),
                                          (1000, 100), (100, 1000)])
@virtual_time
async def test_round_trip_is_the_sum_of_both_directions(up: int, down: int) -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("lat", await lab.echo())
        reader, writer = await lab.connect(proxy)
        assert await _echo_ms(lab, reader, writer) == 0  # no toxic: the proxy adds nothing
        if up:
            await lab.add(proxy, {"type": "latency", "stream": "upstream",
                                  "attributes": {"latency": up}})
        if down:
            await lab.add(proxy, {"type": "latency", "attributes": {"latency": down}})
        assert await _echo_ms(lab, reader, writer) == up + down


@virtual_time
async def test_jitter_draws_replay_from_the_link_seed() -> None:
    # delay = latency + U[-jitter, +jitter) from the link's generator: after the toxicity draw
    # at start, one draw per chunk. Each round trip is exactly 100 ms plus that draw.
    async with VirtualLab(seed=77) as lab:
        proxy = await lab.proxy("jit", await lab.echo())
        reader, writer = await lab.connect(proxy)
        await lab.add(proxy, {"type": "latency", "attributes": {"latency": 100, "jitter": 30}})
        took = [await _echo_ms(lab, reader, writer) for _ in range(20)]
    gen = rng.generator(proxy.link_seed(1, "down"), "latency_downstream")
    gen.random()  # the toxicity draw
    assert took == [100 + gen.randrange(-30, 30) for _ in range(20)]
    assert all(70 <= t < 130 for t in took) and len(set(took)) > 5


@pytest.mark.parametrize(("a", "b"), [(150, 150), (500, 500)])
@virtual_time
async def test_two_latency_toxics_add_up(a: int, b: int) -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("stack", await lab.echo())
        reader, writer = await lab.connect(proxy)
        await lab.add(proxy, {"type": "latency", "name": "a", "attributes": {"latency": a}})
        await lab.add(proxy, {"type": "latency", "name": "b", "attributes": {"latency": b}})
        assert await _echo_ms(lab, reader, writer) == a + b


@virtual_time
async def test_each_chunk_is_delayed_from_its_own_arrival() -> None:
    # Chunks are not serialised behind each other (throughput is not capped): writes 30 ms
    # apart arrive 30 ms apart, each exactly 100 ms late, and 16 MiB arrive in 100 ms.
    async with VirtualLab() as lab:
        proxy = await lab.proxy("apart", await lab.echo())
        await lab.add(proxy, {"type": "latency", "attributes": {"latency": 100}})
        reader, writer = await lab.connect(proxy)
        t0 = lab.now()
        arrivals = []
        for i in range(3):
            writer.write(bytes([i]) * 10)
            await asyncio.sleep(0.030)
        for _ in range(3):
            await reader.readexactly(10)
            arrivals.append(ms(lab.now() - t0))
        assert arrivals == [100, 130, 160]
        block = b"y" * (16 * 1024 * 1024)
        assert await _echo_ms(lab, reader, writer, block) == 100


@virtual_time
async def test_client_leaving_while_reply_is_held() -> None:
    # The held reply and the end of stream reach a socket whose peer is gone: no toxic error,
    # and the connection is torn down.
    async with VirtualLab() as lab:
        proxy = await lab.proxy("leaver", await lab.echo())
        await lab.add(proxy, {"type": "latency", "attributes": {"latency": 50}})
        _, writer = await lab.connect(proxy)
        writer.write(b"bye")
        await asyncio.sleep(0.010)
        writer.close()
        await asyncio.sleep(0.100)
        assert lab.events("toxic_error") == []
        assert not proxy.connections
