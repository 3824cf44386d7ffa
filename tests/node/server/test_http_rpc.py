"""JSON-RPC over HTTP against a real node subprocess: formats, errors, limits, auth, audit."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
import pytest
from server_harness import ADMIN_TOKEN  # type: ignore[import-not-found]
from server_helpers import funded_transfer  # type: ignore[import-not-found]
from timing import wait_until  # type: ignore[import-not-found]

from lab.clients.rpc import HttpRpc, RpcError
from node.core import keys
from node.core.codec import pack_u64, unpack_u64
from node.core.hexutil import data, parse_qty
from node.core.tx import Signer, sign_tx

pytestmark = pytest.mark.timeout(120)

JSON = {"Content-Type": "application/json"}


async def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=hdrs) as r:
        raw = await r.read()
        return r.status, orjson.loads(raw) if raw else None


def req(method: str, params: Any = None, id_: int = 1) -> bytes:
    o: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        o["params"] = params
    return orjson.dumps(o)


SIGNER = Signer.from_seed(b"http-test")


def signed(nonce: int, **kw: Any) -> str:
    base: dict[str, Any] = dict(
        chain_id=0x44554248, nonce=nonce, to=keys.COUNTER_DEMO, method="get", args=b"k"
    )
    base.update(kw)
    return data(sign_tx(SIGNER, **base).raw)


def _bad_sig() -> str:
    raw = bytearray(bytes.fromhex(signed(0)[2:]))
    raw[-5] ^= 1
    return data(bytes(raw))


# (name, body, expected code) — every malformed input gets its own wire code.
BAD_INPUTS = [
    ("invalid JSON", b'{"jsonrpc":', -32700),
    ("empty batch", b"[]", -32600),
    ("not an object", b"42", -32600),
    ("wrong jsonrpc version", b'{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}', -32600),
    ("unknown method", req("eth_doesNotExist"), -32601),
    ("wrong param type", req("eth_getBalance", [123, "latest"]), -32602),
    ("bad address length", req("eth_getBalance", ["0x1234", "latest"]), -32602),
    ("bad block tag", req("eth_getBlockByNumber", ["newest", False]), -32602),
    ("full flag not bool", req("eth_getBlockByNumber", ["latest", "yes"]), -32602),
    ("too many params", req("eth_chainId", [], 1)[:-1] + b',"params":[1,2,3]}', -32602),
    ("missing param", req("eth_getTransactionReceipt", []), -32602),
    (
        "huge batch",
        orjson.dumps([{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(11)]),
        -32005,
    ),
    ("bad signature", req("dubhe_sendTransaction", [_bad_sig()]), -32003),
    ("malformed tx hex", req("dubhe_sendTransaction", ["0xzz"]), -32602),
    ("truncated tx", req("dubhe_sendTransaction", [signed(0)[:-10]]), -32003),
    ("wrong chain id", req("dubhe_sendTransaction", [signed(0, chain_id=1)]), -32003),
    ("nonce gap", req("dubhe_sendTransaction", [signed(5)]), -32003),
    ("subscribe over http", req("eth_subscribe", ["newHeads"]), -32601),
    ("admin without token", req("dubhe_admin_pauseProduction"), -32010),
]


@pytest.mark.parametrize(("name", "body", "code"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
async def test_bad_input_table(node: Any, name: str, body: bytes, code: int) -> None:
    status, resp = await post(node.rpc, body)
    assert status == 200
    assert resp["error"]["code"] == code, resp
    assert "Traceback" not in resp["error"]["message"]


async def test_oversize_body(node: Any) -> None:
    status, resp = await post(
        node.rpc, b'{"jsonrpc":"2.0","id":1,"method":"x","params":["' + b"a" * 70_000 + b'"]}'
    )
    assert status == 413 and resp["error"]["code"] == -32005
    assert "65536" in resp["error"]["message"]


async def test_batch_and_notifications(node: Any) -> None:
    body = orjson.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "method": "eth_chainId"},  # notification: no response
        {"jsonrpc": "2.0", "id": "x", "method": "nope"},
    ])
    status, resp = await post(node.rpc, body)
    assert status == 200 and len(resp) == 2
    assert resp[0] == {"jsonrpc": "2.0", "id": 1, "result": hex(0x44554248)}
    assert resp[1]["id"] == "x" and resp[1]["error"]["code"] == -32601
    status, _ = await post(node.rpc, b'{"jsonrpc":"2.0","method":"eth_chainId"}')
    assert status == 204


async def test_ethereum_formats(node: Any) -> None:
    async with HttpRpc(node.rpc) as rpc:
        assert (await rpc.call("web3_clientVersion")).startswith("dubhe-node/")
        assert await rpc.call("net_version") == str(0x44554248)
        assert await rpc.call("eth_syncing") is False
        assert await rpc.call("eth_gasPrice") == "0x0"
        assert await rpc.call("eth_maxPriorityFeePerGas") == "0x0"

        async def height() -> int:
            return parse_qty(await rpc.call("eth_blockNumber"))

        # the historical-state check below needs a block after genesis
        n = await wait_until(height, what="a block after genesis")
        latest = await rpc.call("eth_getBlockByNumber", "latest", False)
        assert parse_qty(latest["number"]) >= n
        for k in ("hash", "parentHash", "stateRoot", "transactionsRoot", "receiptsRoot", "mixHash"):
            assert len(latest[k]) == 66, k
        assert len(latest["logsBloom"]) == 2 + 512 and len(latest["miner"]) == 42
        assert latest["transactions"] == [] and latest["uncles"] == []
        by_hash = await rpc.call("eth_getBlockByHash", latest["hash"], False)
        assert by_hash == latest
        genesis = await rpc.call("eth_getBlockByNumber", "earliest", True)
        assert genesis["number"] == "0x0" and genesis["parentHash"] == "0x" + "00" * 32
        assert await rpc.call("eth_getBlockByNumber", "0xffffffff", False) is None
        assert await rpc.call("eth_getTransactionReceipt", "0x" + "11" * 32) is None
        assert await rpc.call("eth_getBalance", "0x" + "22" * 20, "latest") == "0x0"
        with pytest.raises(RpcError) as e:
            await rpc.call("eth_getBalance", "0x" + "22" * 20, "0x0")
        assert e.value.code == -32000 and "not available" in e.value.message


async def test_transaction_lifecycle(node: Any) -> None:
    async with HttpRpc(node.rpc) as rpc:
        tx_hash, sender, to = await funded_transfer(rpc, seed=b"lifecycle", amount=40)
        receipt = await wait_until(lambda: rpc.call("eth_getTransactionReceipt", tx_hash),
                                   what="the transfer's receipt")
        assert receipt["status"] == "0x1" and receipt["transactionHash"] == tx_hash
        assert receipt["from"] == data(sender) and receipt["to"] == data(keys.NATIVE_TOKEN)
        log = receipt["logs"][0]
        assert (
            log["address"] == data(keys.NATIVE_TOKEN)
            and log["blockNumber"] == receipt["blockNumber"]
        )
        assert parse_qty(receipt["gasUsed"]) > 0
        assert await rpc.call("eth_getBalance", data(to), "latest") == hex(40)
        assert await rpc.call("eth_getTransactionCount", data(sender), "latest") == "0x1"
        tx = await rpc.call("dubhe_getTransaction", tx_hash)
        assert tx["status"] == "included" and tx["blockNumber"] == receipt["blockNumber"]
        drc = await rpc.call("dubhe_getReceipt", tx_hash)
        assert drc["status"] == "success" and drc["blockNumber"] == receipt["blockNumber"]
        assert "blockStats" not in drc  # lean: the block's stats are on the block
        stats = (await rpc.call("dubhe_getReceipt", tx_hash, {"blockStats": True}))["blockStats"]
        assert (
            stats["strategy"] == "Serial" and stats["txs"] >= 1 and 0 <= stats["conflictRate"] <= 1
        )
        block = await rpc.call("eth_getBlockByNumber", receipt["blockNumber"], True)
        assert tx_hash in [t["hash"] for t in block["transactions"]]
        assert block["dubheStats"] == stats
        # the whole block's receipts in one call: the same receipt, in both formats
        by_number = await rpc.call("eth_getBlockReceipts", receipt["blockNumber"])
        assert by_number == await rpc.call("eth_getBlockReceipts", block["hash"])
        assert receipt in by_number
        dubhe = await rpc.call("dubhe_getBlockReceipts", {"blockHash": block["hash"]})
        assert drc in dubhe["receipts"] and dubhe["blockStats"] == stats
        assert dubhe["executionDigest"] == block["executionDigest"]
        val = await rpc.call("dubhe_getState", data(keys.NATIVE_TOKEN), data(b"b" + to))
        assert unpack_u64(bytes.fromhex(val[2:])) == 40
        # a replay of nonce 0 after inclusion (a different tx with the same nonce) is refused
        sender_signer = Signer.from_seed(b"lifecycle-a")
        replay = sign_tx(
            sender_signer,
            chain_id=0x44554248,
            nonce=0,
            to=keys.NATIVE_TOKEN,
            method="transfer",
            args=to + pack_u64(1),
            write_set=(keys.balance_key(sender), keys.balance_key(to)),
        )
        with pytest.raises(RpcError) as e:
            await rpc.call("dubhe_sendTransaction", data(replay.raw))
        assert e.value.code == -32003 and e.value.data == {"cause": "nonce_too_low"}


async def test_status_and_health(node: Any) -> None:
    async with HttpRpc(node.rpc) as rpc:
        st = await rpc.call("dubhe_status")
    for k in ("height", "strategy", "workers", "mempoolSize", "openConnections", "uptimeSeconds"):
        assert k in st
    async with aiohttp.ClientSession() as s:
        async with s.get(node.rpc + "/health") as r:
            h = await r.json()
            assert r.status == 200 and h["status"] == "ok" and h["height"] >= 0
        async with s.get(node.rpc + "/metrics") as r:
            text = await r.text()
            assert r.status == 200
            assert "dubhe_rpc_requests_total" in text and "dubhe_head_block" in text


async def test_admin_needs_token_and_is_audited(node: Any) -> None:
    _, resp = await post(
        node.rpc, req("dubhe_admin_setLogLevel", ["INFO"]), {"Authorization": "Bearer wrong"}
    )
    assert resp["error"]["code"] == -32010
    async with HttpRpc(node.rpc, token=ADMIN_TOKEN) as rpc:
        assert await rpc.call("dubhe_admin_setLogLevel", "INFO") == "INFO"
        with pytest.raises(RpcError) as e:
            await rpc.call("dubhe_admin_setLogLevel", "LOUD")
        assert e.value.code == -32602 and "level" in e.value.message
    lines = [orjson.loads(x) for x in (node.workdir / "audit.jsonl").read_text().splitlines()]
    events = [(x["event"], x.get("method")) for x in lines]
    assert ("auth_failure", "dubhe_admin_setLogLevel") in events
    assert ("admin_call", "dubhe_admin_setLogLevel") in events
    assert all({"ts", "peer", "request_id"} <= set(x) for x in lines)


async def test_pause_resume_production(fresh_node: Any) -> None:
    n = fresh_node(node={"block_time_ms": 50})
    async with HttpRpc(n.rpc, token=ADMIN_TOKEN) as rpc:

        async def height() -> int:
            return parse_qty(await rpc.call("eth_blockNumber"))

        # The reply comes once no block is being built: from then on the height must not move,
        # and the reply names the last committed block.
        paused = await rpc.call("dubhe_admin_pauseProduction")
        assert paused["paused"] is True and paused["queuedDeploys"] == []
        h1 = await height()
        assert paused["lastBlock"] == hex(h1)
        head = await rpc.call("eth_getBlockByNumber", "latest", False)
        assert paused["lastBlockHash"] == head["hash"]
        assert (await rpc.call("dubhe_status"))["paused"] is True
        await asyncio.sleep(0.3)  # the window of the check: six block periods, none may appear
        assert await height() == h1
        assert await rpc.call("dubhe_admin_resumeProduction") is True

        async def moved() -> bool:
            return await height() > h1

        await wait_until(moved, what=f"a block above {h1} after resume")


async def test_http_rate_limit(fresh_node: Any) -> None:
    n = fresh_node(api={"rate_limit_per_s": 1.0, "rate_limit_burst": 5})
    async with aiohttp.ClientSession() as s:  # one keep-alive connection = one bucket
        codes = []
        for i in range(8):
            async with s.post(n.rpc, data=req("eth_chainId", [], i), headers=JSON) as r:
                codes.append((await r.json()).get("error", {}).get("code"))
    assert codes[:5] == [None] * 5
    assert codes[5:] == [-32005] * 3



async def test_default_limits_let_lists_through_one_connection_but_stop_a_flood(
    fresh_node: Any,
) -> None:
    """The defaults: 3,000 transactions in two lists on one connection are all admitted (every
    transaction takes a token of the 20,000/s transaction bucket, each list one request token),
    while a flood of requests on one connection gets no more than the request bucket allows
    (2,000 at once, then 1,000/s)."""
    n = fresh_node()
    senders = [Signer.from_seed(b"limits-%d" % i) for i in range(300)]
    lists = [[data(sign_tx(s, chain_id=0x44554248, nonce=k, to=keys.COUNTER_DEMO,
                           method="increment", args=b"c" + pack_u64(1),
                           write_set=(keys.storage_key(keys.COUNTER_DEMO, b"c"),)).raw)
              for k in range(5 * j, 5 * j + 5) for s in senders] for j in range(2)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s:
        for i, txs in enumerate(lists):
            async with s.post(n.rpc, data=req("dubhe_sendTransactions", [txs], i),
                              headers=JSON) as r:
                out = (await r.json())["result"]
            assert len(out) == 1500 and all(isinstance(h, str) for h in out)
        codes: list[int | None] = []
        t0 = time.monotonic()
        for _ in range(40):  # 4,000 requests in JSON-RPC batches of 100, back to back
            body = orjson.dumps([{"jsonrpc": "2.0", "id": k, "method": "eth_chainId"}
                                 for k in range(100)])
            async with s.post(n.rpc, data=body, headers=JSON) as r:
                codes += [x.get("error", {}).get("code") for x in await r.json()]
        elapsed = time.monotonic() - t0
    # The bucket: 2,000 at once, then 1,000/s (the two lists above took one token each).
    served = codes.count(None)
    assert codes[:1990] == [None] * 1990
    assert served <= 2000 + 1000 * elapsed + 1, (served, elapsed)
    assert codes.count(-32005) == len(codes) - served


async def test_adaptive_scheduler_reports_its_path(fresh_node: Any) -> None:
    """A gated parallel strategy: a 24-transaction block runs (the first parallel block is the
    gate's warm-up), its stats say which path ran, and status and /metrics show the gate."""
    n = fresh_node(scheduler={"strategy": "SuiObjectDAG", "worker_threads": 2, "adaptive": True})
    async with HttpRpc(n.rpc, token=ADMIN_TOKEN) as rpc:
        chain_id = parse_qty(await rpc.call("eth_chainId"))
        await rpc.call("dubhe_admin_pauseProduction")
        hashes = []
        for i in range(24):
            slot = b"s%d" % i
            tx = sign_tx(
                Signer.from_seed(b"gate-%d" % i),
                chain_id=chain_id,
                nonce=0,
                to=keys.COUNTER_DEMO,
                method="increment",
                args=slot + pack_u64(1),
                write_set=(keys.storage_key(keys.COUNTER_DEMO, slot),),
            )
            hashes.append(await rpc.call("dubhe_sendTransaction", data(tx.raw)))
        await rpc.call("dubhe_admin_resumeProduction")
        rc = await wait_until(
            lambda: rpc.call("dubhe_getReceipt", hashes[-1]), what="the last receipt"
        )
        assert rc["status"] == "success"
        stats = (await rpc.call("eth_getBlockByNumber", rc["blockNumber"], False))["dubheStats"]
        assert stats["strategy"] == "SuiObjectDAG" and stats["txs"] == 24
        assert (
            stats["mode"] == "parallel" and stats["workers"] == 2
        )  # the warm-up block runs in parallel
        assert stats["path"] == "strategy" and sum(stats["workerTxs"]) == 24
        sched = (await rpc.call("dubhe_status"))["scheduler"]
        gate = sched["adaptive"]
        assert gate["parallelBlocks"] >= 1 and gate["force"] is None
        assert sched["gate"] is True and sched["contentionFallback"] is True
        assert sched["totals"]["blocksByPath"]["strategy"] >= 1
    async with aiohttp.ClientSession() as s, s.get(n.rpc + "/metrics") as r:
        text = await r.text()
    assert (
        'dubhe_scheduler_blocks_total{mode="parallel"}' in text
        and "dubhe_scheduler_parallel_gain" in text
        and 'dubhe_scheduler_path_blocks_total{path="strategy"}' in text
        and 'dubhe_scheduler_worker_txs_total{worker="coordinator"}' in text
    )
