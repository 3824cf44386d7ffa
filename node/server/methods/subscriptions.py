"""Subscriptions (WebSocket only; -32601 over HTTP): ``eth_subscribe`` (``newHeads``, ``logs``
with an optional filter), ``dubhe_subscribe`` (``receipts``, optionally of one sender), and
``eth_unsubscribe``/``dubhe_unsubscribe``. Subscriptions live in the registry of
:class:`~node.server.pubsub.PubSub`, attached to the calling connection, and die with it."""

from __future__ import annotations

import secrets
from typing import Any

from node.core.hexutil import parse_data
from node.rpc.jsonrpc import Params
from node.server.methods import params
from node.server.methods.table import Call, rpc
from node.server.pubsub import LogFilter, PubSub, Subscriber, Subscription

ETH_KINDS = ("newHeads", "logs")
DUBHE_KINDS = ("receipts",)


def parse_log_filter(v: Any) -> LogFilter:
    """``{address?: address | [address], topics?: [null | topic | [topic]] (at most 4)}``."""
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
        addrs = [params.address(a)]
    elif isinstance(a, list):
        addrs = [params.address(x) for x in a]
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
            topics.append(frozenset([params.hash32(entry)]))
        elif isinstance(entry, list):
            topics.append(frozenset(params.hash32(x) for x in entry))
        else:
            raise ValueError("topics: each entry must be null, a topic or an array of topics")
    return LogFilter(frozenset(addrs), tuple(topics))


def _receipt_options(v: Any) -> bytes | None:
    if not isinstance(v, dict) or set(v) - {"from"}:
        raise ValueError("expected {from?: address}")
    return parse_data(v["from"], length=20) if "from" in v else None


def _subscription_id(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("expected a subscription id string")
    return v


def _new_id() -> str:
    return "0x" + secrets.token_hex(16)


def _conn(c: Call) -> Subscriber:
    # ws_only methods: the dispatcher runs them only for WebSocket calls, which carry their conn
    assert c.conn is not None
    return c.conn


class SubscriptionMethods:
    def __init__(self, pubsub: PubSub) -> None:
        self.pubsub = pubsub

    @rpc("eth_subscribe", ws_only=True)
    def eth_subscribe(self, p: Params, c: Call) -> str:
        p.max_count(2)
        kind = p.get(0, "subscription", params.one_of(ETH_KINDS, "subscription"))
        if kind == "logs":
            log_filter = p.opt(1, "filter", parse_log_filter, LogFilter())
            return self.pubsub.add(Subscription(_new_id(), kind, _conn(c), log_filter))
        return self.pubsub.add(Subscription(_new_id(), kind, _conn(c)))

    @rpc("dubhe_subscribe", ws_only=True)
    def dubhe_subscribe(self, p: Params, c: Call) -> str:
        p.max_count(2)
        p.get(0, "subscription", params.one_of(DUBHE_KINDS, "subscription"))
        sender = p.opt(1, "options", _receipt_options, None)
        return self.pubsub.add(Subscription(_new_id(), "receipts", _conn(c), sender=sender))

    @rpc("eth_unsubscribe", ws_only=True)
    def eth_unsubscribe(self, p: Params, c: Call) -> bool:
        """True when the subscription existed on this connection (and is now gone)."""
        p.max_count(1)
        sid = p.get(0, "subscriptionId", _subscription_id)
        return self.pubsub.remove(_conn(c), sid)

    @rpc("dubhe_unsubscribe", ws_only=True)
    def dubhe_unsubscribe(self, p: Params, c: Call) -> bool:
        return self.eth_unsubscribe(p, c)
