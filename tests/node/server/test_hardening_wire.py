"""Issue #18 on the wire, against a real node subprocess: strict keys and signatures, JSON-RPC
edge cases, HTTP strictness (content types, encodings, hosts, origins)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gzip
import os
import zlib
from typing import Any

import aiohttp
import brotli
import orjson
import pytest
from server_harness import ADMIN_TOKEN  # type: ignore[import-not-found]
from timing import scaled, wait_until  # type: ignore[import-not-found]

from node.core import keys
from node.core.hexutil import data
from node.core.tx import Signer, sign_tx

pytestmark = pytest.mark.timeout(120)

JSON = {"Content-Type": "application/json"}
SIGNER = Signer.from_seed(b"hardening-wire")


async def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST ``body``; ``headers`` default to Content-Type: application/json (given: as given)."""
    async with aiohttp.ClientSession() as s, s.post(
        url, data=body, headers=JSON if headers is None else headers
    ) as r:
        raw = await r.read()
        try:
            return r.status, orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return r.status, raw


def req(method: str, params: Any = None, id_: Any = 1) -> bytes:
    o: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        o["params"] = params
    return orjson.dumps(o)


# -- keys and signatures (section 5) -------------------------------------------------------
async def test_small_order_key_forgery_refused_with_its_cause(node: Any) -> None:
    """The issue's forgery: public key 0x01 || 0^31 (the identity) with signature
    0x01 || 0^31 || 0^32 'verifies' for any message under lax Ed25519."""
    tx = sign_tx(SIGNER, chain_id=0x44554248, nonce=0, to=keys.COUNTER_DEMO, method="get")
    forged = dataclasses.replace(
        tx, public_key=b"\x01" + bytes(31), signature=b"\x01" + bytes(31) + bytes(32)
    )
    status, resp = await post(node.rpc, req("dubhe_sendTransaction", [data(forged.encode())]))
    assert status == 200
    assert resp["error"]["code"] == -32003
    assert resp["error"]["data"] == {"cause": "small_order_key"}
    # the same as a transaction object
    obj = {
        "chainId": hex(tx.chain_id), "nonce": "0x0", "to": data(tx.to), "method": "get",
        "gasLimit": hex(tx.gas_limit), "publicKey": data(forged.public_key),
        "signature": data(forged.signature),
    }
    status, resp = await post(node.rpc, req("dubhe_sendTransaction", [obj]))
    assert resp["error"]["data"] == {"cause": "small_order_key"}, resp


# -- RFC 6455 (section 4) --------------------------------------------------------------------
def _ws_port(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1].split("/")[0])


