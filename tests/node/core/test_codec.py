from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.core.block import BlockHeader, list_root
from node.core.codec import DecodeError, Reader, Writer
from node.core.execution import Event, Receipt, TxStatus
from node.core.hexutil import parse_data, parse_qty, qty


@given(
    st.integers(0, 2**64 - 1), st.binary(max_size=64), st.lists(st.binary(max_size=8), max_size=4)
)
def test_writer_reader_roundtrip(n: int, b: bytes, items: list[bytes]) -> None:
    raw = Writer().u64(n).bytes_(b).bytes_list(items).finish()
    r = Reader(raw)
    assert r.u64("n") == n
    assert r.bytes_("b") == b
    assert r.bytes_list("items", 10, 100) == tuple(items)
    r.end()


def test_reader_limits_name_the_field() -> None:
    raw = Writer().bytes_list([b"a"] * 5).finish()
    with pytest.raises(DecodeError, match="keys: 5 items exceed the maximum 3"):
        Reader(raw).bytes_list("keys", 3, 10)


@given(
    st.builds(
        Receipt,
        st.binary(min_size=32, max_size=32),
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**32 - 1),
        st.sampled_from(list(TxStatus)),
        st.integers(0, 2**64 - 1),
        st.binary(max_size=40),
        st.lists(
            st.builds(
                Event,
                st.binary(min_size=20, max_size=20),
                st.lists(st.binary(min_size=32, max_size=32), max_size=4).map(tuple),
                st.binary(max_size=20),
            ),
            max_size=3,
        ).map(tuple),
        st.text(max_size=20),
    )
)
def test_receipt_roundtrip(rc: Receipt) -> None:
    assert Receipt.decode(rc.encode()) == rc


def test_header_roundtrip_and_hash() -> None:
    h = BlockHeader(5, b"\x01" * 32, 1234, list_root([b"a"]), list_root([]), b"\x02" * 32, 1, 10)
    back = BlockHeader.decode(h.encode())
    assert back == h and back.hash == h.hash
    assert list_root([b"a", b"b"]) != list_root([b"b", b"a"])


@pytest.mark.parametrize("bad", ["0x", "0x01", "1", "0xg", 5, None])
def test_parse_qty_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_qty(bad)


def test_hex_helpers() -> None:
    assert qty(0) == "0x0" and qty(255) == "0xff"
    assert parse_qty("0x1a") == 26
    assert parse_data("0x00ff", length=2) == b"\x00\xff"
    with pytest.raises(ValueError, match="expected 20 bytes"):
        parse_data("0x00", length=20)
