"""Subscriptions: the registry (one entry per ``eth_subscribe``/``dubhe_subscribe``, attached to its
connection) and the per-block fan-out. The methods are in :mod:`node.server.methods.subscriptions`.

Each block's payloads are encoded once per kind; each subscriber gets the shared JSON spliced into
its notification envelope and put on its connection's bounded queue (the connection closes itself
with 1008 when that queue is full). Every notification carries its block number so a client can
detect a gap and backfill with ``eth_getBlockByNumber``. Subscriptions die with their connection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from node.core.block import BlockHeader
from node.core.errors import LimitExceeded
from node.core.execution import Receipt
from node.core.tx import Transaction
from node.rpc import eth
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


class PubSub:
    """``max_per_conn``: subscriptions one connection may hold (every block visits every
    subscription, so one socket with thousands of never-matching filters slows every block's
    fan-out and with it the event loop)."""

    def __init__(self, metrics: Metrics, *, max_per_conn: int = 128) -> None:
        self.metrics = metrics
        self.max_per_conn = max_per_conn
        self.subs: dict[str, Subscription] = {}

    # -- registry -------------------------------------------------------------------------
    def add(self, sub: Subscription) -> str:
        """Register ``sub`` (and attach it to its connection); returns its id. Raises
        :class:`~node.core.errors.LimitExceeded` when the connection holds ``max_per_conn``."""
        if len(sub.conn.subs) >= self.max_per_conn:
            raise LimitExceeded(
                f"this connection already has {len(sub.conn.subs)} subscriptions; the limit is "
                f"{self.max_per_conn} (api.max_subscriptions_per_connection)"
            )
        self.subs[sub.id] = sub
        sub.conn.subs[sub.id] = sub
        self.metrics.ws_subscriptions.set(len(self.subs))
        return sub.id

    def remove(self, conn: Subscriber, sid: str) -> bool:
        """Remove subscription ``sid`` of ``conn``; False when ``conn`` has no such subscription."""
        if conn.subs.pop(sid, None) is None:
            return False
        self.subs.pop(sid, None)
        self.metrics.ws_subscriptions.set(len(self.subs))
        return True

    def drop(self, conn: Subscriber) -> None:
        for sid in list(conn.subs):
            self.subs.pop(sid, None)
        conn.subs.clear()
        self.metrics.ws_subscriptions.set(len(self.subs))

    # -- fan-out --------------------------------------------------------------------------
    def publish(
        self, header: BlockHeader, txs: tuple[Transaction, ...], receipts: tuple[Receipt, ...]
    ) -> None:
        if not self.subs:
            return
        # One emit time per block for every notification of it: receivers measure delivery as
        # their receive time minus this (queueing and the wire, not the block's execution).
        emitted = hex(time.time_ns() // 1_000_000)
        head_json: str | None = None
        logs: list[tuple[bytes, tuple[bytes, ...], str]] | None = None
        receipt_json: list[tuple[bytes, str]] | None = None
        n_heads = n_logs = n_rcpt = 0
        for sub in list(self.subs.values()):
            if sub.kind == "newHeads":
                if head_json is None:
                    head_json = orjson.dumps(eth.header_obj(header)).decode()
                sub.conn.enqueue(_envelope("eth_subscription", sub.id, head_json, emitted))
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
                        sub.conn.enqueue(_envelope("eth_subscription", sub.id, js, emitted))
                        n_logs += 1
            else:
                if receipt_json is None:
                    receipt_json = [
                        (tx.sender, orjson.dumps(eth.dubhe_receipt_obj(rc)).decode())
                        for tx, rc in zip(txs, receipts, strict=True)
                    ]
                for sender, js in receipt_json:
                    if sub.sender is None or sub.sender == sender:
                        sub.conn.enqueue(_envelope("dubhe_subscription", sub.id, js, emitted))
                        n_rcpt += 1
        if n_heads:
            self.metrics.notifications.labels("newHeads").inc(n_heads)
        if n_logs:
            self.metrics.notifications.labels("logs").inc(n_logs)
        if n_rcpt:
            self.metrics.notifications.labels("receipts").inc(n_rcpt)


def _envelope(method: str, sid: str, result_json: str, emitted: str) -> str:
    """A notification; ``params.emittedMs`` (hex ms since the epoch) is a Dubhe extension that
    Ethereum clients ignore (they read ``subscription`` and ``result``)."""
    return ('{"jsonrpc":"2.0","method":"' + method + '","params":{"subscription":"' + sid
            + '","emittedMs":"' + emitted + '","result":' + result_json + "}}")