async def ws_raw(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket opened by hand, so the test can send frames a library would not."""
    r, w = await asyncio.open_connection("127.0.0.1", _ws_port(url))
    key = base64.b64encode(os.urandom(16)).decode()
    w.write((f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), scaled(5))
    assert head.startswith(b"HTTP/1.1 101"), head
    return r, w


def frame(opcode: int, payload: bytes, *, masked: bool = True) -> bytes:
    assert len(payload) < 126
    if not masked:
        return bytes((0x80 | opcode, len(payload))) + payload
    key = os.urandom(4)
    return (bytes((0x80 | opcode, 0x80 | len(payload))) + key
            + bytes(b ^ key[i % 4] for i, b in enumerate(payload)))


async def server_close(r: asyncio.StreamReader) -> int:
    """Read frames until the server's Close frame; returns its code."""
    async with asyncio.timeout(scaled(5)):
        while True:
            b0, b1 = await r.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(await r.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await r.readexactly(8), "big")
            payload = await r.readexactly(n)
            if b0 & 0x0F == 0x8:
                return int.from_bytes(payload[:2], "big")


async def test_an_unmasked_client_frame_fails_the_connection_with_1002(node: Any) -> None:
    """RFC 6455 section 5.1. Before: aiohttp accepted it and answered the request."""
    r, w = await ws_raw(node.ws)
    w.write(frame(0x1, req("eth_chainId"), masked=False))
    assert await server_close(r) == 1002
    assert await asyncio.wait_for(r.read(), scaled(5)) == b""  # and the TCP connection ends


@pytest.mark.parametrize("code", [1005, 1006, 1015])
async def test_a_close_frame_with_a_reserved_code_fails_with_1002(node: Any, code: int) -> None:
    """RFC 6455 section 7.4.1: 1005/1006/1015 never appear on the wire. Before: 1006 was
    answered with 1000."""
    r, w = await ws_raw(node.ws)
    w.write(frame(0x8, code.to_bytes(2, "big") + b"bye"))
    assert await server_close(r) == 1002


async def test_a_normal_close_is_echoed(node: Any) -> None:
    r, w = await ws_raw(node.ws)
    w.write(frame(0x8, (1000).to_bytes(2, "big")))
    assert await server_close(r) == 1000


async def test_protocol_errors_are_counted(node: Any) -> None:
    async def count() -> float:
        async with aiohttp.ClientSession() as s, s.get(node.rpc.rstrip("/") + "/metrics") as resp:
            text = await resp.text()
        line = [x for x in text.splitlines()
                if x.startswith('dubhe_ws_closed_total{reason="protocol_error"}')]
        return float(line[0].split()[-1]) if line else 0.0

    before = await count()
    r, w = await ws_raw(node.ws)
    w.write(frame(0x1, b"{}", masked=False))
    assert await server_close(r) == 1002
    assert await count() == before + 1


# -- JSON-RPC edge cases and depth (section 4) ----------------------------------------------
async def test_an_empty_method_notification_gets_no_reply(node: Any) -> None:
    """Before: answered -32600 (a notification must never be answered)."""
    status, body = await post(node.rpc, b'{"jsonrpc":"2.0","method":""}')
    assert status == 204 and body is None
    status, body = await post(node.rpc, b'{"jsonrpc":"2.0","id":5,"method":""}')
    assert body["id"] == 5 and body["error"]["code"] == -32601
    async with aiohttp.ClientSession() as s, s.ws_connect(node.ws) as ws:
        await ws.send_str('{"jsonrpc":"2.0","method":""}')
        await ws.send_str(req("eth_chainId", [], 8).decode())
        first = orjson.loads((await ws.receive(timeout=scaled(5))).data)
        assert first["id"] == 8  # the notification was not answered


@pytest.mark.parametrize("depth", [980, 990, 2000])
async def test_one_depth_limit_over_http_and_websocket(node: Any, depth: int) -> None:
    """Before: over WebSocket, 980 levels answered -32602 and 990 levels -32603."""
    body = (b'{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":'
            + b"[" * depth + b"]" * depth + b"}")
    _status, resp = await post(node.rpc, body)
    assert resp["error"]["code"] == -32600
    assert "nested deeper than 64 levels" in resp["error"]["message"]
    async with aiohttp.ClientSession() as s, s.ws_connect(node.ws) as ws:
        await ws.send_bytes(body)
        resp = orjson.loads((await ws.receive(timeout=scaled(5))).data)
    assert resp["error"]["code"] == -32600
    assert "nested deeper than 64 levels" in resp["error"]["message"]


async def test_fractional_and_big_ids_are_refused_and_in_range_ones_echoed(node: Any) -> None:
    for text in (b"1.5", b"18446744073709551616", b"9223372036854775808"):
        _, resp = await post(node.rpc, b'{"jsonrpc":"2.0","id":' + text
                             + b',"method":"eth_chainId"}')
        assert resp["id"] is None and resp["error"]["code"] == -32600, text
    _, resp = await post(node.rpc, b'{"jsonrpc":"2.0","id":9223372036854775807,'
                         b'"method":"eth_chainId"}')
    assert resp["id"] == 2**63 - 1 and "result" in resp


# -- Content-Encoding (section 4) ----------------------------------------------------------
CHAIN_ID = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}'


async def post_encoded(url: str, body: bytes, encoding: str) -> tuple[int, Any, str]:
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as s, s.post(
        url, data=body, headers={**JSON, "Content-Encoding": encoding}
    ) as r:
        raw = await r.read()
        try:
            parsed: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = raw
        return r.status, parsed, r.headers.get("Accept-Encoding", "")


