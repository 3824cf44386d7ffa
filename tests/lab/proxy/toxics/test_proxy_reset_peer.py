"""reset_peer: the client reads ECONNRESET after ``timeout`` ms (toxics/reset_peer_test.go)."""

from __future__ import annotations

import asyncio
import time

import pytest
from proxy_helpers import TIME_FACTOR, open_through

from lab.proxy.client import ToxiproxyClient


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
async def test_reset_peer_gives_econnreset(tp: ToxiproxyClient, echo_server: str,
                                           stream: str) -> None:
    proxy = await tp.create_proxy("rst", upstream=echo_server)
    await proxy.add_toxic("reset_peer", stream=stream, attributes={"timeout": 100})
    reader, writer = await open_through(proxy.listen)
    t0 = time.monotonic()
    writer.write(b"hello")
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), 2)
    took = time.monotonic() - t0
    # Toxiproxy allows Timeout + 10 ms; measured from the write that triggers it
    assert 0.095 <= took <= 0.110 + 0.010 * (TIME_FACTOR - 1), took
    writer.close()


async def test_reset_peer_zero_resets_at_once(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("rst0", upstream=echo_server)
    await proxy.add_toxic("reset_peer", stream="upstream")
    reader, writer = await open_through(proxy.listen)
    writer.write(b"x")
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), 2)
    writer.close()
