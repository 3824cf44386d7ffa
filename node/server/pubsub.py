"""Subscriptions: ``eth_subscribe`` (newHeads, logs), ``dubhe_subscribe`` (receipts), unsubscribe,
and the per-block fan-out.

Each block's payloads are encoded once per kind; each subscriber gets the shared JSON spliced into
its notification envelope and put on its connection's bounded queue (the connection closes itself
with 1008 when that queue is full). Every notification carries its block number so a client can
detect a gap and backfill with ``eth_getBlockByNumber``. Subscriptions die with their connection.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from node.core.block import BlockHeader
from node.core.execution import Receipt
from node.core.hexutil import parse_data
from node.core.tx import Transaction
from node.rpc import eth
from node.rpc.jsonrpc import Params
from node.server.dispatch import Call, Handler
from node.server.metrics import Metrics


class Subscriber(Protocol):
    """A connection that can receive notifications."""

    subs: dict[str, Subscription]

    def enqueue(self, message: str) -> None: ...


@dataclass(slots=True)
class LogFilter:
    addresses: frozenset[bytes] = frozenset()
    topics: tuple[frozenset[bytes] | None, ...] = ()

    def matches(self, address: bytes, topics: tuple[bytes, ...]) -> bool:
        if self.addresses and address not in self.addresses:
            return False
        for i, want in enumerate(self.topics):
            if want is None:
                continue
            if i >= len(topics) or topics[i] not in want:
                return False
        return True


@dataclass(slots=True)
class Subscription:
    id: str
    kind: str  # newHeads | logs | receipts
    conn: Subscriber
    log_filter: LogFilter = field(default_factory=LogFilter)
    sender: bytes | None = None


def _parse_log_filter(v: Any) -> LogFilter:
    if v is None:
        return LogFilter()
    if not isinstance(v, dict):
        raise ValueError("expected a filter object {address?, topics?}")
    unknown = set(v) - {"address", "topics"}
    if unknown:
        raise ValueError(f"unknown filter field(s) {sorted(unknown)}")
    addrs: list[bytes] = []
    a = v.get("address")
    if isinstance(a, str):
        addrs = [parse_data(a, length=20)]
    elif isinstance(a, list):
        addrs = [parse_data(x, length=20) for x in a]
    elif a is not None:
        raise ValueError("address: expected an address or an array of addresses")
    topics: list[frozenset[bytes] | None] = []
    t = v.get("topics", [])
    if not isinstance(t, list) or len(t) > 4:
        raise ValueError("topics: expected an array of at most 4 entries")
    for entry in t:
        if entry is None:
            topics.append(None)
        elif isinstance(entry, str):
            topics.append(frozenset([parse_data(entry, length=32)]))
        elif isinstance(entry, list):
            topics.append(frozenset(parse_data(x, length=32) for x in entry))
        else:
            raise ValueError("topics: each entry must be null, a topic or an array of topics")
    return LogFilter(frozenset(addrs), tuple(topics))


class PubSub:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.subs: dict[str, Subscription] = {}

    # -- methods --------------------------------------------------------------------------
    def _add(self, sub: Subscription) -> str:
        self.subs[sub.id] = sub
        sub.conn.subs[sub.id] = sub
        self.metrics.ws_subscriptions.set(len(self.subs))
        return sub.id

    def methods(self) -> dict[str, Handler]:
        def kind_of(allowed: tuple[str, ...]) -> Any:
            def parse(v: Any) -> str:
                if v not in allowed:
                    raise ValueError(f"unsupported subscription {v!r}; supported: {', '.join(allowed)}")
                return str(v)

            return parse

        def eth_subscribe(p: Params, c: Call) -> str:
            p.max_count(2)
            kind = p.get(0, "subscription", kind_of(("newHeads", "logs")))
            sid = "0x" + secrets.token_hex(16)
            if kind == "logs":
                return self._add(Subscription(sid, kind, c.conn, p.opt(1, "filter", _parse_log_filter, LogFilter())))
            return self._add(Subscription(sid, kind, c.conn))

        def dubhe_subscribe(p: Params, c: Call) -> str:
            p.max_count(2)
            p.get(0, "subscription", kind_of(("receipts",)))

            def opts(v: Any) -> bytes | None:
                if not isinstance(v, dict) or set(v) - {"from"}:
                    raise ValueError("expected {from?: address}")
                return parse_data(v["from"], length=20) if "from" in v else None

            sender = p.opt(1, "options", opts, None)
            return self._add(Subscription("0x" + secrets.token_hex(16), "receipts", c.conn, sender=sender))

        def eth_unsubscribe(p: Params, c: Call) -> bool:
            p.max_count(1)
            def sub_id(v: Any) -> str:
                if not isinstance(v, str):
                    raise ValueError("expected a subscription id string")
                return v

            sid = p.get(0, "subscriptionId", sub_id)
            sub = c.conn.subs.pop(sid, None) if c.conn is not None else None
            if sub is None:
                return False
            self.subs.pop(sid, None)
            self.metrics.ws_subscriptions.set(len(self.subs))
            return True

        return {
            "eth_subscribe": eth_subscribe,
            "eth_unsubscribe": eth_unsubscribe,
            "dubhe_subscribe": dubhe_subscribe,
            "dubhe_unsubscribe": eth_unsubscribe,
        }

    WS_ONLY = frozenset({"eth_subscribe", "eth_unsubscribe", "dubhe_subscribe", "dubhe_unsubscribe"})

    def drop(self, conn: Subscriber) -> None:
        for sid in list(conn.subs):
            self.subs.pop(sid, None)
        conn.subs.clear()
        self.metrics.ws_subscriptions.set(len(self.subs))

    # -- fan-out --------------------------------------------------------------------------
    def publish(self, header: BlockHeader, txs: tuple[Transaction, ...], receipts: tuple[Receipt, ...]) -> None:
        if not self.subs:
            return
        head_json: str | None = None
        logs: list[tuple[bytes, tuple[bytes, ...], str]] | None = None
        receipt_json: list[tuple[bytes, str]] | None = None
        n_heads = n_logs = n_rcpt = 0
        for sub in list(self.subs.values()):
            if sub.kind == "newHeads":
                if head_json is None:
                    head_json = orjson.dumps(eth.header_obj(header)).decode()
                sub.conn.enqueue(_envelope("eth_subscription", sub.id, head_json))
                n_heads += 1
            elif sub.kind == "logs":
                if logs is None:
                    logs = []
                    li = 0
                    for rc in receipts:
                        for ev in rc.events:
                            obj = eth.log_obj(ev, header, rc.tx_hash, rc.index, li)
                            logs.append((ev.address, ev.topics, orjson.dumps(obj).decode()))
                            li += 1
                for address, topics, js in logs:
                    if sub.log_filter.matches(address, topics):
                        sub.conn.enqueue(_envelope("eth_subscription", sub.id, js))
                        n_logs += 1
            else:
                if receipt_json is None:
                    receipt_json = [
                        (tx.sender, orjson.dumps(eth.dubhe_receipt_obj(rc)).decode())
                        for tx, rc in zip(txs, receipts, strict=True)
                    ]
                for sender, js in receipt_json:
                    if sub.sender is None or sub.sender == sender:
                        sub.conn.enqueue(_envelope("dubhe_subscription", sub.id, js))
                        n_rcpt += 1
        if n_heads:
            self.metrics.notifications.labels("newHeads").inc(n_heads)
        if n_logs:
            self.metrics.notifications.labels("logs").inc(n_logs)
        if n_rcpt:
            self.metrics.notifications.labels("receipts").inc(n_rcpt)


def _envelope(method: str, sid: str, result_json: str) -> str:
    return (
        '{"jsonrpc":"2.0","method":"' + method + '","params":{"subscription":"' + sid + '","result":' + result_json + "}}"
    )
