"""Mempool admission: ``dubhe_sendTransaction`` (one) and ``dubhe_sendTransactions`` (a list).

The reply is sent only after the mempool has made the transactions durable (in RocksDB's WAL,
fsync'd by default with group commit: concurrent submissions share one fsync; a list in **one**
write batch). A storage failure answers -32020. Refusals carry -32003 and ``data.cause``
(``malformed``, ``oversize``, ``bad_signature``, ``small_order_key``, ``non_canonical_key``,
``small_order_signature``, ``non_canonical_signature`` (strict Ed25519, see
:mod:`node.core.ed25519`), ``wrong_chain``, ``nonce_too_low``, ``nonce_gap``), or -32005
when the mempool is full or the connection's transaction rate is exceeded. Both are counted in
``/metrics``.

Rate rule: every request takes one token of the connection's request bucket (the dispatcher
does that; a JSON-RPC batch item is a request), and every transaction submitted takes one token
of its transaction bucket (``[api] tx_rate_limit_*``), whether sent alone or in a list. A list
whose transactions exceed the tokens left is admitted up to them; the rest answer -32005 per
item, so a client knows exactly which to send again.

``dubhe_sendTransactions`` answers one entry per item, in order: the hash (hex), or
``{"error": {"code", "message", "data"?}}`` (the error a single submission would have got). An
item that fails refuses only itself; later transactions of the same sender then usually fail
with ``nonce_gap``. A list longer than ``max_submit_txs`` is refused whole (-32005).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from node.core.errors import InvalidParams, InvalidTransaction, LimitExceeded, NodeError
from node.core.hexutil import data
from node.core.tx import Transaction
from node.rpc.jsonrpc import Params
from node.server.methods import params
from node.server.methods.ports import Admission
from node.server.methods.table import Call, rpc
from node.server.metrics import Metrics

#: Lists at least this long have their signatures checked off the event loop, split over
#: :data:`VERIFY_THREADS` threads (libsodium releases the GIL, so they run on every core while
#: the loop serves other connections); shorter ones inline (a thread hop costs more).
VERIFY_OFF_LOOP_FROM = 16
VERIFY_THREADS = max(1, os.cpu_count() or 1)


def _verify(txs: Sequence[Transaction | NodeError]) -> list[Transaction | NodeError]:
    """Each transaction whose signature verifies, else its ``bad_signature`` error."""
    out: list[Transaction | NodeError] = []
    for tx in txs:
        if isinstance(tx, Transaction):
            try:
                tx.verify_signature()
            except InvalidTransaction as e:
                out.append(e)
                continue
        out.append(tx)
    return out


def _item(v: Any, i: int) -> Transaction | NodeError:
    try:
        return params.transaction(v)
    except NodeError as e:
        return e
    except (ValueError, TypeError) as e:
        return InvalidParams(f"invalid parameter 0 (transactions[{i}]): {e}")


def error_entry(e: NodeError) -> dict[str, Any]:
    err: dict[str, Any] = {"code": e.rpc_code, "message": e.message}
    if e.data is not None:
        err["data"] = e.data
    return {"error": err}


class AdmissionMethods:
    def __init__(self, mempool: Admission, metrics: Metrics, *, max_submit_txs: int = 5000) -> None:
        self.mempool = mempool
        self.metrics = metrics
        self.max_submit_txs = max_submit_txs
        self._accepted_one = metrics.tx_accepted.labels("dubhe_sendTransaction")
        self._accepted_many = metrics.tx_accepted.labels("dubhe_sendTransactions")

    @rpc("dubhe_sendTransaction")
    async def send_transaction(self, p: Params, c: Call) -> str:
        p.max_count(1)
        tx = p.get(0, "transaction", params.transaction)
        if c.tx_bucket is not None and not c.tx_bucket.take():
            self.metrics.rate_limited.labels(c.transport).inc()
            raise LimitExceeded("transaction rate limit exceeded")
        try:
            h = await self.mempool.asubmit_tx(tx)
        except InvalidTransaction as e:
            self.metrics.tx_rejected.labels(e.cause).inc()
            raise
        self._accepted_one.inc()
        self.metrics.mempool.set(len(self.mempool))
        return data(h)

    @rpc("dubhe_sendTransactions")
    async def send_transactions(self, p: Params, c: Call) -> list[Any]:
        """params: ``[[tx, ...]]``, each raw signed hex or a transaction object; answers one
        entry per item (see the module docstring)."""
        p.max_count(1)
        raw_items = p.get(0, "transactions", _tx_list)
        if len(raw_items) > self.max_submit_txs:
            raise LimitExceeded(
                f"{len(raw_items)} transactions in one call; the limit is {self.max_submit_txs}"
            )
        items = [_item(v, i) for i, v in enumerate(raw_items)]
        granted = len(items)
        if c.tx_bucket is not None:
            granted = c.tx_bucket.take_up_to(len(items))
            if granted < len(items):
                self.metrics.rate_limited.labels(c.transport).inc()
                over = LimitExceeded("transaction rate limit exceeded")
                items[granted:] = [over] * (len(items) - granted)
        if granted >= VERIFY_OFF_LOOP_FROM:
            step = -(-len(items) // VERIFY_THREADS)
            parts = await asyncio.gather(*(asyncio.to_thread(_verify, items[i:i + step])
                                           for i in range(0, len(items), step)))
            items = [t for part in parts for t in part]
        else:
            items = _verify(items)
        results = await self.mempool.asubmit_many(items, signatures_checked=True)
        out: list[Any] = []
        accepted = 0
        for r in results:
            if isinstance(r, bytes):
                out.append(data(r))
                accepted += 1
            else:
                if isinstance(r, InvalidTransaction):
                    self.metrics.tx_rejected.labels(r.cause).inc()
                out.append(error_entry(r))
        if accepted:
            self._accepted_many.inc(accepted)
        self.metrics.mempool.set(len(self.mempool))
        return out


def _tx_list(v: Any) -> list[Any]:
    if not isinstance(v, list):
        raise ValueError("expected an array of transactions (raw hex or objects)")
    return v
