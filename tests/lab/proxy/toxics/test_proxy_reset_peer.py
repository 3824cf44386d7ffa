"""reset_peer, on the virtual clock: the client reads ECONNRESET exactly ``timeout`` ms after the
chunk that triggers it (toxics/reset_peer_test.go), in both streams."""

from __future__ import annotations

import asyncio

import pytest
from vclock import ms, virtual_time
from vlab import VirtualLab


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
@pytest.mark.parametrize("after", [0, 100])
@virtual_time
async def test_reset_peer_gives_econnreset_on_time(stream: str, after: int) -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("rst", await lab.echo())
        await lab.add(proxy, {"type": "reset_peer", "stream": stream,
                              "attributes": {"timeout": after}})
        reader, writer = await lab.connect(proxy)
        await asyncio.sleep(0.010)
        t0 = lab.now()
        writer.write(b"hello")
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(100), 5)
        assert ms(lab.now() - t0) == after


@virtual_time
async def test_the_reset_keeps_its_time_across_a_chain_change() -> None:
    # The wait cannot be cancelled (as in Toxiproxy): an add while it runs hands the reset to
    # the link, which fires it on time.
    async with VirtualLab() as lab:
        proxy = await lab.proxy("rst2", await lab.echo())
        await lab.add(proxy, {"type": "reset_peer", "stream": "upstream",
                              "attributes": {"timeout": 100}})
        reader, writer = await lab.connect(proxy)
        t0 = lab.now()
        writer.write(b"hello")
        await asyncio.sleep(0.060)
        await lab.add(proxy, {"type": "noop", "stream": "upstream"})
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(100), 5)
        assert ms(lab.now() - t0) == 100
