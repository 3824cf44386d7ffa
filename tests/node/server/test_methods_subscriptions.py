"""Subscription methods in-process: the real pubsub registry and fan-out, fake connections."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import pytest
from inproc import InProcess, MemoryChain, RpcFault  # type: ignore[import-not-found]

from node.core import keys
from node.core.hexutil import data
from node.core.tx import Signer
from node.server.methods.subscriptions import SubscriptionMethods
from node.server.metrics import Metrics
from node.server.pubsub import PubSub, Subscription

A, B = Signer.from_seed(b"sub-a"), Signer.from_seed(b"sub-b")


@dataclass
class FakeConn:
    subs: dict[str, Subscription] = field(default_factory=dict)
    sent: list[dict[str, object]] = field(default_factory=list)

    def enqueue(self, message: str) -> None:
        self.sent.append(orjson.loads(message))


def setup() -> tuple[InProcess, PubSub]:
    pubsub = PubSub(Metrics())
    return InProcess(SubscriptionMethods(pubsub)), pubsub


@pytest.mark.parametrize(
    "method", ["eth_subscribe", "dubhe_subscribe", "eth_unsubscribe", "dubhe_unsubscribe"]
)
async def test_websocket_only(method: str) -> None:
    rpc, _ = setup()
    with pytest.raises(RpcFault) as e:
        await rpc.call(method, "newHeads")
    assert e.value.code == -32601 and "only available over WebSocket" in e.value.message


async def test_heads_logs_and_receipts_reach_their_subscribers() -> None:
    rpc, pubsub = setup()
    conn, other = FakeConn(), FakeConn()
    heads = await rpc.call("eth_subscribe", "newHeads", transport="ws", conn=conn)
    logs = await rpc.call(
        "eth_subscribe", "logs", {"address": data(keys.NATIVE_TOKEN)}, transport="ws", conn=conn
    )
    none = await rpc.call(
        "eth_subscribe", "logs", {"address": "0x" + "99" * 20}, transport="ws", conn=conn
    )
    mine = await rpc.call(
        "dubhe_subscribe", "receipts", {"from": data(A.address)}, transport="ws", conn=other
    )
    assert len({heads, logs, none, mine}) == 4 and all(
        len(s) == 34 for s in (heads, logs, none, mine)
    )
    assert set(conn.subs) == {heads, logs, none} and set(pubsub.subs) == {heads, logs, none, mine}
    chain = MemoryChain.new()
    chain.block(chain.mint(A.address, 10))
    b = chain.block(chain.transfer(A, B.address, 3), chain.mint(B.address, 1))
    pubsub.publish(b.header, b.txs, b.receipts)
    by_sub: dict[object, list[dict[str, object]]] = {}
    for note in conn.sent + other.sent:
        assert note["jsonrpc"] == "2.0"
        params = note["params"]
        assert isinstance(params, dict)
        by_sub.setdefault(params["subscription"], []).append(note)
    assert [n["params"]["result"]["number"] for n in by_sub[heads]] == ["0x2"]  # type: ignore[index]
    assert len(by_sub[logs]) == 2 and none not in by_sub  # a transfer's and a mint's log
    rc = by_sub[mine]
    assert len(rc) == 1 and rc[0]["method"] == "dubhe_subscription"
    assert rc[0]["params"]["result"]["transactionHash"] == data(b.txs[0].hash)  # type: ignore[index]


async def test_unsubscribe_only_own_subscriptions_and_drop_on_close() -> None:
    rpc, pubsub = setup()
    conn, other = FakeConn(), FakeConn()
    sid = await rpc.call("eth_subscribe", "newHeads", transport="ws", conn=conn)
    assert await rpc.call("eth_unsubscribe", sid, transport="ws", conn=other) is False
    assert await rpc.call("dubhe_unsubscribe", sid, transport="ws", conn=conn) is True
    assert await rpc.call("eth_unsubscribe", sid, transport="ws", conn=conn) is False
    await rpc.call("eth_subscribe", "newHeads", transport="ws", conn=conn)
    await rpc.call("dubhe_subscribe", "receipts", transport="ws", conn=conn)
    assert len(pubsub.subs) == 2
    pubsub.drop(conn)
    assert pubsub.subs == {} and conn.subs == {}
    assert pubsub.metrics.ws_subscriptions._value.get() == 0


@pytest.mark.parametrize(("method", "params", "message"), [
    ("eth_subscribe", ["bogus"], "unsupported subscription 'bogus'; supported: newHeads, logs"),
    ("eth_subscribe", ["receipts"], "unsupported subscription 'receipts'"),
    ("dubhe_subscribe", ["newHeads"], "supported: receipts"),
    ("dubhe_subscribe", ["receipts", {"to": "0x00"}], "expected {from?: address}"),
    ("eth_subscribe", ["logs", {"topics": [1]}], "each entry must be null, a topic or an array"),
    ("eth_subscribe", ["logs", {"address": 5}], "address: expected an address or an array"),
    ("eth_unsubscribe", [5], "expected a subscription id string"),
])
async def test_bad_parameters(method: str, params: list[object], message: str) -> None:
    rpc, pubsub = setup()
    with pytest.raises(RpcFault) as e:
        await rpc.call(method, *params, transport="ws", conn=FakeConn())
    assert e.value.code == -32602 and message in e.value.message
    assert pubsub.subs == {}
