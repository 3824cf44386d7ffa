"""JSON-RPC method handlers: the Ethereum subset, the Dubhe methods and the admin namespace.

Handlers take ``(Params, Call)`` and return a JSON-able value; they raise
:class:`~node.core.errors.NodeError` subclasses whose message names the bad parameter.
"""

from __future__ import annotations

import logging
import struct
import sys
import time
from typing import TYPE_CHECKING, Any

import orjson

from node import __version__
from node.core import keys
from node.core.errors import InvalidParams, InvalidTransaction, NodeError
from node.core.hexutil import data, parse_data, parse_qty, qty
from node.core.tx import Transaction
from node.rpc import eth
from node.rpc.jsonrpc import Params
from node.server.dispatch import Call, Handler

if TYPE_CHECKING:
    from node.server.node import Node

_U64 = struct.Struct(">Q")
_LATEST: int | str = "latest"
CLIENT_VERSION = f"dubhe-node/v{__version__}/python{sys.version_info.major}.{sys.version_info.minor}"


class StateUnavailable(NodeError):
    rpc_code = -32000


def _address(v: Any) -> bytes:
    return parse_data(v, length=20)


def _hash(v: Any) -> bytes:
    return parse_data(v, length=32)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("expected true or false")
    return v


def _block_tag(v: Any) -> int | str:
    if v in ("latest", "pending", "safe", "finalized", "earliest"):
        return str(v)
    if isinstance(v, str) and v.startswith("0x"):
        return parse_qty(v, max_bits=64)
    raise ValueError('expected a block number (hex) or "latest", "pending", "safe", "finalized", "earliest"')


def _tx_object(v: Any) -> Transaction:
    """A transaction given as raw hex (canonical encoding) or as a JSON object of its fields."""
    if isinstance(v, str):
        return Transaction.decode(parse_data(v, max_len=200_000))
    if not isinstance(v, dict):
        raise ValueError("expected raw transaction hex or a transaction object")
    fields = {"chainId", "nonce", "to", "method", "args", "readSet", "writeSet", "gasLimit", "publicKey", "signature"}
    unknown = set(v) - fields
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}")

    def f(name: str, parse: Any, default: Any = ...) -> Any:
        if name not in v:
            if default is ...:
                raise ValueError(f"missing field {name}")
            return default
        try:
            return parse(v[name])
        except (ValueError, TypeError) as e:
            raise ValueError(f"field {name}: {e}") from None

    def key_list(x: Any) -> tuple[bytes, ...]:
        if not isinstance(x, list):
            raise ValueError("expected an array of hex keys")
        return tuple(parse_data(k, max_len=keys.MAX_KEY_LEN) for k in x)

    def method(x: Any) -> str:
        if not isinstance(x, str):
            raise ValueError("expected a string")
        return x

    tx = Transaction(
        chain_id=f("chainId", lambda x: parse_qty(x, max_bits=64)),
        nonce=f("nonce", lambda x: parse_qty(x, max_bits=64)),
        to=f("to", _address),
        method=f("method", method),
        args=f("args", lambda x: parse_data(x, max_len=64 * 1024), b""),
        read_set=f("readSet", key_list, ()),
        write_set=f("writeSet", key_list, ()),
        gas_limit=f("gasLimit", lambda x: parse_qty(x, max_bits=64)),
        public_key=f("publicKey", lambda x: parse_data(x, length=32)),
        signature=f("signature", lambda x: parse_data(x, length=64)),
    )
    tx.check_fields()
    return tx


