"""WebSocket JSON-RPC and pubsub against a real node subprocess."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import aiohttp
import orjson
import pytest
import websockets
from server_helpers import funded_transfer  # type: ignore[import-not-found]
from timing import scaled, wait_until  # type: ignore[import-not-found]
from websockets.exceptions import ConnectionClosed, InvalidStatus

from lab.clients.rpc import HttpRpc, RpcError, WsRpc
from node.core import keys
from node.core.hexutil import data, parse_qty

pytestmark = pytest.mark.timeout(120)


async def test_new_heads_in_geth_format(node: Any) -> None:
    async with await WsRpc.connect(node.ws) as ws:
        assert await ws.call("eth_chainId") == hex(0x44554248)
        sid = await ws.subscribe("newHeads")
        assert sid.startswith("0x") and len(sid) == 34
        heads = [await ws.next_notification(sid, 5) for _ in range(3)]
    numbers = [parse_qty(h["number"]) for h in heads]
    assert numbers == list(range(numbers[0], numbers[0] + 3)), "gap or reorder in newHeads"
    assert heads[1]["parentHash"] == heads[0]["hash"]
    assert {"stateRoot", "transactionsRoot", "timestamp", "gasUsed", "logsBloom"} <= set(heads[0])


async def test_raw_notification_envelope(node: Any) -> None:
    async with websockets.connect(node.ws) as ws:
        await ws.send('{"jsonrpc":"2.0","id":7,"method":"eth_subscribe","params":["newHeads"]}')
        ack = orjson.loads(await ws.recv())
        assert ack["id"] == 7
        note = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert note["jsonrpc"] == "2.0" and note["method"] == "eth_subscription"
        assert note["params"]["subscription"] == ack["result"]
        assert "number" in note["params"]["result"]
        # The emit time (Dubhe extension): after the block was made, not in the future.
        emitted = parse_qty(note["params"]["emittedMs"])
        assert parse_qty(note["params"]["result"]["timestampMs"]) <= emitted <= time.time() * 1000


async def test_logs_and_receipts_subscriptions(node: Any) -> None:
    async with await WsRpc.connect(node.ws) as ws, HttpRpc(node.rpc) as rpc:
        logs = await ws.subscribe("logs", {"address": data(keys.NATIVE_TOKEN)})
        other = await ws.subscribe("logs", {"address": "0x" + "99" * 20})
        rcpts = await ws.subscribe("receipts", {}, namespace="dubhe")
        tx_hash, _, to = await funded_transfer(rpc, seed=b"ws-logs", amount=5)
        seen_logs = [await ws.next_notification(logs, 5) for _ in range(2)]  # mint, then transfer
        assert all(
            x["address"] == data(keys.NATIVE_TOKEN) and "blockNumber" in x for x in seen_logs
        )
        assert seen_logs[-1]["transactionHash"] == tx_hash
        assert seen_logs[-1]["topics"][2] == "0x" + "00" * 12 + to.hex()
        got = [await ws.next_notification(rcpts, 5) for _ in range(2)]
        assert got[-1]["transactionHash"] == tx_hash and got[-1]["status"] == "success"
        assert all("blockNumber" in r for r in got)
        with pytest.raises(TimeoutError):
            await ws.next_notification(other, 0.3)
        assert await ws.call("eth_unsubscribe", logs) is True
        assert await ws.call("eth_unsubscribe", logs) is False


async def test_malformed_messages_get_errors_not_crashes(node: Any) -> None:
    async with websockets.connect(node.ws) as ws:
        for raw, code in [
            ("{oops", -32700),
            ("[]", -32600),
            ('{"jsonrpc":"2.0","id":1,"method":"nope"}', -32601),
            ('{"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["bogus"]}', -32602),
        ]:
            await ws.send(raw)
            assert orjson.loads(await ws.recv())["error"]["code"] == code
        await ws.send(b'{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}')  # binary frame works too
        assert orjson.loads(await ws.recv())["result"] == hex(0x44554248)


async def test_oversize_frame_closes_1009(node: Any) -> None:
    async with websockets.connect(node.ws, max_size=None) as ws:
        await ws.send("x" * 100_000)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1009


async def test_max_connections_503(fresh_node: Any) -> None:
    n = fresh_node(api={"max_connections": 2})
    a = await websockets.connect(n.ws)
    b = await websockets.connect(n.ws)
    try:
        with pytest.raises(InvalidStatus) as e:
            await websockets.connect(n.ws)
        assert e.value.response.status_code == 503
        assert e.value.response.headers["Retry-After"] == "1"
        async with HttpRpc(n.rpc) as rpc:
            assert (await rpc.call("dubhe_status"))["openConnections"] == 2
    finally:
        await a.close()
        await b.close()
    async with HttpRpc(n.rpc) as rpc:

        async def slot_free() -> bool:
            return bool((await rpc.call("dubhe_status"))["openConnections"] < 2)

        await wait_until(slot_free, what="the node counting a closed connection")
    c = await websockets.connect(n.ws)  # a slot is free again
    await c.close()


async def test_slow_consumer_closed_1008_and_counted(fresh_node: Any) -> None:
    n = fresh_node(api={"ws_queue_messages": 20}, node={"block_time_ms": 20})
    host, port = n.ws.removeprefix("ws://").rsplit(":", 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: we stop reading
    sock.connect((host, int(port)))
    # max_queue=1: the client library stops reading from the socket once one frame is waiting.
    # ping_interval=None: this client deliberately reads nothing, so its own keepalive would
    # time out (20 s) on a loaded machine and close first (1006, not the node's 1008)
    async with websockets.connect(n.ws, sock=sock, max_queue=1, ping_interval=None) as ws:
        for i in range(50):
            await ws.send(
                orjson.dumps(
                    {"jsonrpc": "2.0", "id": i, "method": "eth_subscribe", "params": ["newHeads"]}
                ).decode()
            )
        # 50 subscriptions x 50 blocks/s of headers into a consumer that does not read: the
        # socket buffers fill, then the bounded queue, and the node must close the connection.
        # We read nothing until the node says it did.
        async with aiohttp.ClientSession() as s:

            async def closed_as_slow() -> bool:
                async with s.get(n.rpc + "/metrics") as r:
                    return 'dubhe_ws_closed_total{reason="slow_consumer"} 1.0' in await r.text()

            await wait_until(closed_as_slow, 30, what="the node closing the slow consumer")
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), scaled(15))
        assert ws.close_code == 1008
    async with HttpRpc(n.rpc) as rpc:

        async def all_closed() -> bool:
            return bool((await rpc.call("dubhe_status"))["openConnections"] == 0)

        await wait_until(all_closed, what="no open connections")


async def test_ws_rate_limit_then_close(fresh_node: Any) -> None:
    n = fresh_node(
        api={"rate_limit_per_s": 0.5, "rate_limit_burst": 2, "ws_rate_violations_close": 3}
    )
    async with await WsRpc.connect(n.ws) as ws:
        assert await ws.call("eth_chainId")
        assert await ws.call("eth_chainId")
        for _ in range(2):
            with pytest.raises(RpcError) as e:
                await ws.call("eth_chainId")
            assert e.value.code == -32005
        with pytest.raises((RpcError, ConnectionClosed)):
            await ws.call("eth_chainId")
        assert await wait_until(lambda: ws.ws.close_code, what="the close code") == 1008
    audit = (n.workdir / "audit.jsonl").read_text()
    assert '"event":"limit_close"' in audit
