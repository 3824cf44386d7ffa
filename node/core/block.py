"""Block headers and the roots committed in them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from node.core.codec import Reader, Writer, sha3

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
