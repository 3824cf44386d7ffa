"""The async typed client: context managers, PATCH updates, errors, per-instance base URLs."""

from __future__ import annotations

import asyncio

import pytest
from proxy_helpers import open_through

from lab.proxy.client import BadRequest, Conflict, NotFound, ToxiproxyClient, ToxiproxyError
from lab.proxy.server import ProxyServer


async def test_toxic_context_manager_adds_and_removes(
    tp: ToxiproxyClient, echo_server: str
) -> None:
    proxy = await tp.create_proxy("cm", upstream=echo_server)
    async with proxy.toxic("latency", attributes={"latency": 10}, stream="upstream") as toxic:
        assert toxic.name == "latency_upstream" and toxic.attributes["latency"] == 10
        assert [t.name for t in await proxy.list_toxics()] == ["latency_upstream"]
    assert await proxy.list_toxics() == []


async def test_toxic_context_manager_tolerates_reset(tp: ToxiproxyClient) -> None:
    proxy = await tp.create_proxy("cm_reset", upstream="127.0.0.1:9")
    async with proxy.toxic("noop"):
        await tp.reset()
    assert await proxy.list_toxics() == []


async def test_down_context_manager(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("cm_down", upstream=echo_server)
    with pytest.raises(RuntimeError):
        async with proxy.down():
            assert (await proxy.refresh()).enabled is False
            with pytest.raises(ConnectionRefusedError):
                await open_through(proxy.listen)
            raise RuntimeError("boom")
    assert (await proxy.refresh()).enabled is True


async def test_patch_updates_merge(tp: ToxiproxyClient) -> None:
    proxy = await tp.create_proxy("patch", upstream="127.0.0.1:9")
    await proxy.add_toxic("latency", attributes={"latency": 100, "jitter": 10})
    t = await proxy.update_toxic("latency_downstream", attributes={"jitter": 20}, toxicity=0.25)
    assert t.attributes == {"latency": 100, "jitter": 20} and t.toxicity == 0.25
    p = await proxy.update(upstream="127.0.0.1:10")
    assert p.upstream == "127.0.0.1:10" and p.enabled


async def test_errors_are_typed(tp: ToxiproxyClient) -> None:
    with pytest.raises(NotFound) as nf:
        await tp.proxy("missing")
    assert nf.value.status == 404 and nf.value.message == "proxy not found"
    await tp.create_proxy("dupe", upstream="127.0.0.1:9")
    with pytest.raises(Conflict):
        await tp.create_proxy("dupe", upstream="127.0.0.1:9")
    with pytest.raises(BadRequest, match="invalid toxic type"):
        await (await tp.proxy("dupe")).add_toxic("nope")


async def test_two_clients_two_servers(tp: ToxiproxyClient) -> None:
    async with ProxyServer("127.0.0.1", 0, seed=1) as other, ToxiproxyClient(other.base_url) as tp2:
        await tp2.create_proxy("only_here", upstream="127.0.0.1:9")
        assert "only_here" in await tp2.proxies()
        assert "only_here" not in await tp.proxies()
        assert await tp2.version() == await tp.version()


async def test_timeout_is_per_instance() -> None:
    # a server that accepts and never answers
    writers: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with ToxiproxyClient(f"http://127.0.0.1:{port}", timeout=0.2) as slow:
        with pytest.raises(TimeoutError):
            await slow.version()
    server.close()
    for writer in writers:
        writer.close()


async def test_server_error_without_json(tp: ToxiproxyClient) -> None:
    err = ToxiproxyClient._error(503, "Service Unavailable\n")
    assert (
        type(err) is ToxiproxyError and err.status == 503 and err.message == "Service Unavailable"
    )
