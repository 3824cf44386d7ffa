"""Process lifecycle: graceful SIGTERM, and the kill -9 durability guarantee of the mempool."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from typing import Any

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
