"""Process lifecycle: graceful SIGTERM, and the kill -9 durability guarantee of the mempool."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from typing import Any

import orjson
import pytest
import websockets
from server_harness import RunningNode  # type: ignore[import-not-found]
from timing import scaled, wait_until  # type: ignore[import-not-found]
from websockets.exceptions import ConnectionClosed

from lab.clients.rpc import HttpRpc
from node.core import keys
from node.core.codec import pack_u64, unpack_u64
from node.core.hexutil import data, parse_qty
from node.core.tx import Signer, sign_tx

pytestmark = pytest.mark.timeout(120)


async def test_sigterm_closes_websockets_1001_and_exits_0(fresh_node: Any) -> None:
    n = fresh_node()
    ws = await websockets.connect(n.ws)
    await ws.send('{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}')
    await ws.recv()
    t0 = time.monotonic()
    assert n.proc is not None
    n.proc.send_signal(signal.SIGTERM)
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), scaled(5))
    assert ws.close_code == 1001
    rc = await asyncio.to_thread(n.wait, scaled(10))
    assert rc == 0
    assert time.monotonic() - t0 < scaled(5.0)
    assert any("stopped" in line for line in n.output)


async def test_sigint_exits_0(fresh_node: Any) -> None:
    n = fresh_node()
    assert await asyncio.to_thread(n.stop, signal.SIGINT) == 0


async def _all_block_txs(rpc: HttpRpc) -> Counter[str]:
    head = parse_qty(await rpc.call("eth_blockNumber"))
    seen: Counter[str] = Counter()
    for n in range(1, head + 1):
        b = await rpc.call("eth_getBlockByNumber", hex(n), False)
        seen.update(b["transactions"])
    return seen


async def test_kill9_after_ack_loses_nothing_and_executes_once(fresh_node: Any) -> None:
    n: RunningNode = fresh_node(node={"block_time_ms": 400})
    chain = 0x44554248
    senders = [Signer.from_seed(f"crash-{i}".encode()) for i in range(5)]
    slot = b"crash"
    skey = keys.storage_key(keys.COUNTER_DEMO, slot)
    hashes: list[str] = []
    async with HttpRpc(n.rpc) as rpc:
        for nonce in range(8):
            for s in senders:
                tx = sign_tx(
                    s,
                    chain_id=chain,
                    nonce=nonce,
                    to=keys.COUNTER_DEMO,
                    method="increment",
                    args=slot + pack_u64(1),
                    write_set=(skey,),
                )
                hashes.append(await rpc.call("dubhe_sendTransaction", data(tx.raw)))
    n.kill()  # SIGKILL right after the last acknowledgement
    n2 = RunningNode(n.workdir, n.config).start()
    try:
        async with HttpRpc(n2.rpc) as rpc:

            async def pool_drained() -> bool:
                return bool((await rpc.call("dubhe_status"))["mempoolSize"] == 0)

            await wait_until(pool_drained, 20, what="every restored transaction included")
            seen = await _all_block_txs(rpc)
            assert all(seen[h] == 1 for h in hashes), (
                "a transaction is missing or was included twice"
            )
            assert sum(seen.values()) == len(hashes)
            for h in hashes:
                rc = await rpc.call("dubhe_getReceipt", h)
                assert rc is not None and rc["status"] == "success"
            # each increment ran exactly once
            val = await rpc.call("dubhe_getState", data(keys.COUNTER_DEMO), data(slot))
            assert unpack_u64(bytes.fromhex(val[2:])) == len(hashes)
            for s in senders:
                assert await rpc.call("eth_getTransactionCount", data(s.address), "latest") == hex(
                    8
                )
    finally:
        n2.stop()


async def _ws_call(ws: Any, id_: int, method: str, params: list[Any]) -> Any:
    await ws.send(orjson.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}))
    while True:
        msg = orjson.loads(await asyncio.wait_for(ws.recv(), scaled(10)))
        if msg.get("id") == id_:
            assert "error" not in msg, msg
            return msg["result"]


async def test_kill9_after_bulk_acks_loses_nothing_and_executes_once(fresh_node: Any) -> None:
    """dubhe_sendTransactions over HTTP and over a WebSocket at once, kill -9 right after the
    last reply: after a restart every returned hash is in a block exactly once."""
    n: RunningNode = fresh_node(node={"block_time_ms": 150})
    chain = 0x44554248
    slot = b"bulk"
    skey = keys.storage_key(keys.COUNTER_DEMO, slot)
    groups = {t: [Signer.from_seed(f"bulk-{t}-{i}".encode()) for i in range(20)]
              for t in ("http", "ws")}
    rounds = 12

    def round_txs(senders: list[Signer], nonce: int) -> list[str]:
        return [data(sign_tx(s, chain_id=chain, nonce=nonce, to=keys.COUNTER_DEMO,
                             method="increment", args=slot + pack_u64(1), write_set=(skey,)).raw)
                for s in senders]

    hashes: list[str] = []

    async def over_http() -> None:
        async with HttpRpc(n.rpc) as rpc:
            for nonce in range(rounds):
                out = await rpc.call("dubhe_sendTransactions", round_txs(groups["http"], nonce))
                assert all(isinstance(h, str) for h in out), out
                hashes.extend(out)

    async def over_ws() -> None:
        async with websockets.connect(n.ws) as ws:
            for nonce in range(rounds):
                out = await _ws_call(ws, nonce, "dubhe_sendTransactions",
                                     [round_txs(groups["ws"], nonce)])
                assert all(isinstance(h, str) for h in out), out
                hashes.extend(out)

    await asyncio.gather(over_http(), over_ws())
    n.kill()  # SIGKILL right after the last acknowledgement
    total = 2 * 20 * rounds
    assert len(set(hashes)) == total
    n2 = RunningNode(n.workdir, n.config).start()
    try:
        async with HttpRpc(n2.rpc) as rpc:

            async def pool_drained() -> bool:
                return bool((await rpc.call("dubhe_status"))["mempoolSize"] == 0)

            await wait_until(pool_drained, 30, what="every restored transaction included")
            seen = await _all_block_txs(rpc)
            assert all(seen[h] == 1 for h in hashes), "a transaction is missing or included twice"
            assert sum(seen.values()) == total
            val = await rpc.call("dubhe_getState", data(keys.COUNTER_DEMO), data(slot))
            assert unpack_u64(bytes.fromhex(val[2:])) == total  # each increment ran once
    finally:
        n2.stop()
