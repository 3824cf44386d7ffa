"""The mock chains' aiohttp shell over loopback: formats, WebSocket subscriptions, admin, faults,
CLI."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from lab.l1.faults import mangle
from lab.l1.harness import admin, mock_l1, rpc, spawn_mock
from lab.l1.server import MockL1

pytestmark = pytest.mark.timeout(60)

QTY = re.compile(r"^0x(0|[1-9a-f][0-9a-f]*)$")
HASH = re.compile(r"^0x[0-9a-f]{64}$")
ADDR = re.compile(r"^0x[0-9a-f]{40}$")
BLOCK_FIELDS = {
    "number",
    "hash",
    "parentHash",
    "nonce",
    "sha3Uncles",
    "logsBloom",
    "transactionsRoot",
    "stateRoot",
    "receiptsRoot",
    "miner",
    "difficulty",
    "totalDifficulty",
    "extraData",
    "size",
    "gasLimit",
    "gasUsed",
    "timestamp",
    "transactions",
    "uncles",
    "baseFeePerGas",
    "mixHash",
    "withdrawals",
    "withdrawalsRoot",
    "blobGasUsed",
    "excessBlobGas",
    "parentBeaconBlockRoot",
}


@pytest.fixture
async def eth() -> AsyncIterator[MockL1]:
    async with mock_l1("eth", seed=21) as l1:
        yield l1


@pytest.fixture
async def sui() -> AsyncIterator[MockL1]:
    async with mock_l1("sui", seed=21) as l1:
        yield l1


async def test_block_object_has_every_field_in_execution_apis_format(eth: MockL1) -> None:
    ep = eth.endpoints[0]
    d = await admin(ep.admin_url, {"cmd": "deploy", "code": "0x7f454c46"})
    b = (await rpc(ep.http_url, "eth_getBlockByNumber", [hex(d["block"]), True]))["result"]
    assert set(b) == BLOCK_FIELDS
    for k in (
        "number",
        "difficulty",
        "totalDifficulty",
        "size",
        "gasLimit",
        "gasUsed",
        "timestamp",
        "baseFeePerGas",
        "blobGasUsed",
        "excessBlobGas",
    ):
        assert QTY.match(b[k]), k
    for k in (
        "hash",
        "parentHash",
        "sha3Uncles",
        "transactionsRoot",
        "stateRoot",
        "receiptsRoot",
        "mixHash",
        "withdrawalsRoot",
        "parentBeaconBlockRoot",
    ):
        assert HASH.match(b[k]), k
    assert ADDR.match(b["miner"]) and len(b["logsBloom"]) == 2 + 512 and len(b["nonce"]) == 18
    assert b["logsBloom"] != "0x" + "00" * 256  # the block has a log
    (tx,) = b["transactions"]
    assert tx["blockHash"] == b["hash"] and HASH.match(tx["hash"]) and ADDR.match(tx["from"])
    by_hash = (await rpc(ep.http_url, "eth_getBlockByHash", [b["hash"], False]))["result"]
    assert by_hash["transactions"] == [tx["hash"]]


async def test_batch_and_named_params(eth: MockL1) -> None:
    ep = eth.endpoints[0]
    body = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "eth_getBlockByNumber",
            "params": {"block": "latest", "hydrated": False},
        },
        {"jsonrpc": "2.0", "method": "eth_blockNumber"},  # a notification: no answer
    ]
    async with aiohttp.ClientSession() as s, s.post(ep.http_url, json=body) as r:
        out = await r.json()
    assert [o["id"] for o in out] == [1, 2]
    assert out[0]["result"] == "0x539"


async def ws_call(
    ws: aiohttp.ClientWebSocketResponse, id_: int, method: str, params: list[Any]
) -> Any:
    await ws.send_str(
        orjson.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}).decode()
    )
    while True:
        msg = orjson.loads((await ws.receive(timeout=10)).data)
        if msg.get("id") == id_:
            return msg


async def notifications(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[Any]:
    out = []
    while len(out) < n:
        msg = orjson.loads((await ws.receive(timeout=10)).data)
        if "method" in msg:
            out.append(msg)
    return out


async def test_eth_subscriptions_new_heads_logs_and_removed_on_reorg(eth: MockL1) -> None:
    ep = eth.endpoints[0]
    async with aiohttp.ClientSession() as s, s.ws_connect(ep.ws_url) as ws:
        heads = (await ws_call(ws, 1, "eth_subscribe", ["newHeads"]))["result"]
        logs = (await ws_call(ws, 2, "eth_subscribe", ["logs", {"topics": []}]))["result"]
        assert QTY.match(heads) and heads != logs
        assert (await ws_call(ws, 3, "eth_subscribe", ["newPendingTransactions"]))["error"][
            "code"
        ] == -32602
        assert (await ws_call(ws, 4, "eth_blockNumber", []))["result"] == "0x0"
        await admin(ep.admin_url, {"cmd": "deploy", "code": "0x7f454c46"})
        got = await notifications(ws, 2)
        assert {m["params"]["subscription"] for m in got} == {heads, logs}
        assert all(m["method"] == "eth_subscription" for m in got)
        head = next(m for m in got if m["params"]["subscription"] == heads)["params"]["result"]
        assert head["number"] == "0x1" and "transactions" not in head
        await admin(ep.admin_url, {"cmd": "reorg", "depth": 1, "keep_txs": False})
        got = await notifications(ws, 3)  # removed log, then 2 new heads
        removed = [m["params"]["result"] for m in got if m["params"]["subscription"] == logs]
        assert removed and removed[0]["removed"] is True
        assert [
            m["params"]["result"]["number"] for m in got if m["params"]["subscription"] == heads
        ] == ["0x1", "0x2"]
        assert (await ws_call(ws, 5, "eth_unsubscribe", [logs]))["result"] is True
        assert (await ws_call(ws, 6, "eth_unsubscribe", [logs]))["result"] is False
    assert (await rpc(ep.http_url, "eth_subscribe", ["newHeads"]))["error"]["code"] == -32601


async def test_sui_event_subscription_and_checkpoint_paging(sui: MockL1) -> None:
    ep = sui.endpoints[0]
    async with aiohttp.ClientSession() as s, s.ws_connect(ep.ws_url) as ws:
        flt = {"MoveEventModule": {"package": "0xdb", "module": "registry"}}
        sid = (await ws_call(ws, 1, "suix_subscribeEvent", [flt]))["result"]
        assert isinstance(sid, int)
        d = await admin(ep.admin_url, {"cmd": "deploy", "code": "0x7f454c46"})
        (msg,) = await notifications(ws, 1)
        assert msg["method"] == "suix_subscribeEvent" and msg["params"]["subscription"] == sid
        ev = msg["params"]["result"]
        assert ev["parsedJson"]["package_id"] == d["package_id"] and ev["type"].endswith(
            "::registry::CodePublished"
        )
        assert (await ws_call(ws, 2, "suix_unsubscribeEvent", [sid]))["result"] is True
    sui.produce(120)
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        page = (await rpc(ep.http_url, "sui_getCheckpoints", [cursor, 50, False]))["result"]
        seen += [c["sequenceNumber"] for c in page["data"]]
        cursor = page["nextCursor"]
        if not page["hasNextPage"]:
            break
    assert seen == [str(i) for i in range(122)]
    latest = (await rpc(ep.http_url, "sui_getLatestCheckpointSequenceNumber"))["result"]
    assert latest == "121"


async def test_fault_script_http_statuses_rpc_errors_stalls_and_malformed(eth: MockL1) -> None:
    ep = eth.endpoints[0]
    await admin(ep.admin_url, {"cmd": "faults", "count": 1, "http_status": 429, "retry_after": "2"})
    await admin(ep.admin_url, {"cmd": "faults", "count": 1, "http_status": 503})
    await admin(
        ep.admin_url,
        {"cmd": "faults", "count": 1, "rpc_error": {"code": -32005, "message": "slow down"}},
    )
    await admin(ep.admin_url, {"cmd": "faults", "count": 1, "stall_ms": 300})
    await admin(ep.admin_url, {"cmd": "faults", "count": 1, "malformed": "truncated"})
    req = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}
    async with aiohttp.ClientSession() as s:
        async with s.post(ep.http_url, json=req) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "2"
        async with s.post(ep.http_url, json=req) as r:
            assert r.status == 503
        async with s.post(ep.http_url, json=req) as r:
            assert (await r.json())["error"]["code"] == -32005
        t0 = time.monotonic()
        async with s.post(ep.http_url, json=req) as r:
            assert (await r.json())["result"] == "0x539"
        assert time.monotonic() - t0 >= 0.25
        async with s.post(ep.http_url, json=req) as r:
            body = await r.read()
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(body)
        async with s.post(ep.http_url, json=req) as r:
            assert (await r.json())["result"] == "0x539"  # the script is used up
    st = await admin(ep.admin_url, {"cmd": "state"})
    assert st["endpoint"]["applied_faults"] == 5 and st["endpoint"]["pending_faults"] == 0


def test_mangle_kinds() -> None:
    good = b'{"jsonrpc":"2.0","id":1,"result":"0x1"}'
    assert orjson.loads(mangle(good, "wrong_type"))["result"] == {"unexpected": True}
    assert "result" not in orjson.loads(mangle(good, "missing_result"))
    assert orjson.loads(mangle(good, "wrong_id"))["id"] == "not-your-id"
    for kind in ("bad_json", "truncated"):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(mangle(good, kind))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "cmd",
    [
        {"cmd": "nope"},
        {"cmd": "produce", "count": 0},
        {"cmd": "upgrade", "code": "0x00"},
        {"cmd": "upgrade", "address": "0x" + "00" * 20, "code": "0x00"},
        {"cmd": "deploy"},
        {"cmd": "faults", "count": 1},
        {"cmd": "faults", "http_status": 200},
        {"cmd": "faults", "malformed": "weird"},
        {"cmd": "reorg", "depth": 5},
    ],
)
async def test_admin_rejects_bad_commands_with_a_reason(eth: MockL1, cmd: dict[str, Any]) -> None:
    with pytest.raises(RuntimeError, match=r"admin \w+: .+"):
        await admin(eth.endpoints[0].admin_url, cmd)


async def test_pause_resume_timed_production_and_outage() -> None:
    async with mock_l1("eth", seed=1, block_time_ms=20) as l1:
        ep = l1.endpoints[0]
        await asyncio.sleep(0.2)
        assert l1.chain.head.number >= 2
        await admin(ep.admin_url, {"cmd": "pause"})
        h = l1.chain.head.number
        await asyncio.sleep(0.15)
        assert l1.chain.head.number == h
        await admin(ep.admin_url, {"cmd": "produce", "count": 2})
        assert l1.chain.head.number == h + 2
        await admin(ep.admin_url, {"cmd": "resume"})
        await admin(ep.admin_url, {"cmd": "outage", "ms": 300})
        await asyncio.sleep(0.15)
        with pytest.raises(aiohttp.ClientError):
            await rpc(ep.http_url, "eth_blockNumber")
        await asyncio.sleep(0.5)
        assert "result" in await rpc(ep.http_url, "eth_blockNumber")


async def test_cli_process_serves_and_prints_its_seed() -> None:
    async with spawn_mock("sui", seed=77, block_time_ms=0) as p:
        assert p.seed == 77
        assert (await rpc(p.http_url, "sui_getLatestCheckpointSequenceNumber"))["result"] == "0"
        await admin(p.admin_url, {"cmd": "produce", "count": 3})
        assert (await rpc(p.http_url, "sui_getLatestCheckpointSequenceNumber"))["result"] == "3"
    async with spawn_mock("eth", seed=77) as p2, spawn_mock("eth", seed=77) as p3:
        await admin(p2.admin_url, {"cmd": "produce", "count": 3})
        await admin(p3.admin_url, {"cmd": "produce", "count": 3})
        a = await rpc(p2.http_url, "eth_getBlockByNumber", ["latest", False])
        b = await rpc(p3.http_url, "eth_getBlockByNumber", ["latest", False])
        assert a == b  # deterministic from the seed