@pytest.mark.parametrize(("encoding", "body"), [
    ("gzip", gzip.compress(CHAIN_ID)),
    ("deflate", zlib.compress(CHAIN_ID)),
    ("br", brotli.compress(CHAIN_ID)),
    ("identity", CHAIN_ID),
])
async def test_supported_encodings_are_decoded(node: Any, encoding: str, body: bytes) -> None:
    status, resp, _ = await post_encoded(node.rpc, body, encoding)
    assert status == 200 and resp["result"] == hex(0x44554248)


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate"])
async def test_a_body_that_does_not_decode_is_400_not_500(node: Any, encoding: str) -> None:
    """Before: HTTP 500 'Server got itself in trouble' with a traceback in the node's log."""
    status, resp, _ = await post_encoded(node.rpc, CHAIN_ID, encoding)
    assert status == 400
    assert resp["error"]["code"] == -32700 and encoding in resp["error"]["message"]


@pytest.mark.parametrize("encoding", ["zstd", "compress", "gzip, br", "x-custom"])
async def test_unsupported_encodings_are_415(node: Any, encoding: str) -> None:
    status, resp, accept = await post_encoded(node.rpc, CHAIN_ID, encoding)
    assert status == 415, (status, resp)
    assert "gzip" in accept and "deflate" in accept


async def test_a_64_mib_gzip_bomb_is_refused_at_the_body_limit(node: Any) -> None:
    bomb = gzip.compress(b'{"jsonrpc":"2.0","id":1,"method":"m","params":["'
                         + b"0" * (64 << 20) + b'"]}', 9)
    assert len(bomb) < 100_000
    status, resp, _ = await post_encoded(node.rpc, bomb, "gzip")
    assert status == 413 and resp["error"]["code"] == -32005
    assert "65536" in resp["error"]["message"]  # the node fixture's max_body_bytes


async def test_malformed_http_is_answered_counted_and_logged_once_without_traceback(
        node: Any) -> None:
    """Before: each malformed request wrote an ERROR line with a traceback (580 bytes of log
    per 48-byte request)."""
    log_before = len("".join(node.output))
    for _ in range(20):
        r, w = await asyncio.open_connection("127.0.0.1", _ws_port(node.rpc),
                                             local_addr=("127.0.0.9", 0))
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n")
        got = await asyncio.wait_for(r.read(), scaled(5))
        assert got.split(b" ", 2)[1] == b"400", got
        w.close()
    async with aiohttp.ClientSession() as s, s.get(node.rpc.rstrip("/") + "/metrics") as resp:
        text = await resp.text()
    assert 'dubhe_http_malformed_total{listener="http",status="400"} 2' in text
    await asyncio.sleep(0.2)  # the node's output reaches the reader thread
    log = "".join(node.output)[log_before:]
    assert "Traceback" not in log and "ERROR" not in log
    assert log.count("malformed HTTP request answered 400") == 1, log
    assert "from 127.0.0.9" in log


# -- browser origins (section 6) -------------------------------------------------------------
@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", "application/octet-stream"])
async def test_json_rpc_needs_application_json(node: Any, ctype: str | None) -> None:
    """Before: a browser's cross-origin text/plain POST (a CORS "simple request", sent without
    preflight) executed. Like geth, only application/json is served."""
    headers = {} if ctype is None else {"Content-Type": ctype}
    status, resp = await post(node.rpc, req("dubhe_admin_pauseProduction"), headers)
    assert status == 415 and resp["error"]["code"] == -32600
    assert "application/json" in resp["error"]["message"]


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8",
                                   "Application/JSON", "application/json-rpc",
                                   "application/jsonrequest"])
async def test_json_media_types_are_served(node: Any, ctype: str) -> None:
    status, resp = await post(node.rpc, req("eth_chainId"), {"Content-Type": ctype})
    assert status == 200 and resp["result"] == hex(0x44554248)


@pytest.mark.parametrize(("host", "ok"), [
    ("localhost:8545", True), ("LOCALHOST", True), ("127.0.0.1:1", True), ("[::1]:8545", True),
    ("10.1.2.3", True), ("evil.example:8545", False), ("localhost.evil.example", False),
])
async def test_the_host_header_must_be_an_address_or_a_listed_name(
        node: Any, host: str, ok: bool) -> None:
    """DNS rebinding: a page on evil.example, re-pointed at 127.0.0.1, sends Host: evil.example.
    (geth's --http.vhosts, default localhost.)"""
    status, _ = await post(node.rpc, req("eth_chainId"), {**JSON, "Host": host})
    assert status == (200 if ok else 403)
    async with aiohttp.ClientSession() as s, s.get(node.rpc.rstrip("/") + "/metrics",
                                                   headers={"Host": host}) as r:
        assert r.status == (200 if ok else 403)
    async with aiohttp.ClientSession() as s:
        if ok:
            async with s.ws_connect(node.ws, headers={"Host": host}) as ws:
                await ws.close()
        else:
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await s.ws_connect(node.ws, headers={"Host": host})
            assert e.value.status == 403


