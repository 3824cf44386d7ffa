"""Where the lab's proxy used to differ from Toxiproxy 2.12 and now matches it: the resolved
address in a port conflict, the proxy JSON's ``Logger`` key, and a reset for a client whose data
was never read because the upstream was down."""

from __future__ import annotations

import asyncio

import pytest
from vclock import virtual_time
from vlab import VirtualLab

from lab.proxy.errors import ApiError


@pytest.mark.parametrize("uvloop_accept", [False, True], ids=["asyncio", "uvloop"])
@pytest.mark.parametrize("writes", [False, True], ids=["silent", "writes"])
@virtual_time
async def test_dead_upstream_resets_a_client_that_sent_data(uvloop_accept: bool,
                                                            writes: bool) -> None:
    # Toxiproxy closes the client when the dial fails; Linux turns a close with unread data
    # into an RST (20/20 resets with Toxiproxy when the client writes at once). A client that
    # sent nothing sees a clean EOF, with either loop's way of accepting.
    async with VirtualLab(uvloop_accept=uvloop_accept) as lab:
        proxy = await lab.proxy("dead", "127.0.0.1:9")  # nothing listens there
        reader, writer = await lab.connect(proxy)
        if writes:
            writer.write(b"GET / HTTP/1.1\r\n\r\n")
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(reader.read(), 5)
        else:
            assert await asyncio.wait_for(reader.read(), 5) == b""
        assert [e["event"] for e in lab.events(proxy="dead")][-1] == "upstream_failed"


@virtual_time
async def test_port_conflict_names_the_resolved_address() -> None:
    # Toxiproxy's TestCreateProxyPortConflict: "localhost:3310" twice.
    async with VirtualLab() as lab:
        first = await lab.collection.create({"name": "a", "upstream": "127.0.0.1:9",
                                             "listen": "localhost:3310"})
        assert first.listen == "127.0.0.1:3310"
        with pytest.raises(ApiError) as info:
            await lab.collection.create({"name": "b", "upstream": "127.0.0.1:9",
                                         "listen": "localhost:3310"})
        assert (info.value.status, info.value.message) == (
            500, "listen tcp 127.0.0.1:3310: bind: address already in use")


@virtual_time
async def test_proxy_json_has_toxiproxys_keys_in_order() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("keys", "127.0.0.1:9")
        assert list(proxy.to_json()) == ["name", "listen", "upstream", "enabled", "Logger",
                                         "toxics"]
        assert proxy.to_json()["Logger"] == {}
