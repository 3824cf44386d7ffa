"""The sans-I/O JSON-RPC codec."""

from __future__ import annotations

import orjson
import pytest

from node.core.errors import InvalidParams
from node.rpc import jsonrpc
from node.rpc.jsonrpc import Params, Request


def err(body: bytes) -> tuple[object, int]:
    o = orjson.loads(body)
    return o["id"], o["error"]["code"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        (b"[]", -32600),
        (b'"a string"', -32600),
        (b'{"jsonrpc":"1.0","id":1,"method":"x"}', -32600),
        (b'{"jsonrpc":"2.0","id":1,"method":5}', -32600),
        (b'{"jsonrpc":"2.0","id":1,"method":"x","params":"p"}', -32600),
        (b'{"jsonrpc":"2.0","id":{},"method":"x"}', -32600),
        (b'{"jsonrpc":"2.0","id":true,"method":"x"}', -32600),
    ],
)
def test_invalid_bodies(body: bytes, code: int) -> None:
    p = jsonrpc.parse(body)
    out = p.fatal if p.fatal is not None else p.items[0]
    assert isinstance(out, bytes)
    assert err(out)[1] == code


def test_batch_mixes_requests_and_errors() -> None:
    p = jsonrpc.parse(
        b'[1, {"jsonrpc":"2.0","id":"a","method":"m","params":[1]}, {"jsonrpc":"2.0","method":"n"}]'
    )
    assert p.batch and p.fatal is None
    assert isinstance(p.items[0], bytes)
    assert p.items[1] == Request("m", [1], "a", False)
    assert isinstance(p.items[2], Request) and p.items[2].notification


def test_batch_limit() -> None:
    body = orjson.dumps([{"jsonrpc": "2.0", "id": i, "method": "m"} for i in range(5)])
    p = jsonrpc.parse(body, max_batch=4)
    assert p.fatal is not None and err(p.fatal)[1] == -32005


def test_params_name_the_parameter() -> None:
    p = Params(["0x1"])
    assert p.get(0, "block", lambda v: int(v, 16)) == 1
    with pytest.raises(InvalidParams, match=r"missing parameter 1 \(full\)"):
        p.get(1, "full", bool)
    with pytest.raises(InvalidParams, match=r"invalid parameter 0 \(block\): boom"):
        p.get(0, "block", lambda v: (_ for _ in ()).throw(ValueError("boom")))
    named = Params({"address": "0xab"})
    assert named.get(0, "address", str) == "0xab"
    assert named.opt(1, "block", str, "latest") == "latest"


def test_result_raw_matches_result() -> None:
    assert orjson.loads(jsonrpc.result_raw(3, b'"0x1"')) == orjson.loads(jsonrpc.result(3, "0x1"))
