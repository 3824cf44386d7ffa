"""Mempool admission: ``dubhe_sendTransaction``.

The reply (the transaction hash) is sent only after the mempool has made the transaction durable;
refusals carry -32003 and ``data.cause`` (``malformed``, ``oversize``, ``bad_signature``,
``wrong_chain``, ``nonce_too_low``, ``nonce_gap``), or -32005 when the mempool is full. Both are
counted in ``/metrics``.
"""

from __future__ import annotations

from node.core.errors import InvalidTransaction
from node.core.hexutil import data
from node.rpc.jsonrpc import Params
from node.server.methods import params
from node.server.methods.ports import Admission
from node.server.methods.table import Call, rpc
from node.server.metrics import Metrics


class AdmissionMethods:
    def __init__(self, mempool: Admission, metrics: Metrics) -> None:
        self.mempool = mempool
        self.metrics = metrics

    @rpc("dubhe_sendTransaction")
    def send_transaction(self, p: Params, c: Call) -> str:
        p.max_count(1)
        tx = p.get(0, "transaction", params.transaction)
        try:
            h = self.mempool.submit_tx(tx)
        except InvalidTransaction as e:
            self.metrics.tx_rejected.labels(e.cause).inc()
            raise
        self.metrics.mempool.set(len(self.mempool))
        return data(h)
