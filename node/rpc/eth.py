"""Ethereum JSON-RPC result objects (ethereum/execution-apis schemas) built from node types.

Standard fields come first and carry exactly the standard formats, so unmodified clients
(web3.py, ethers, wallets) parse them; Dubhe-specific facts are extra fields that clients ignore
(``timestampMs``, ``dubheStatus``, ``revertReason``, ``returnData``, ``method``).

Divergences, by design: ``logsBloom`` is all zeros (the node has no Keccak; filter with
``logs`` subscriptions instead), gas price is 0 (no fees), ``timestamp`` is whole seconds of the
block's millisecond timestamp.
"""

from __future__ import annotations

from typing import Any

from node.core.block import BlockHeader
from node.core.execution import Event, Receipt, TxStatus
from node.core.hexutil import data, qty
from node.core.tx import Transaction

ZERO_BLOOM = "0x" + "00" * 256
ZERO_HASH_HEX = "0x" + "00" * 32
EMPTY_UNCLES = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"
ZERO_ADDR = "0x" + "00" * 20
GAS_LIMIT = 1_000_000_000


def header_obj(h: BlockHeader) -> dict[str, Any]:
    """The header fields shared by blocks and ``newHeads`` notifications (geth's format)."""
    return {
        "number": qty(h.number),
        "hash": data(h.hash),
        "parentHash": data(h.parent_hash),
        "nonce": "0x0000000000000000",
        "sha3Uncles": EMPTY_UNCLES,
        "logsBloom": ZERO_BLOOM,
        "transactionsRoot": data(h.tx_root),
        "stateRoot": data(h.state_root),
        "receiptsRoot": data(h.receipts_root),
        "miner": ZERO_ADDR,
        "difficulty": "0x0",
        "extraData": "0x",
        "gasLimit": qty(GAS_LIMIT),
        "gasUsed": qty(h.gas_used),
        "timestamp": qty(h.timestamp_ms // 1000),
        "mixHash": ZERO_HASH_HEX,
        "baseFeePerGas": "0x0",
        "timestampMs": qty(h.timestamp_ms),
    }


def tx_obj(tx: Transaction, h: BlockHeader | None, index: int | None) -> dict[str, Any]:
    return {
        "hash": data(tx.hash),
        "nonce": qty(tx.nonce),
        "blockHash": data(h.hash) if h else None,
        "blockNumber": qty(h.number) if h else None,
        "transactionIndex": qty(index) if index is not None else None,
        "from": data(tx.sender),
        "to": data(tx.to),
        "value": "0x0",
        "gas": qty(tx.gas_limit),
        "gasPrice": "0x0",
        "input": data(tx.args),
        "type": "0x0",
        "chainId": qty(tx.chain_id),
        "v": "0x0",
        "r": data(tx.signature[:32]),
        "s": data(tx.signature[32:]),
        "method": tx.method,
    }


def block_obj(h: BlockHeader, txs: list[Transaction] | list[bytes], full: bool) -> dict[str, Any]:
    """``txs``: the block's transactions (full=True) or their hashes (full=False)."""
    b = header_obj(h)
    b["totalDifficulty"] = "0x0"
    b["size"] = qty(
        len(h.encode()) + sum(len(t.raw) if isinstance(t, Transaction) else 0 for t in txs)
    )
    if full:
        b["transactions"] = [
            tx_obj(t, h, i) for i, t in enumerate(txs) if isinstance(t, Transaction)
        ]
    else:
        b["transactions"] = [data(t.hash if isinstance(t, Transaction) else t) for t in txs]
    b["uncles"] = []
    return b


def log_obj(
    ev: Event, h: BlockHeader, tx_hash: bytes, tx_index: int, log_index: int
) -> dict[str, Any]:
    return {
        "address": data(ev.address),
        "topics": [data(t) for t in ev.topics],
        "data": data(ev.data),
        "blockNumber": qty(h.number),
        "blockHash": data(h.hash),
        "transactionHash": data(tx_hash),
        "transactionIndex": qty(tx_index),
        "logIndex": qty(log_index),
        "removed": False,
    }


def receipt_obj(
    rc: Receipt, tx: Transaction, h: BlockHeader, cumulative_gas: int, first_log_index: int
) -> dict[str, Any]:
    return {
        "transactionHash": data(rc.tx_hash),
        "transactionIndex": qty(rc.index),
        "blockHash": data(h.hash),
        "blockNumber": qty(h.number),
        "from": data(tx.sender),
        "to": data(tx.to),
        "cumulativeGasUsed": qty(cumulative_gas),
        "gasUsed": qty(rc.gas_used),
        "effectiveGasPrice": "0x0",
        "contractAddress": None,
        "logs": [
            log_obj(ev, h, rc.tx_hash, rc.index, first_log_index + i)
            for i, ev in enumerate(rc.events)
        ],
        "logsBloom": ZERO_BLOOM,
        "status": "0x1" if rc.status == TxStatus.SUCCESS else "0x0",
        "type": "0x0",
        "dubheStatus": rc.status.name.lower(),
        "revertReason": rc.reason,
        "returnData": data(rc.return_data),
    }


def dubhe_receipt_obj(rc: Receipt) -> dict[str, Any]:
    """The node's own receipt form (dubhe_getReceipt)."""
    return {
        "transactionHash": data(rc.tx_hash),
        "blockNumber": qty(rc.block_number),
        "index": rc.index,
        "status": rc.status.name.lower(),
        "gasUsed": rc.gas_used,
        "returnData": data(rc.return_data),
        "events": [
            {
                "address": data(e.address),
                "topics": [data(t) for t in e.topics],
                "data": data(e.data),
            }
            for e in rc.events
        ],
        "reason": rc.reason,
    }
