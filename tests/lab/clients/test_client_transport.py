"""The websockets connector classifies what a real handshake can meet: statuses with
Retry-After, TLS failures (fatal), refused ports; and closes by who closed and the code."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import WSCloseCode, web

from lab.clients.transport import Closed, HandshakeFailed, websockets_connector
from lab.nginx.tls import write_tls


async def _ws_echo(request: web.Request) -> web.StreamResponse:
    mode = request.query.get("mode", "")
    if mode == "503":
        return web.Response(status=503, text="busy", headers={"Retry-After": "2"})
    if mode == "429":
        return web.Response(status=429, text="slow down", headers={"Retry-After": "1.5"})
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    if mode == "close1012":
        await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"restart")
        return ws
    if mode == "drop":
        assert request.transport is not None
        request.transport.abort()
        return ws
    async for msg in ws:
        await ws.send_str(msg.data)
    return ws


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, str, ssl.SSLContext]]:
    tls = write_tls(tmp_path, "t")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tls.cert, tls.key)
    app = web.Application()
    app.router.add_get("/ws", _ws_echo)
    runner = web.AppRunner(app)
    await runner.setup()
    plain = web.TCPSite(runner, "127.0.0.1", 0)
    secure = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await plain.start()
    await secure.start()
    p1 = plain._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    p2 = secure._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"127.0.0.1:{p1}", f"127.0.0.1:{p2}", ssl.create_default_context(cafile=str(tls.ca))
    finally:
        await runner.cleanup()


async def _fail(url: str, ctx: ssl.SSLContext | None = None) -> HandshakeFailed:
    with pytest.raises(HandshakeFailed) as info:
        await websockets_connector(ssl_context=ctx, open_timeout_s=3)(url)
    return info.value


async def test_statuses_carry_retry_after_and_only_plain_4xx_is_fatal(
    server: tuple[str, str, ssl.SSLContext],
) -> None:
    plain, _, _ = server
    e503 = await _fail(f"ws://{plain}/ws?mode=503")
    assert (e503.kind, e503.status, e503.retry_after_s, e503.fatal) == ("http", 503, 2.0, False)
    e429 = await _fail(f"ws://{plain}/ws?mode=429")
    assert (e429.status, e429.retry_after_s, e429.fatal) == (429, 1.5, False)
    e404 = await _fail(f"ws://{plain}/nope")
    assert (e404.status, e404.fatal) == (404, True)
    assert e404.message.startswith("HTTP 404 Not Found")


async def test_tls_failures_are_fatal_and_named(server: tuple[str, str, ssl.SSLContext]) -> None:
    plain, secure, ctx = server
    untrusted = await _fail(f"wss://{secure}/ws", ssl.create_default_context())
    assert (untrusted.kind, untrusted.exception, untrusted.fatal) == (
        "tls",
        "SSLCertVerificationError",
        True,
    )
    assert "certificate verification failed" in untrusted.message
    wrong_port = await _fail(f"wss://{plain}/ws", ctx)
    assert wrong_port.kind == "tls" and "WRONG_VERSION_NUMBER" in wrong_port.message
    ok = await websockets_connector(ssl_context=ctx)(f"wss://{secure}/ws")
    await ok.send("hi")
    assert await ok.recv() == "hi"
    await ok.close()


async def test_a_refused_port_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    e = await _fail(f"ws://127.0.0.1:{port}/ws")
    assert (e.kind, e.fatal) == ("connect", False)


async def test_closes_say_who_closed_and_the_code(server: tuple[str, str, ssl.SSLContext]) -> None:
    plain, _, _ = server
    conn = await websockets_connector()(f"ws://{plain}/ws?mode=close1012")
    with pytest.raises(Closed) as info:
        await conn.recv()
    assert (info.value.code, info.value.by, info.value.reason) == (1012, "server", "restart")
    conn = await websockets_connector()(f"ws://{plain}/ws?mode=drop")
    with pytest.raises(Closed) as info:
        await asyncio.wait_for(conn.recv(), 5)
    assert (info.value.code, info.value.by) == (1006, "none")
    conn = await websockets_connector()(f"ws://{plain}/ws")
    await conn.close()
    with pytest.raises(Closed) as info:
        await conn.recv()
    assert (info.value.code, info.value.by) == (1000, "client")
