"""Chain reads: the Ethereum subset (``web3_``, ``net_``, ``eth_`` reads) and the Dubhe lookups of
transactions, receipts and contract storage.

Everything here reads committed data (:class:`~.ports.ChainReads`) and, for pending transactions
and nonces, the mempool (:class:`~.ports.PendingView`); nothing writes. The node keeps only the
latest state: a state query for an older block answers -32000
(:class:`~node.core.errors.StateUnavailable`).

Costs: one receipt is a constant number of store reads (its cumulative gas and first log index
are stored at commit); a block's receipts (``eth_getBlockReceipts``, ``dubhe_getBlockReceipts``)
a number linear in the block's size. A block's execution stats are served once per block (on the
block, and in ``dubhe_getBlockReceipts``), not in every receipt (``dubhe_getReceipt`` includes
them only when asked: ``{"blockStats": true}``).
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

from node import __version__
from node.core import keys
from node.core.codec import unpack_u64
from node.core.errors import InvalidParams, StateUnavailable
from node.core.hexutil import data, parse_data, qty
from node.core.tx import Transaction
from node.rpc import eth
from node.rpc.jsonrpc import Params
from node.server.methods import params
from node.server.methods.ports import ChainReads, PendingView
from node.server.methods.table import Call, rpc

CLIENT_VERSION = (
    f"dubhe-node/v{__version__}/python{sys.version_info.major}.{sys.version_info.minor}"
)

_LATEST: int | str = "latest"
#: Tags that name the latest state (the node's only state).
_LATEST_STATE_TAGS = ("latest", "pending", "safe", "finalized")


def _full_block(p: Params) -> bool:
    """A block asked with its transactions (up to ``max_block_bytes`` of them): built off the
    event loop. Hashes only are cheap: inline."""
    try:
        return p.opt(1, "fullTransactions", params.boolean, False)
    except InvalidParams:
        return False  # the handler answers the error


def receipt_options(v: Any) -> bool:
    """``{"blockStats"?: bool}``: whether to include the block's stats."""
    return params.Fields(v, ("blockStats",)).opt("blockStats", params.boolean, False)


