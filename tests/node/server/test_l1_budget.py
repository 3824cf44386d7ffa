"""L1 loading under slow and black-holed endpoints: hedged code fetches, the block-wait budget
("still loading", then the code applies from a later block) and failover events in dubhe_status
and /metrics."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from server_harness import RunningNode, make_config  # type: ignore[import-not-found]
from timing import wait_until  # type: ignore[import-not-found]

from lab.clients.rpc import HttpRpc
from lab.l1.harness import admin, mock_l1
from node.core.codec import pack_u64
from node.core.hexutil import data
from node.core.tx import Signer, sign_tx

pytestmark = pytest.mark.timeout(120)
BUILD = Path(__file__).resolve().parents[3] / "contracts" / "build"
CHAIN = 0x44554248
USER = Signer.from_seed(b"l1-budget-user")


async def send(rpc: HttpRpc, nonce: int, to: bytes) -> dict[str, Any]:
    tx = sign_tx(USER, chain_id=CHAIN, nonce=nonce, to=to, method="hash_loop", args=pack_u64(5))
    h = await rpc.call("dubhe_sendTransaction", data(tx.raw))
    rc = await wait_until(lambda: rpc.call("dubhe_getReceipt", h), what="the receipt")
    return dict(rc)


async def test_black_holed_primary_loads_through_the_fallback_within_the_block(
    tmp_path: Path,
) -> None:
    compute = (BUILD / "compute.elf").read_bytes()
    async with mock_l1("eth", seed=5, block_time_ms=100, endpoints=2) as l1:
        primary, fallback = l1.endpoints
        addr = "0x" + "5c" * 20
        await admin(primary.admin_url, {"cmd": "deploy", "code": data(compute), "address": addr})
        cfg = make_config(
            tmp_path,
            node={"block_time_ms": 200},
            adapters={"ethereum": {
                "rpc_url": primary.http_url, "ws_url": primary.ws_url, "chain_id": 1337,
                "endpoints": [{"rpc_url": fallback.http_url, "ws_url": fallback.ws_url}],
            }},
        )
        node = await asyncio.to_thread(RunningNode(tmp_path, cfg).start)
        try:
            async with HttpRpc(node.rpc) as rpc:
                await wait_until(lambda: rpc.call("dubhe_getL1Head", "ethereum"),
                                 what="the L1 followed")
                # every request to the primary now hangs (a black hole, well past any budget)
                await admin(primary.admin_url, {"cmd": "faults", "count": 100_000,
                                                "stall_ms": 3_000, "transport": "any"})
                rc = await send(rpc, 0, bytes.fromhex(addr[2:]))
                assert rc["status"] == "success", rc
                st = (await rpc.call("dubhe_status"))["l1"]
                eth = st["chains"]["ethereum"]
                assert eth["endpoints"][0]["abandoned"] >= 1, eth["endpoints"][0]
                assert eth["endpoints"][0]["state"] != "up"
                assert eth["stats"]["hedges"] >= 1
                assert any(t["kind"] == "failover" and t["transport"] == "http"
                           for t in st["transitions"]), st["transitions"]
                assert st["budgets"]["ethereum"] == {"fetchTimeoutMs": 2000, "blockWaitMs": 100}

                async def ws_moved() -> bool:
                    s = (await rpc.call("dubhe_status"))["l1"]["chains"]["ethereum"]
                    return bool(s["ws_connected"] == fallback.ws_url)
                await wait_until(ws_moved, what="the subscription moving to the fallback")
                async with aiohttp.ClientSession() as http, http.get(node.rpc + "/metrics") as r:
                    text = await r.text()
                assert 'dubhe_l1_endpoint_transitions_total{chain="ethereum",kind="failover"' \
                    in text.replace('transport="http",', "").replace('transport="ws",', "")
                # the primary answers again: HTTP and the subscription go back to it, recorded
                # as recoveries
                await admin(primary.admin_url, {"cmd": "clear_faults"})

                async def recovered() -> bool:
                    s = (await rpc.call("dubhe_status"))["l1"]
                    kinds = {(t["transport"], t["kind"]) for t in s["transitions"]}
                    return bool(s["chains"]["ethereum"]["ws_connected"] == primary.ws_url
                                and {("http", "recovery"), ("ws", "recovery")} <= kinds)
                await wait_until(recovered, 30, what="HTTP and WebSocket back on the primary")
                st = (await rpc.call("dubhe_status"))["l1"]
                back = [t for t in st["transitions"] if t["kind"] == "recovery"]
                assert all(t["to"] in (primary.http_url, primary.ws_url) for t in back), back
                assert st["chains"]["ethereum"]["serving"] == {
                    "http": primary.http_url, "ws": primary.ws_url}
                async with aiohttp.ClientSession() as http, http.get(node.rpc + "/metrics") as r:
                    text = await r.text()
                for transport in ("http", "ws"):
                    m = re.search(r'dubhe_l1_endpoint_transitions_total\{chain="ethereum",'
                                  rf'kind="recovery",transport="{transport}"\}} (\S+)', text)
                    assert m is not None and float(m.group(1)) >= 1, transport
        finally:
            await admin(primary.admin_url, {"cmd": "clear_faults"})
            await asyncio.to_thread(node.stop)


async def test_fetch_slower_than_the_block_budget_applies_from_a_later_block(
    tmp_path: Path,
) -> None:
    compute = (BUILD / "compute.elf").read_bytes()
    async with mock_l1("eth", seed=6, block_time_ms=100) as l1:
        ep = l1.endpoints[0]
        addr = "0x" + "5d" * 20
        await admin(ep.admin_url, {"cmd": "deploy", "code": data(compute), "address": addr})
        cfg = make_config(
            tmp_path,
            node={"block_time_ms": 200},
            adapters={"ethereum": {"rpc_url": ep.http_url, "chain_id": 1337,
                                   "block_wait_ms": 50}},
        )
        node = await asyncio.to_thread(RunningNode(tmp_path, cfg).start)
        try:
            async with HttpRpc(node.rpc) as rpc:
                await wait_until(lambda: rpc.call("dubhe_getL1Head", "ethereum"),
                                 what="the L1 followed")
                await admin(ep.admin_url, {"cmd": "faults", "count": 1, "stall_ms": 600,
                                           "methods": ["eth_getCode"]})
                rc = await send(rpc, 0, bytes.fromhex(addr[2:]))
                assert rc["status"] == "revert", rc
                assert "still loading from ethereum" in rc["reason"], rc
                assert "50 ms block budget" in rc["reason"], rc
                # the fetch went on; once it arrives the code applies: the next call succeeds
                nonce = 1
                for _ in range(20):
                    rc = await send(rpc, nonce, bytes.fromhex(addr[2:]))
                    nonce += 1
                    if rc["status"] == "success":
                        break
                assert rc["status"] == "success", rc
                assert nonce <= 6  # within ~0.6 s of stall plus a block or two
        finally:
            await asyncio.to_thread(node.stop)
