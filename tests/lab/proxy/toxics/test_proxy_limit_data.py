"""limit_data: exact truncation, a limit of 0, and state kept across restarts."""

from __future__ import annotations

import asyncio

from proxy_helpers import open_through, read_all

from lab.proxy.client import ToxiproxyClient


async def test_truncates_exactly_then_closes(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("lim", upstream=echo_server)
    await proxy.add_toxic("limit_data", attributes={"bytes": 100})
    reader, writer = await open_through(proxy.listen)
    writer.write(b"a" * 60)
    assert await asyncio.wait_for(reader.readexactly(60), 2) == b"a" * 60
    writer.write(b"b" * 60)
    assert await read_all(reader) == b"b" * 40
    writer.close()


async def test_limit_zero_closes_on_first_data(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("lim0", upstream=echo_server)
    await proxy.add_toxic("limit_data", stream="upstream", attributes={"bytes": 0})
    reader, writer = await open_through(proxy.listen)
    writer.write(b"hello")
    assert await read_all(reader) == b""
    writer.close()


async def test_count_survives_a_restart(tp: ToxiproxyClient, echo_server: str) -> None:
    # Toxiproxy: 90 B limit, 80 B through, interrupt, then 20 B yields 10 B.
    proxy = await tp.create_proxy("limst", upstream=echo_server)
    await proxy.add_toxic("limit_data", attributes={"bytes": 90})
    reader, writer = await open_through(proxy.listen)
    writer.write(b"c" * 80)
    assert await asyncio.wait_for(reader.readexactly(80), 2) == b"c" * 80
    await proxy.add_toxic("noop")  # interrupts and restarts the limit_data stub
    await proxy.update_toxic("limit_data_downstream", toxicity=1.0)  # and restarts it again
    writer.write(b"d" * 20)
    assert await read_all(reader) == b"d" * 10
    writer.close()
