"""timeout, on the virtual clock: drops data, closes exactly N ms after it started, 0 is a black
hole, and removing it closes the connection (Toxiproxy's Cleanup)."""

from __future__ import annotations

import asyncio

import pytest
from vclock import ms, virtual_time
from vlab import VirtualLab


@pytest.mark.parametrize("after", [1, 100, 2500])
@virtual_time
async def test_timeout_drops_data_and_closes_after_n_ms(after: int) -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("to", await lab.echo())
        reader, writer = await lab.connect(proxy)
        writer.write(b"warm")
        await reader.readexactly(4)
        await asyncio.sleep(0.040)
        t0 = lab.now()
        await lab.add(proxy, {"type": "timeout", "attributes": {"timeout": after}})
        writer.write(b"lost")
        assert await asyncio.wait_for(reader.read(), 5) == b""  # dropped, then the end
        assert ms(lab.now() - t0) == after  # counted from when the toxic started


@virtual_time
async def test_timeout_zero_is_a_black_hole_until_removed() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("bh", await lab.echo())
        await lab.add(proxy, {"type": "timeout", "attributes": {"timeout": 0}})
        reader, writer = await lab.connect(proxy)
        writer.write(b"into the void")
        with pytest.raises(TimeoutError):  # an hour of loop time: nothing back, nothing closed
            await asyncio.wait_for(reader.read(100), 3600)
        t0 = lab.now()
        await proxy.toxics.remove("timeout_downstream")
        assert await asyncio.wait_for(reader.read(), 5) == b""  # removal closed it (Cleanup)
        assert ms(lab.now() - t0) == 0


@virtual_time
async def test_timeout_behind_latency_does_not_hang() -> None:
    # Toxiproxy #159: adding a timeout behind a busy latency toxic, then removing the latency.
    # Both calls return at the instant they are made, while the latency toxic holds data.
    async with VirtualLab() as lab:
        proxy = await lab.proxy("tolat", await lab.echo())
        await lab.add(proxy, {"type": "latency", "attributes": {"latency": 1000}})
        reader, writer = await lab.connect(proxy)
        writer.write(b"x" * 10_000)
        await asyncio.sleep(0.050)
        t0 = lab.now()
        await lab.add(proxy, {"type": "timeout", "attributes": {"timeout": 50}})
        await proxy.toxics.remove("latency_downstream")
        assert ms(lab.now() - t0) == 0
        # the held reply went on into the timeout, which dropped it and closed at 50 ms
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert ms(lab.now() - t0) == 50


@virtual_time
async def test_toxicity_zero_passes_then_update_to_one_closes_after_timeout() -> None:
    # Toxiproxy's TestToxicity: toxicity 0 passes data; updated to 1 with timeout 100 the
    # connection ends 100 ms after the update.
    async with VirtualLab() as lab:
        proxy = await lab.proxy("tox", await lab.echo())
        await lab.add(proxy, {"type": "timeout", "toxicity": 0, "attributes": {"timeout": 100}})
        reader, writer = await lab.connect(proxy)
        writer.write(b"hello")
        assert await reader.readexactly(5) == b"hello"
        t0 = lab.now()
        await proxy.toxics.update("timeout_downstream", {"toxicity": 1.0})
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert ms(lab.now() - t0) == 100
