"""Issue #18 on the wire, against a real node subprocess: strict keys and signatures, JSON-RPC
edge cases, HTTP strictness (content types, encodings, hosts, origins)."""

from __future__ import annotations

import dataclasses
from typing import Any

import aiohttp
import orjson
import pytest

from node.core import keys
from node.core.hexutil import data
from node.core.tx import Signer, sign_tx

pytestmark = pytest.mark.timeout(120)

JSON = {"Content-Type": "application/json"}
SIGNER = Signer.from_seed(b"hardening-wire")


async def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
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
