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
        (b'{"jsonrpc":"2.0","method":5}', -32600),  # not a Request: answered, id null
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


# -- replies carry the request's id, the batch flag, and a message naming what was wrong ------

@pytest.mark.parametrize(("entry", "id_", "message"), [
    (1, None, "invalid request: expected a JSON object"),
    ({"jsonrpc": "2.0", "id": [1], "method": "m"}, None,
     "invalid request: id must be a string, null or an integer in the int64 range "
     "(no fraction or exponent)"),
    ({"jsonrpc": "1.0", "id": 5, "method": "m"}, 5, 'invalid request: "jsonrpc" must be "2.0"'),
    ({"id": "a", "method": "m"}, "a", 'invalid request: "jsonrpc" must be "2.0"'),
    ({"jsonrpc": "2.0", "id": 0, "method": ["m"]}, 0,
     'invalid request: "method" must be a string'),
    ({"jsonrpc": "2.0", "id": 9, "method": "m", "params": 3}, 9,
     'invalid request: "params" must be an array or object'),
    ({"jsonrpc": "2.0", "id": None, "method": "m", "params": "p"}, None,
     'invalid request: "params" must be an array or object'),
])
def test_an_invalid_entry_is_answered_with_its_id_and_what_was_wrong(
        entry: object, id_: object, message: str) -> None:
    for body, batch in ((orjson.dumps(entry), False), (orjson.dumps([entry]), True)):
        p = jsonrpc.parse(body)
        assert p.fatal is None and p.batch is batch and len(p.items) == 1
        reply = p.items[0]
        assert isinstance(reply, bytes)
        assert orjson.loads(reply) == {"jsonrpc": "2.0", "id": id_, "error": {
            "code": -32600, "message": message}}


@pytest.mark.parametrize(("body", "batch", "reply"), [
    (b"{not json", False, {"code": -32700, "message": "parse error: invalid JSON"}),
    (b"[", False, {"code": -32700, "message": "parse error: invalid JSON"}),
    (b"[]", True, {"code": -32600, "message": "invalid request: empty batch"}),
])
def test_a_rejected_body_is_one_reply_and_says_whether_it_was_a_batch(
        body: bytes, batch: bool, reply: dict[str, object]) -> None:
    p = jsonrpc.parse(body)
    assert p.items == [] and p.batch is batch and p.fatal is not None
    assert orjson.loads(p.fatal) == {"jsonrpc": "2.0", "id": None, "error": reply}


@pytest.mark.parametrize("limit", [1, 4, None])  # None: the default, 100
def test_the_batch_limit_admits_n_and_refuses_n_plus_1(limit: int | None) -> None:
    n_max = limit or 100
    kw = {} if limit is None else {"max_batch": limit}

    def body(n: int) -> bytes:
        return orjson.dumps([{"jsonrpc": "2.0", "id": i, "method": "m"} for i in range(n)])

    for n in {max(n_max - 1, 1), n_max}:
        p = jsonrpc.parse(body(n), **kw)
        assert p.fatal is None and p.batch
        assert p.items == [Request("m", [], i, False) for i in range(n)]
    p = jsonrpc.parse(body(n_max + 1), **kw)
    assert p.items == [] and p.batch and p.fatal is not None
    assert orjson.loads(p.fatal) == {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32005, "message": f"batch of {n_max + 1} requests exceeds the limit of {n_max}"}}


def test_a_single_request_is_parsed_whole_and_is_not_a_batch() -> None:
    p = jsonrpc.parse(b'{"jsonrpc":"2.0","id":"q","method":"eth_call","params":{"to":"0x1"}}')
    assert p == jsonrpc.Parsed([Request("eth_call", {"to": "0x1"}, "q", False)], False, None)
    p = jsonrpc.parse(b'{"jsonrpc":"2.0","method":"ping"}')
    assert p == jsonrpc.Parsed([Request("ping", [], None, True)], False, None)
    p = jsonrpc.parse(b'{"jsonrpc":"2.0","id":null,"method":"ping"}')  # null id: not a notification
    assert p.items == [Request("ping", [], None, False)]


def test_replies_and_requests_are_json_rpc_2_0_objects() -> None:
    assert orjson.loads(jsonrpc.error(7, -32602, "bad", {"k": 1})) == {
        "jsonrpc": "2.0", "id": 7, "error": {"code": -32602, "message": "bad", "data": {"k": 1}}}
    assert orjson.loads(jsonrpc.error("x", -32000, "gone")) == {
        "jsonrpc": "2.0", "id": "x", "error": {"code": -32000, "message": "gone"}}
    assert jsonrpc.error_obj(-32000, "m", 0) == {"code": -32000, "message": "m", "data": 0}
    assert orjson.loads(jsonrpc.result(None, [1])) == {"jsonrpc": "2.0", "id": None,
                                                       "result": [1]}
    assert orjson.loads(jsonrpc.batch([jsonrpc.result(1, 2), jsonrpc.result(2, 3)])) == [
        {"jsonrpc": "2.0", "id": 1, "result": 2}, {"jsonrpc": "2.0", "id": 2, "result": 3}]
    assert jsonrpc.batch([b"{}"]) == b"[{}]"
    assert orjson.loads(jsonrpc.notification("eth_subscription", {"r": 1})) == {
        "jsonrpc": "2.0", "method": "eth_subscription", "params": {"r": 1}}
    assert orjson.loads(jsonrpc.request("eth_call", [1], "id-1")) == {
        "jsonrpc": "2.0", "id": "id-1", "method": "eth_call", "params": [1]}
    # what request() writes, parse() reads back
    assert jsonrpc.parse(jsonrpc.request("m", {"a": 1}, 3)).items == [
        Request("m", {"a": 1}, 3, False)]


