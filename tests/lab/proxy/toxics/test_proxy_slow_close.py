"""slow_close, on the virtual clock: data passes at once, the end comes exactly ``delay`` later."""

from __future__ import annotations

import asyncio

import pytest
from vclock import ms, virtual_time
from vlab import VirtualLab


async def _greeter(lab: VirtualLab) -> str:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        writer.close()

    return await lab.net.start_server(greet)


@pytest.mark.parametrize("delay", [0, 200, 1500])
@virtual_time
async def test_close_is_held_back_exactly(delay: int) -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("sc", await _greeter(lab))
        await lab.add(proxy, {"type": "slow_close", "attributes": {"delay": delay}})
        t0 = lab.now()
        reader, _ = await lab.connect(proxy)
        assert await reader.readexactly(3) == b"bye"
        assert ms(lab.now() - t0) == 0
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert ms(lab.now() - t0) == delay


@virtual_time
async def test_a_chain_change_does_not_restart_the_wait() -> None:
    # The stub is restarted by an add while it holds the end; the close still comes 200 ms
    # after the end arrived (Toxiproxy would start the 200 ms again: 350 ms).
    async with VirtualLab() as lab:
        proxy = await lab.proxy("sc2", await _greeter(lab))
        await lab.add(proxy, {"type": "slow_close", "attributes": {"delay": 200}})
        t0 = lab.now()
        reader, _ = await lab.connect(proxy)
        await reader.readexactly(3)
        await asyncio.sleep(0.150)
        await lab.add(proxy, {"type": "noop"})
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert ms(lab.now() - t0) == 200
