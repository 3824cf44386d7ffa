"""Toxics applied to live connections: real sockets through the HTTP API, and the virtual clock."""

from __future__ import annotations

import asyncio
import struct

from proxy_helpers import open_through
from vclock import ms, virtual_time
from vlab import VirtualLab

from lab.proxy.client import ToxiproxyClient


async def test_65535_values_through_api_flips(tp: ToxiproxyClient, echo_server: str) -> None:
    # The socket-level twin of Toxiproxy's TestNoDataDropped: toxics added and removed through
    # the HTTP API in a loop while sequenced 2-byte values stream through an echo.
    proxy = await tp.create_proxy("flips", upstream=echo_server)
    reader, writer = await open_through(proxy.listen)
    stop = asyncio.Event()
    flips = 0

    async def flip() -> None:
        nonlocal flips
        while not stop.is_set():
            await proxy.add_toxic("latency", stream="upstream", attributes={"latency": 1000})
            await proxy.add_toxic("slicer", attributes={"average_size": 7, "size_variation": 3})
            await proxy.remove_toxic("latency_upstream")
            await proxy.remove_toxic("slicer_downstream")
            flips += 1

    async def send() -> None:
        for i in range(65536):
            writer.write(struct.pack(">H", i))
            if i % 512 == 0:
                await writer.drain()
                await asyncio.sleep(0)
        await writer.drain()

    flipper = asyncio.create_task(flip())
    sender = asyncio.create_task(send())
    data = await asyncio.wait_for(reader.readexactly(2 * 65536), 60)
    stop.set()
    await asyncio.gather(flipper, sender)
    assert struct.unpack(">65536H", data) == tuple(range(65536))
    assert flips >= 1
    writer.close()


@virtual_time
async def test_1000_add_remove_while_echoing() -> None:
    # Toxiproxy's 1000-iteration add/remove race with echoes in between: every echo comes back
    # whole and in order, and a removal releases what the toxic held at that instant.
    async with VirtualLab() as lab:
        proxy = await lab.proxy("race", await lab.echo())
        reader, writer = await lab.connect(proxy)
        for i in range(1000):
            await lab.add(proxy, {"type": "latency", "attributes": {"latency": 10}})
            t0 = lab.now()
            writer.write(i.to_bytes(4, "big"))
            await asyncio.sleep(0.001 * (i % 3))
            await proxy.toxics.remove("latency_downstream")
            assert await asyncio.wait_for(reader.readexactly(4), 2) == i.to_bytes(4, "big")
            assert ms(lab.now() - t0) == i % 3


@virtual_time
async def test_removal_under_load_is_immediate_and_delivers_everything() -> None:
    # Toxiproxy can answer 503 after 25 s when a toxic is removed under load (#159, #254, ...).
    # Here removals return at the instant they are made and the held data follows at once.
    async with VirtualLab() as lab:
        proxy = await lab.proxy("load", await lab.echo())
        await lab.add(proxy, {"type": "latency", "attributes": {"latency": 2000}})
        await lab.add(proxy, {"type": "bandwidth", "attributes": {"rate": 10}})
        conns = [await lab.connect(proxy) for _ in range(20)]
        for _, w in conns:
            w.write(b"L" * 200_000)
        await asyncio.sleep(0.1)
        t0 = lab.now()
        await proxy.toxics.remove("latency_downstream")
        await proxy.toxics.remove("bandwidth_downstream")
        assert ms(lab.now() - t0) == 0
        for r, _ in conns:
            assert len(await asyncio.wait_for(r.readexactly(200_000), 5)) == 200_000
        assert ms(lab.now() - t0) == 0