def test_params_opt_reads_a_given_value_and_defaults_a_missing_or_null_one() -> None:
    by_pos = Params(["0x10", None])
    by_name = Params({"block": "0x10", "full": None})
    for p in (by_pos, by_name):
        assert p.opt(0, "block", lambda v: int(v, 16), 7) == 16
        assert p.opt(1, "full", bool, True) is True  # null: the default
        assert p.opt(2, "extra", str, "d") == "d"  # absent: the default
        with pytest.raises(InvalidParams, match=r"^invalid parameter 0 \(block\): "):
            p.opt(0, "block", int, 0)  # "0x10" is not base 10
    with pytest.raises(InvalidParams, match=r"^missing parameter 0 \(other\)$"):
        Params({"block": 1}).get(0, "other", int)  # by name, another name is not it


@pytest.mark.parametrize(("given", "ok"), [(1, True), (2, True), (3, False)])
def test_max_count_refuses_more_positional_params_than_n(given: int, ok: bool) -> None:
    p = Params(list(range(given)))
    if ok:
        p.max_count(2)
    else:
        with pytest.raises(InvalidParams,
                           match=r"^too many parameters: expected at most 2, got 3$"):
            p.max_count(2)
    Params({"a": 1, "b": 2, "c": 3}).max_count(2)  # named params are not counted


# -- issue #18: edge cases -------------------------------------------------------------------
def test_empty_method_is_a_valid_unknown_name_so_a_notification_of_it_is_not_answered() -> None:
    p = jsonrpc.parse(b'{"jsonrpc":"2.0","method":""}')
    assert p.items == [Request("", [], None, True)]
    p = jsonrpc.parse(b'{"jsonrpc":"2.0","id":3,"method":""}')
    assert p.items == [Request("", [], 3, False)]  # a call: the dispatcher answers -32601


@pytest.mark.parametrize(
    "id_text",
    [b"1.5", b"1.0", b"1e3", b"-0.0", b"9223372036854775808", b"-9223372036854775809",
     b"18446744073709551616", b"123456789012345678901234567890"],
)
def test_fractional_and_beyond_int64_ids_are_refused(id_text: bytes) -> None:
    p = jsonrpc.parse(b'{"jsonrpc":"2.0","id":' + id_text + b',"method":"m"}')
    out = p.items[0]
    assert isinstance(out, bytes)
    assert err(out) == (None, -32600)
    assert b"int64" in out


@pytest.mark.parametrize("id_", [0, -1, 2**63 - 1, -(2**63), "", "x" * 100, None])
def test_ids_in_range_are_echoed_exactly(id_: object) -> None:
    body = orjson.dumps({"jsonrpc": "2.0", "id": id_, "method": "m"})
    item = jsonrpc.parse(body).items[0]
    assert isinstance(item, Request) and item.id == id_ and type(item.id) is type(id_)
    assert orjson.loads(jsonrpc.result(item.id, 1))["id"] == id_


def _nested(depth: int) -> bytes:
    """A call whose top level is depth 1 and whose params nest to exactly ``depth``."""
    inner = b"[" * (depth - 1) + b"]" * (depth - 1)
    return b'{"jsonrpc":"2.0","id":7,"method":"m","params":' + inner + b"}"


@pytest.mark.parametrize("depth", [2, 10, 64])
def test_nesting_up_to_the_limit_parses(depth: int) -> None:
    p = jsonrpc.parse(_nested(depth), max_depth=64)
    assert p.fatal is None and isinstance(p.items[0], Request)


@pytest.mark.parametrize("depth", [65, 980, 990, 1024, 1025, 5000])
def test_one_depth_limit_names_itself(depth: int) -> None:
    """Every depth past the limit gets the same clear -32600, including those beyond orjson's
    own limit (1024), and as a batch too."""
    for body in (_nested(depth), b"[" + _nested(depth) + b"]"):
        p = jsonrpc.parse(body, max_depth=64)
        assert p.fatal is not None, depth
        assert err(p.fatal) == (None, -32600)
        assert b"nested deeper than 64 levels" in p.fatal


def test_depth_counts_objects_and_arrays_alike() -> None:
    assert not jsonrpc.too_deep({"a": [{"b": [1]}]}, 4)
    assert jsonrpc.too_deep({"a": [{"b": [1]}]}, 3)
    assert not jsonrpc.too_deep("[[[[" * 100, 1)  # brackets inside strings do not count
