"""Block commitments (node.core.block) written out as their formulas: list_root, the execution
digest and the header encoding, each recomputed here with hashlib from the documented layout,
plus a header's decode errors by field."""

from __future__ import annotations

import hashlib

import pytest

from node.core.block import (
    EXECUTION_DIGEST_DOMAIN,
    ZERO_HASH,
    BlockHeader,
    execution_digest,
    list_root,
)
from node.core.codec import DecodeError
from node.core.execution import Event, Receipt, TxStatus


def sha3(b: bytes) -> bytes:
    return hashlib.sha3_256(b).digest()


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def test_list_root_is_sha3_of_the_count_and_each_items_hash() -> None:
    assert list_root([]) == sha3(u32(0))
    assert list_root([b"a"]) == sha3(u32(1) + sha3(b"a"))
    assert list_root(iter([b"a", b"bc"])) == sha3(u32(2) + sha3(b"a") + sha3(b"bc"))
    assert list_root([b"bc", b"a"]) != list_root([b"a", b"bc"])


def test_the_execution_digest_covers_hashes_and_bodies_not_positions() -> None:
    r1 = Receipt(b"\x01" * 32, 5, 0, TxStatus.SUCCESS, 10, b"x", (Event(bytes(20), (), b""),), "")
    r2 = Receipt(b"\x02" * 32, 5, 1, TxStatus.REVERT, 20, b"", (), "no")
    assert EXECUTION_DIGEST_DOMAIN == b"dubhe-execution-v1"
    assert execution_digest([]) == sha3(b"dubhe-execution-v1" + u32(0))
    assert execution_digest(iter([r1, r2])) == sha3(
        b"dubhe-execution-v1" + u32(2) + r1.tx_hash + sha3(r1.encode_body())
        + r2.tx_hash + sha3(r2.encode_body()))
    moved = [Receipt(r.tx_hash, 99, r.index + 3, r.status, r.gas_used, r.return_data, r.events,
                     r.reason) for r in (r1, r2)]
    assert execution_digest(moved) == execution_digest([r1, r2])  # other block, other indices
    assert execution_digest([r2, r1]) != execution_digest([r1, r2])


H = BlockHeader(7, b"\x01" * 32, 1_234_567, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, 3, 900)
ENCODED = ((7).to_bytes(8, "big") + b"\x01" * 32 + (1_234_567).to_bytes(8, "big") + b"\x02" * 32
           + b"\x03" * 32 + b"\x04" * 32 + u32(3) + (900).to_bytes(8, "big"))


def test_the_header_encoding_and_hash() -> None:
    assert H.encode() == ENCODED and H.hash == sha3(ENCODED)
    assert BlockHeader.decode(ENCODED) == H and ZERO_HASH == bytes(32)


@pytest.mark.parametrize(("end", "field"), [
    (4, "number"), (8 + 31, "parent_hash"), (40 + 7, "timestamp_ms"), (48 + 31, "tx_root"),
    (80 + 31, "receipts_root"), (112 + 31, "state_root"), (144 + 3, "tx_count"),
    (148 + 7, "gas_used"),
])
def test_a_truncated_header_names_the_field(end: int, field: str) -> None:
    with pytest.raises(DecodeError, match=rf"^{field}: truncated"):
        BlockHeader.decode(ENCODED[:end])


def test_a_header_with_trailing_bytes_is_refused() -> None:
    with pytest.raises(DecodeError, match=r"^1 trailing bytes"):
        BlockHeader.decode(ENCODED + b"\x00")
