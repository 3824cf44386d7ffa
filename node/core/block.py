"""Block headers, the roots committed in them, and the execution digest.

What each commitment covers (all SHA3-256; ``list_root`` below):

* ``tx_root`` = ``list_root`` of the block's raw signed transactions, in block order.
* ``receipts_root`` = ``list_root`` of the receipts' canonical encodings
  (:meth:`~node.core.execution.Receipt.encode`), which include the **block number and the
  index** of each transaction: two nodes that executed the same transactions identically but in
  differently numbered blocks never agree on it.
* ``state_root`` commits to the whole state after the block (an additive multiset hash, see
  ``node.state.chain_store``): equal only when the whole history produced the same state.
* The header hash covers all of the above plus number, parent hash, timestamp, count, gas.
* The **execution digest** (:func:`execution_digest`, not in the header, stored beside it)
  covers only what executing the block's transactions produced, in order: each transaction's
  hash and its receipt *body* (status, gas used, return data, events, reason; no block number,
  no index). Nodes that ran the same transactions in the same order agree on it whatever their
  block numbers, timestamps or strategies: one value per block to compare executions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from node.core.codec import Reader, Writer, sha3
from node.core.execution import Receipt

ZERO_HASH = bytes(32)


def list_root(items: Iterable[bytes]) -> bytes:
    """Commitment to an ordered list: SHA3 over the count and each item's hash.

    Used for ``tx_root`` (raw transactions) and ``receipts_root`` (encoded receipts). Order matters;
    an empty list has a fixed root.
    """
    w = Writer()
    n = 0
    for it in items:
        w.raw(sha3(it))
        n += 1
    return sha3(Writer().u32(n).finish() + w.finish())


EXECUTION_DIGEST_DOMAIN = b"dubhe-execution-v1"


def execution_digest(receipts: Iterable[Receipt]) -> bytes:
    """``SHA3(domain + u32(n) + for each receipt in block order: tx hash + SHA3(body))``.

    ``body`` is :meth:`Receipt.encode_body` (status, gas used, return data, events, reason):
    the digest is independent of block numbers and positions' numbering, so two nodes compare
    their executions of the same ordered transactions with one value per block."""
    w = Writer()
    n = 0
    for rc in receipts:
        w.raw(rc.tx_hash).raw(sha3(rc.encode_body()))
        n += 1
    return sha3(EXECUTION_DIGEST_DOMAIN + Writer().u32(n).finish() + w.finish())


@dataclass(frozen=True)
class BlockHeader:
    number: int
    parent_hash: bytes
    timestamp_ms: int
    tx_root: bytes
    receipts_root: bytes
    state_root: bytes
    tx_count: int
    gas_used: int

    def encode(self) -> bytes:
        return (
            Writer()
            .u64(self.number)
            .raw(self.parent_hash)
            .u64(self.timestamp_ms)
            .raw(self.tx_root)
            .raw(self.receipts_root)
            .raw(self.state_root)
            .u32(self.tx_count)
            .u64(self.gas_used)
            .finish()
        )

    @cached_property
    def hash(self) -> bytes:
        return sha3(self.encode())

    @staticmethod
    def decode(raw: bytes) -> BlockHeader:
        r = Reader(raw)
        h = BlockHeader(
            number=r.u64("number"),
            parent_hash=r.raw(32, "parent_hash"),
            timestamp_ms=r.u64("timestamp_ms"),
            tx_root=r.raw(32, "tx_root"),
            receipts_root=r.raw(32, "receipts_root"),
            state_root=r.raw(32, "state_root"),
            tx_count=r.u32("tx_count"),
            gas_used=r.u64("gas_used"),
        )
        r.end()
        return h
