"""RecordingHttp: reads retried through 5xx and 429 (Retry-After a floor), transactions sent once
with their outcome recorded (ack, rejected, unknown), every request in the history."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web

from lab.clients.backoff import BackoffPolicy
from lab.clients.history import History
from lab.clients.http import HttpFailed, RecordingHttp
from lab.clients.rpc import RpcError


@pytest.fixture
async def url() -> AsyncIterator[str]:
    replies = iter(
        [web.Response(status=503), web.Response(status=429, headers={"Retry-After": "0.2"})]
    )

    async def handle(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        if body["method"] == "flaky":
            nxt = next(replies, None)
            if nxt is not None:
                return nxt
        if body["method"] == "dubhe_sendTransaction" and body["params"][0] == "0xbad":
            return web.json_response({"jsonrpc": "2.0", "id": body["id"],
                                      "error": {"code": -32000, "message": "nonce too low"}})
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": "0x2a"})

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/"
    await runner.cleanup()


async def test_reads_retry_through_5xx_and_429(url: str) -> None:
    h = History("http")
    async with RecordingHttp(
        url, history=h, backoff=BackoffPolicy(base_s=0.01, cap_s=0.02), seed=1
    ) as rpc:
        assert await rpc.call("flaky") == "0x2a"
    reqs = h.of("request")
    assert [r.get("status") for r in reqs] == [503, 429, 200]
    waits = [b["delay_s"] for b in h.of("backoff")]
    assert waits[0] <= 0.01 and waits[1] == 0.2  # Retry-After is the floor
    assert reqs[2]["t"] - reqs[1]["t"] >= 0.2


async def test_transaction_outcomes(url: str) -> None:
    h = History("tx")
    async with RecordingHttp(url, history=h) as rpc:
        assert await rpc.send_raw_transaction("0x01", "0xaa") == "ack"
        assert await rpc.send_raw_transaction("0xbad", "0xbb") == "rejected"
        with pytest.raises(RpcError):
            await rpc.call("dubhe_sendTransaction", "0xbad")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    async with RecordingHttp(dead, history=h, max_attempts=2,
                             backoff=BackoffPolicy(base_s=0.01, cap_s=0.01)) as rpc:
        assert await rpc.send_raw_transaction("0x01", "0xcc") == "unknown"
        with pytest.raises(HttpFailed):
            await rpc.call("eth_chainId")
    outcomes = [(r["tx"], r["outcome"]) for r in h.of("request") if "tx" in r]
    assert outcomes == [("0xaa", "ack"), ("0xbb", "rejected"), ("0xcc", "unknown")]