class ChainReadMethods:
    def __init__(self, chain: ChainReads, pending: PendingView, *, chain_id: int) -> None:
        self.chain = chain
        self.pending = pending
        self.chain_id = chain_id
        self._chain_id_hex = qty(chain_id)

    # -- helpers --------------------------------------------------------------------------
    def _head_number(self) -> int:
        h = self.chain.head
        return h.number if h else 0

    def _resolve(self, tag: int | str) -> int:
        if tag == "earliest":
            return 0
        if isinstance(tag, str):
            return self._head_number()
        return tag

    def _require_latest_state(self, tag: int | str) -> None:
        n = self._resolve(tag)
        if n != self._head_number() and tag not in _LATEST_STATE_TAGS:
            raise StateUnavailable(
                f"state at block {n} is not available (this node keeps only the latest state)"
            )

    def _stats_of(self, number: int) -> Any:
        raw = self.chain.block_stats(number)
        return orjson.loads(raw) if raw is not None else None

    def _digest(self, number: int) -> str | None:
        d = self.chain.execution_digest(number)
        return data(d) if d is not None else None

    def _number_of(self, ref: int | str | bytes) -> int | None:
        """The number of a block given by :func:`params.block_ref` (None: unknown hash)."""
        if isinstance(ref, bytes):
            return self.chain.number_of(ref)
        return self._resolve(ref)

    def _block(self, number: int | None, full: bool) -> dict[str, Any] | None:
        if number is None:
            return None
        h = self.chain.header(number)
        if h is None:
            return None
        hashes = self.chain.block_tx_hashes(number)
        if not full:
            b = eth.block_obj(h, hashes, False)
        else:
            txs = []
            for th in hashes:
                loc = self.chain.tx_location(th)
                if loc is not None:
                    txs.append(Transaction.decode(loc.raw))
            b = eth.block_obj(h, txs, True)
        b["dubheStats"] = self._stats_of(number)
        b["executionDigest"] = self._digest(number)
        return b

    # -- constants of this node -----------------------------------------------------------
    @rpc("web3_clientVersion")
    def client_version(self, p: Params, c: Call) -> str:
        p.max_count(0)
        return CLIENT_VERSION

    @rpc("net_version")
    def net_version(self, p: Params, c: Call) -> str:
        p.max_count(0)
        return str(self.chain_id)

    @rpc("eth_chainId")
    def eth_chain_id(self, p: Params, c: Call) -> str:
        p.max_count(0)
        return self._chain_id_hex

    @rpc("eth_gasPrice")
    def gas_price(self, p: Params, c: Call) -> str:
        p.max_count(0)
        return "0x0"

    @rpc("eth_maxPriorityFeePerGas")
    def max_priority_fee(self, p: Params, c: Call) -> str:
        p.max_count(0)
        return "0x0"

    @rpc("eth_syncing")
    def syncing(self, p: Params, c: Call) -> bool:
        p.max_count(0)
        return False

    # -- blocks ---------------------------------------------------------------------------
    @rpc("eth_blockNumber")
    def block_number(self, p: Params, c: Call) -> str:
        p.max_count(0)
        return qty(self._head_number())

    @rpc("eth_getBlockByNumber", offload=_full_block)
    def block_by_number(self, p: Params, c: Call) -> dict[str, Any] | None:
        p.max_count(2)
        tag = p.get(0, "block", params.block_tag)
        full = p.opt(1, "fullTransactions", params.boolean, False)
        return self._block(self._resolve(tag), full)

    @rpc("eth_getBlockByHash", offload=_full_block)
    def block_by_hash(self, p: Params, c: Call) -> dict[str, Any] | None:
        p.max_count(2)
        h = p.get(0, "blockHash", params.hash32)
        full = p.opt(1, "fullTransactions", params.boolean, False)
        return self._block(self.chain.number_of(h), full)

    # -- accounts -------------------------------------------------------------------------
    @rpc("eth_getBalance")
    def balance(self, p: Params, c: Call) -> str:
        p.max_count(2)
        addr = p.get(0, "address", params.address)
        self._require_latest_state(p.opt(1, "block", params.block_tag, _LATEST))
        return qty(unpack_u64(self.chain.get(keys.balance_key(addr))))

    @rpc("eth_getTransactionCount")
    def transaction_count(self, p: Params, c: Call) -> str:
        p.max_count(2)
        addr = p.get(0, "address", params.address)
        tag = p.opt(1, "block", params.block_tag, _LATEST)
        if tag == "pending":
            return qty(self.pending.next_nonce(addr))
        self._require_latest_state(tag)
        return qty(self.pending.committed_nonce(addr))

    # -- transactions and receipts --------------------------------------------------------
    @rpc("eth_getTransactionReceipt")
    def eth_receipt(self, p: Params, c: Call) -> dict[str, Any] | None:
        p.max_count(1)
        sr = self.chain.stored_receipt(p.get(0, "transactionHash", params.hash32))
        if sr is None:
            return None
        h = self.chain.header(sr.receipt.block_number)
        if h is None:
            return None
        return eth.receipt_obj(
            sr.receipt, Transaction.decode(sr.raw_tx), h, sr.cumulative_gas, sr.first_log_index
        )

    @rpc("eth_getBlockReceipts", offload=True)
    def eth_block_receipts(self, p: Params, c: Call) -> list[dict[str, Any]] | None:
        """Every receipt of a block, in the execution-apis format (as geth, Erigon, Reth and
        Nethermind serve it); null for an unknown block."""
        p.max_count(1)
        number = self._number_of(p.get(0, "block", params.block_ref))
        h = self.chain.header(number) if number is not None else None
        if h is None:
            return None
        receipts = self.chain.block_receipts(h.number) or []
        return [
            eth.receipt_obj(
                sr.receipt, Transaction.decode(sr.raw_tx), h, sr.cumulative_gas,
                sr.first_log_index,
            )
            for sr in receipts
        ]

    @rpc("dubhe_getBlockReceipts", offload=True)
    def dubhe_block_receipts(self, p: Params, c: Call) -> dict[str, Any] | None:
        """``{blockNumber, blockHash, executionDigest, blockStats, receipts}``: the block's
        receipts in ``dubhe_getReceipt``'s form, its execution stats once; null for an unknown
        block."""
        p.max_count(1)
        number = self._number_of(p.get(0, "block", params.block_ref))
        h = self.chain.header(number) if number is not None else None
        if h is None:
            return None
        receipts = self.chain.block_receipts(h.number) or []
        return {
            "blockNumber": qty(h.number),
            "blockHash": data(h.hash),
            "executionDigest": self._digest(h.number),
            "blockStats": self._stats_of(h.number),
            "receipts": [eth.dubhe_receipt_obj(sr.receipt) for sr in receipts],
        }

    @rpc("dubhe_getTransaction")
    def transaction(self, p: Params, c: Call) -> dict[str, Any] | None:
        p.max_count(1)
        th = p.get(0, "transactionHash", params.hash32)
        pending = self.pending.get(th)
        if pending is not None:
            return {**eth.tx_obj(pending, None, None), "status": "pending"}
        loc = self.chain.tx_location(th)
        if loc is None:
            return None
        tx = Transaction.decode(loc.raw)
        return {**eth.tx_obj(tx, self.chain.header(loc.number), loc.index), "status": "included"}

    @rpc("dubhe_getReceipt")
    def dubhe_receipt(self, p: Params, c: Call) -> dict[str, Any] | None:
        """params: ``[hash, {"blockStats"?: bool}?]``. The receipt alone; with
        ``{"blockStats": true}`` also its block's execution stats (as before they moved to the
        block)."""
        p.max_count(2)
        rc = self.chain.receipt(p.get(0, "transactionHash", params.hash32))
        with_stats = p.opt(1, "options", receipt_options, False)
        if rc is None:
            return None
        out = eth.dubhe_receipt_obj(rc)
        if with_stats:
            out["blockStats"] = self._stats_of(rc.block_number)
        return out

    # -- contract storage -----------------------------------------------------------------
    @rpc("dubhe_getState")
    def state(self, p: Params, c: Call) -> str | None:
        p.max_count(2)
        contract = p.get(0, "contract", params.address)
        slot = p.get(1, "key", lambda v: parse_data(v, max_len=keys.MAX_SLOT_LEN))
        if not slot:
            raise InvalidParams("invalid parameter 1 (key): must not be empty")
        raw = self.chain.get(keys.storage_key(contract, slot))
        return data(raw) if raw is not None else None
