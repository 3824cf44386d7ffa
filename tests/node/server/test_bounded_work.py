"""Bounded work per request (issue #18, section 3), in-process: response-size limits per request
and per batch (-32005 naming the limit, the rest of a batch not executed), large results built
and encoded off the event loop, and blocks bounded in bytes (``max_block_bytes``)."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest

from node.chain.mempool import Mempool
from node.core import keys
from node.core.tx import Signer, sign_tx
from node.rpc.jsonrpc import Params
from node.server.dispatch import Call, Dispatcher
from node.server.methods.table import MethodTable, rpc
from node.server.metrics import Metrics
from node.server.security import AuditLog
from node.state.chain_store import ChainStore
from node.state.kv import MemoryKV

LIMIT = 10_000


def call() -> Call:
    return Call("ws", ("127.0.0.1", 5000), False, None)


class Group:
    def __init__(self) -> None:
        self.ran: list[str] = []
        self.threads: list[str] = []

    @rpc("big")
    def big(self, p: Params, c: Call) -> str:
        self.ran.append("big")
        return "x" * p.get(0, "n", int)

    @rpc("block", offload=lambda p: p.opt(1, "full", bool, False))
    def block(self, p: Params, c: Call) -> str:
        self.ran.append("block")
        self.threads.append(threading.current_thread().name)
        return "b" * p.get(0, "n", int)

    @rpc("receipts", offload=True)
    def receipts(self, p: Params, c: Call) -> list[int]:
        self.threads.append(threading.current_thread().name)
        return [1, 2, 3]


def make() -> tuple[Dispatcher, Group]:
    g = Group()
    d = Dispatcher(MethodTable().add_group(g), metrics=Metrics(), audit=AuditLog(None),
                   timeout_s=1.0, max_batch=20, max_response_bytes=LIMIT)
    return d, g


def req(method: str, params: list[Any], id_: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}


async def test_a_response_past_the_limit_is_refused_naming_it() -> None:
    """Before: no limit (10 full blocks answered 185 MB in one response)."""
    d, _ = make()
    for one in (req("big", [LIMIT], 1), req("block", [LIMIT, True], 1)):
        body = orjson.dumps(one)
        out = orjson.loads(await d.handle(body, call()) or b"")
        assert out["id"] == 1 and out["error"]["code"] == -32005
        assert out["error"]["message"] == (
            f"response of {LIMIT + 36} bytes exceeds the limit of {LIMIT} bytes "
            "(api.max_response_bytes)")
    ok = orjson.loads(await d.handle(orjson.dumps(req("big", [LIMIT - 100], 2)), call()) or b"")
    assert len(ok["result"]) == LIMIT - 100


async def test_a_batch_stops_executing_once_its_responses_reach_the_limit() -> None:
    d, g = make()
    batch = [req("big", [4000], i) for i in range(5)]
    out = orjson.loads(await d.handle(orjson.dumps(batch), call()) or b"")
    assert [len(o.get("result", "")) for o in out] == [4000, 4000, 0, 0, 0]
    assert "would take the batch response past the limit of 10000 bytes" in out[2]["error"][
        "message"]
    assert all(o["error"]["message"].startswith("not executed") for o in out[3:])
    assert [o["id"] for o in out] == [0, 1, 2, 3, 4]
    assert g.ran == ["big"] * 3  # the third ran (its response did not fit); the rest did not
    assert sum(len(orjson.dumps(o)) for o in out) < LIMIT


async def test_large_results_are_built_off_the_event_loop() -> None:
    d, g = make()
    main = threading.current_thread().name
    await d.handle(orjson.dumps(req("block", [10, True], 1)), call())
    await d.handle(orjson.dumps(req("block", [10, False], 2)), call())
    await d.handle(orjson.dumps(req("receipts", [], 3)), call())
    await d.handle(orjson.dumps([req("receipts", [], 4)]), call())
    assert g.threads[0] != main and g.threads[1] == main  # only the full block moved
    assert g.threads[2] != main and g.threads[3] != main


# -- max_block_bytes ---------------------------------------------------------------------------
def test_block_selection_stops_at_the_byte_budget_in_arrival_order() -> None:
    s = Signer.from_seed(b"bytes")
    p = Mempool(ChainStore(MemoryKV()), chain_id=9, max_txs=100)
    sizes = []
    for n, args in enumerate((50_000, 50_000, 10, 50_000, 10)):
        t = sign_tx(s, chain_id=9, nonce=n, to=keys.COUNTER_DEMO, method="get", args=b"a" * args)
        p.submit_tx(t)
        sizes.append(len(t.raw))
    assert len(p.pending(100)) == 5
    picked = p.pending(100, max_bytes=sizes[0] + sizes[1] + sizes[2] + 100)
    assert [e.tx.nonce for e in picked] == [0, 1, 2]  # the 4th does not fit: stop, do not skip
    assert [e.tx.nonce for e in p.pending(100, max_bytes=10)] == [0]  # one always goes
    assert [e.tx.nonce for e in p.pending(2, max_bytes=10**9)] == [0, 1]


@pytest.mark.parametrize("value", [131_071, 0])
def test_max_block_bytes_holds_at_least_the_largest_transaction(value: int) -> None:
    from node import config
    from node.core.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        config.from_dict({"node": {"max_block_bytes": value}})
    assert e.value.errors[0][0] == "node.max_block_bytes"