async def test_a_cross_origin_post_is_refused_and_gets_no_cors_headers(node: Any) -> None:
    status, _ = await post(node.rpc, req("eth_chainId"), {**JSON, "Origin": "https://evil.example"})
    assert status == 403
    async with aiohttp.ClientSession() as s, s.options(node.rpc, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}) as r:
        assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers


async def test_configured_cors_origins_get_their_headers(fresh_node: Any) -> None:
    n = fresh_node(api={"cors_origins": ["https://app.example"]})
    async with aiohttp.ClientSession() as s:
        async with s.options(n.rpc, headers={"Origin": "https://app.example",
                                             "Access-Control-Request-Method": "POST"}) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
            assert "Content-Type" in r.headers["Access-Control-Allow-Headers"]
        async with s.post(n.rpc, data=req("eth_chainId"),
                          headers={**JSON, "Origin": "https://app.example"}) as r:
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
        async with s.post(n.rpc, data=req("eth_chainId"),
                          headers={**JSON, "Origin": "http://app.example"}) as r:
            assert r.status == 403  # the rule names the scheme


@pytest.mark.parametrize(("origin", "ok"), [
    (None, True), ("http://localhost:3000", True), ("https://localhost", True),
    ("http://127.0.0.1:8080", True), ("http://[::1]:5173", True),
    ("https://evil.example", False), ("null", False), ("http://localhost.evil.example", False),
])
async def test_websocket_origins_default_to_loopback_names(
        node: Any, origin: str | None, ok: bool) -> None:
    """Before: the WebSocket accepted any Origin (geth's --ws.origins default is localhost)."""
    headers = {} if origin is None else {"Origin": origin}
    async with aiohttp.ClientSession() as s:
        if ok:
            async with s.ws_connect(node.ws, headers=headers) as ws:
                await ws.send_str(req("eth_chainId").decode())
                assert "result" in orjson.loads((await ws.receive(timeout=scaled(5))).data)
        else:
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await s.ws_connect(node.ws, headers=headers)
            assert e.value.status == 403


# -- secrets (section 6) ---------------------------------------------------------------------
async def test_a_token_offered_as_a_websocket_subprotocol_is_never_logged(node: Any) -> None:
    """Before: aiohttp's WARNING listed the offered subprotocols verbatim."""
    secret = "Bearer.sk-live-0123456789abcdef"
    start = len("".join(node.output))
    async with aiohttp.ClientSession() as s, s.ws_connect(node.ws, protocols=(secret,)) as ws:
        await ws.send_str(req("eth_chainId").decode())
        await ws.receive(timeout=scaled(5))
    await asyncio.sleep(0.3)
    log = "".join(node.output)[start:]
    assert "sk-live" not in log
    assert "subprotocols the node does not serve" in log


async def test_the_admin_token_never_reaches_the_log(fresh_node: Any) -> None:
    token = "s3cret-admin-token-value"
    n = fresh_node(security={"admin_token": token}, logging={"level": "DEBUG"})
    async with aiohttp.ClientSession() as s:
        # a wrong token, a right one, and the token inside a malformed request and a protocol
        for auth in ("Bearer nope", f"Bearer {token}"):
            async with s.post(n.rpc, data=req("dubhe_admin_setLogLevel", ["DEBUG"]),
                              headers={**JSON, "Authorization": auth}) as r:
                await r.read()
        async with s.ws_connect(n.ws, protocols=(token,)) as ws:
            await ws.close()
    r, w = await asyncio.open_connection("127.0.0.1", _ws_port(n.rpc))
    w.write(f"GET /{token} HTTP/1.1\r\nHost: x\r\nBad {token}\r\n\r\n".encode())
    await asyncio.wait_for(r.read(), scaled(5))
    w.close()
    await asyncio.sleep(0.3)
    assert token not in "".join(n.output)