def build(node: Node) -> dict[str, Handler]:
    """The method table of ``node``."""
    store = node.store
    chain_id = node.cfg.node.chain_id

    def head_number() -> int:
        h = store.head
        return h.number if h else 0

    def resolve(tag: int | str) -> int | None:
        if tag == "earliest":
            return 0
        if isinstance(tag, str):
            return head_number()
        return tag

    def state_at(tag: int | str) -> None:
        n = resolve(tag)
        if n != head_number() and tag not in ("latest", "pending", "safe", "finalized"):
            raise StateUnavailable(f"state at block {n} is not available (this node keeps only the latest state)")

    # -- Ethereum -------------------------------------------------------------------------
    def web3_clientVersion(p: Params, c: Call) -> str:
        p.max_count(0)
        return CLIENT_VERSION

    def net_version(p: Params, c: Call) -> str:
        p.max_count(0)
        return str(chain_id)

    chain_id_hex = qty(chain_id)

    def eth_chainId(p: Params, c: Call) -> str:
        p.max_count(0)
        return chain_id_hex

    def eth_blockNumber(p: Params, c: Call) -> str:
        p.max_count(0)
        return qty(head_number())

    def stats_of(number: int) -> Any:
        raw = store.block_stats(number)
        return orjson.loads(raw) if raw is not None else None

    def _block(number: int | None, full: bool) -> dict[str, Any] | None:
        if number is None:
            return None
        h = store.header(number)
        if h is None:
            return None
        hashes = store.block_tx_hashes(number)
        if not full:
            b = eth.block_obj(h, hashes, False)
        else:
            txs = []
            for th in hashes:
                loc = store.tx_location(th)
                if loc is not None:
                    txs.append(Transaction.decode(loc.raw))
            b = eth.block_obj(h, txs, True)
        b["dubheStats"] = stats_of(number)
        return b

    def eth_getBlockByNumber(p: Params, c: Call) -> dict[str, Any] | None:
        p.max_count(2)
        tag = p.get(0, "block", _block_tag)
        full = p.opt(1, "fullTransactions", _bool, False)
        return _block(resolve(tag), full)

    def eth_getBlockByHash(p: Params, c: Call) -> dict[str, Any] | None:
        p.max_count(2)
        h = p.get(0, "blockHash", _hash)
        full = p.opt(1, "fullTransactions", _bool, False)
        return _block(store.number_of(h), full)

    def eth_getBalance(p: Params, c: Call) -> str:
        p.max_count(2)
        addr = p.get(0, "address", _address)
        state_at(p.opt(1, "block", _block_tag, _LATEST))
        raw = store.get(keys.balance_key(addr))
        return qty(_U64.unpack(raw)[0] if raw else 0)

    def eth_getTransactionCount(p: Params, c: Call) -> str:
        p.max_count(2)
        addr = p.get(0, "address", _address)
        tag = p.opt(1, "block", _block_tag, _LATEST)
        if tag == "pending":
            return qty(node.mempool.next_nonce(addr))
        state_at(tag)
        return qty(node.mempool.committed_nonce(addr))

    def eth_gasPrice(p: Params, c: Call) -> str:
        p.max_count(0)
        return "0x0"

    def eth_maxPriorityFeePerGas(p: Params, c: Call) -> str:
        p.max_count(0)
        return "0x0"

    def eth_syncing(p: Params, c: Call) -> bool:
        p.max_count(0)
        return False

    def eth_getTransactionReceipt(p: Params, c: Call) -> dict[str, Any] | None:
        p.max_count(1)
        th = p.get(0, "transactionHash", _hash)
        rc = store.receipt(th)
        loc = store.tx_location(th)
        if rc is None or loc is None:
            return None
        h = store.header(rc.block_number)
        if h is None:
            return None
        # cumulative gas and the first log index need the receipts before this one
        cumulative, first_log = 0, 0
        for prior in store.block_tx_hashes(rc.block_number)[: rc.index]:
            prc = store.receipt(prior)
            if prc is not None:
                cumulative += prc.gas_used
                first_log += len(prc.events)
        return eth.receipt_obj(rc, Transaction.decode(loc.raw), h, cumulative + rc.gas_used, first_log)

    # -- Dubhe ----------------------------------------------------------------------------
    def dubhe_sendTransaction(p: Params, c: Call) -> str:
        p.max_count(1)
        tx = p.get(0, "transaction", _tx_object)
        try:
            h = node.mempool.submit_tx(tx)
        except InvalidTransaction as e:
            node.metrics.tx_rejected.labels(e.cause).inc()
            raise
        node.metrics.mempool.set(len(node.mempool))
        return data(h)

    def dubhe_getTransaction(p: Params, c: Call) -> dict[str, Any] | None:
        p.max_count(1)
        th = p.get(0, "transactionHash", _hash)
        pending = node.mempool.get(th)
        if pending is not None:
            return {**eth.tx_obj(pending, None, None), "status": "pending"}
        loc = store.tx_location(th)
        if loc is None:
            return None
        return {**eth.tx_obj(Transaction.decode(loc.raw), store.header(loc.number), loc.index), "status": "included"}

    def dubhe_getReceipt(p: Params, c: Call) -> dict[str, Any] | None:
        p.max_count(1)
        rc = store.receipt(p.get(0, "transactionHash", _hash))
        if rc is None:
            return None
        return {**eth.dubhe_receipt_obj(rc), "blockStats": stats_of(rc.block_number)}

    def dubhe_getState(p: Params, c: Call) -> str | None:
        p.max_count(2)
        contract = p.get(0, "contract", _address)
        slot = p.get(1, "key", lambda v: parse_data(v, max_len=keys.MAX_SLOT_LEN))
        if not slot:
            raise InvalidParams("invalid parameter 1 (key): must not be empty")
        raw = store.get(keys.storage_key(contract, slot))
        return data(raw) if raw is not None else None

    def dubhe_getL1Head(p: Params, c: Call) -> Any:
        """``[chain?]``: the head of one followed L1 (``ethereum``/``sui``), or of all."""
        p.max_count(1)

        def chain(v: Any) -> str:
            if v not in node.l1.adapters:
                raise ValueError(f"not a followed chain; followed: {sorted(node.l1.adapters) or 'none'}")
            return str(v)

        name = p.opt(0, "chain", chain, "")
        heads = node.l1.heads()
        return heads[name] if name else heads

    def dubhe_status(p: Params, c: Call) -> dict[str, Any]:
        p.max_count(0)
        return node.status()

    # -- admin ----------------------------------------------------------------------------
    def dubhe_admin_pauseProduction(p: Params, c: Call) -> bool:
        p.max_count(0)
        node.paused = True
        return True

    def dubhe_admin_resumeProduction(p: Params, c: Call) -> bool:
        p.max_count(0)
        node.paused = False
        return True

    def dubhe_admin_setLogLevel(p: Params, c: Call) -> str:
        def level(v: Any) -> str:
            if v not in ("DEBUG", "INFO", "WARNING", "ERROR"):
                raise ValueError('expected "DEBUG", "INFO", "WARNING" or "ERROR"')
            return str(v)

        p.max_count(1)
        lv = p.get(0, "level", level)
        logging.getLogger().setLevel(lv)
        return lv

    # Every local function named for a JSON-RPC namespace is a method: the function name is the
    # wire name, so the table cannot drift from the definitions above.
    table: dict[str, Handler] = {
        name: fn
        for name, fn in locals().items()
        if callable(fn) and name.split("_")[0] in ("web3", "net", "eth", "dubhe")
    }
    table.update(node.pubsub.methods())
    table.update(node.extra_methods())
    return table


def uptime(started: float) -> float:
    return round(time.monotonic() - started, 3)


__all__ = ["CLIENT_VERSION", "build", "uptime"]