# -- -32010 and the audit trail (section 6) --------------------------------------------------
async def test_unauthorized_replies_carry_ids_and_each_batch_item_has_its_audit_record(
        node: Any) -> None:
    body = orjson.dumps([
        {"jsonrpc": "2.0", "id": "a", "method": "dubhe_admin_pauseProduction"},
        {"jsonrpc": "2.0", "id": 7, "method": "dubhe_admin_resumeProduction"},
        {"jsonrpc": "2.0", "id": "c", "method": "dubhe_admin_setLogLevel", "params": ["INFO"]},
    ])
    _, replies = await post(node.rpc, body, {**JSON, "Authorization": "Bearer wrong"})
    assert [r["id"] for r in replies] == ["a", 7, "c"]
    rids = [r["error"]["data"]["requestId"] for r in replies]
    assert all(r["error"]["code"] == -32010 for r in replies)
    assert len(set(rids)) == 3  # one per item, not one per HTTP body
    audit = [orjson.loads(x) for x in (node.workdir / "audit.jsonl").read_text().splitlines()]
    by_rid = {a["request_id"]: a for a in audit if a["event"] == "auth_failure"}
    assert [by_rid[r]["rpc_id"] for r in rids] == ["a", 7, "c"]
    assert [by_rid[r]["method"] for r in rids] == [
        "dubhe_admin_pauseProduction", "dubhe_admin_resumeProduction", "dubhe_admin_setLogLevel"]
    # over WebSocket too
    async with aiohttp.ClientSession() as s, s.ws_connect(node.ws) as ws:
        await ws.send_str(req("dubhe_admin_pauseProduction", None, "w").decode())
        reply = orjson.loads((await ws.receive(timeout=scaled(5))).data)
    assert reply["id"] == "w" and reply["error"]["code"] == -32010
    rid = reply["error"]["data"]["requestId"]
    audit = [orjson.loads(x) for x in (node.workdir / "audit.jsonl").read_text().splitlines()]
    assert any(a["request_id"] == rid and a["rpc_id"] == "w" for a in audit)


# -- bounded work (section 3) ----------------------------------------------------------------
async def test_big_blocks_are_bounded_in_bytes_and_a_batch_of_them_in_response_size(
        fresh_node: Any) -> None:
    """The issue's case, scaled down: transactions with 60 KiB args, then a batch of full-block
    reads. Blocks now hold at most max_block_bytes of transactions, and the batch stops at
    max_response_bytes with -32005 naming it (before: 10 blocks, 185 MB in one response)."""
    n = fresh_node(api={"max_response_bytes": 1_000_000}, node={"max_block_bytes": 200_000})
    admin = {**JSON, "Authorization": f"Bearer {ADMIN_TOKEN}"}
    await post(n.rpc, req("dubhe_admin_pauseProduction"), admin)
    signer = Signer.from_seed(b"big-args")
    hashes = []
    for nonce in range(9):
        tx = sign_tx(signer, chain_id=0x44554248, nonce=nonce, to=keys.COUNTER_DEMO,
                     method="get", args=bytes(60 * 1024))
        _, resp = await post(n.rpc, req("dubhe_sendTransaction", [data(tx.raw)]))
        hashes.append(resp["result"])
    await post(n.rpc, req("dubhe_admin_resumeProduction"), admin)

    async def receipt(h: str) -> Any:
        _, r = await post(n.rpc, req("eth_getTransactionReceipt", [h]))
        return r["result"]

    last = await wait_until(lambda: receipt(hashes[-1]), what="the last big transaction")
    numbers = sorted({int((await receipt(h))["blockNumber"], 16) for h in hashes})
    counts = []
    for b in numbers:
        _, r = await post(n.rpc, req("eth_getBlockByNumber", [hex(b), False]))
        counts.append(len(r["result"]["transactions"]))
        assert int(r["result"]["size"], 16) <= 200_000 + 1024  # (+ the header)
    assert sum(counts) == 9 and max(counts) == 3, counts  # 3 x ~61.5 KB fit, 4 do not
    assert last is not None
    # one full block (~370 KB of JSON) is served; three together pass 1 MB
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_getBlockByNumber",
              "params": [hex(b), True]} for i, b in enumerate(numbers)]
    status, out = await post(n.rpc, orjson.dumps(batch))
    assert status == 200 and len(out) == 3
    assert len(out[0]["result"]["transactions"]) == 3
    assert out[2]["error"]["code"] == -32005
    assert "api.max_response_bytes" in out[2]["error"]["message"]
