"""The canonical codec and the JSON-RPC hex helpers at their edges: u64 values, every decode
error naming its field (items by index), trailing bytes counted, hex quantity and data limits at
N and N+1, and the messages the RPC layer shows after a parameter's name."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from node.core.codec import DecodeError, Reader, Writer, pack_u64, unpack_u64
from node.core.hexutil import data, parse_data, parse_qty, qty


def test_u64_state_values() -> None:
    assert pack_u64(1) == bytes(7) + b"\x01" and pack_u64(0) == bytes(8)
    assert unpack_u64(None) == 0  # an absent key reads as 0
    assert unpack_u64(pack_u64(2**64 - 1)) == 2**64 - 1 and unpack_u64(pack_u64(258)) == 258
    for bad in (-1, 2**64):
        with pytest.raises(struct.error):
            pack_u64(bad)


def decode_error(buf: bytes, read: Callable[[Reader], object]) -> str:
    with pytest.raises(DecodeError) as e:
        read(Reader(buf))
    return str(e.value)


@pytest.mark.parametrize(("buf", "read", "message"), [
    (b"\x00\x00\x01", lambda r: r.u32("count"), "count: truncated (need 4 bytes at offset 0)"),
    (bytes(7), lambda r: r.u64("nonce"), "nonce: truncated (need 8 bytes at offset 0)"),
    (b"", lambda r: r.u8("version"), "version: truncated (need 1 bytes at offset 0)"),
    (b"\x00\x00", lambda r: r.bytes_("args"), "args: truncated (need 4 bytes at offset 0)"),
    (b"\x00\x00\x00\x03ab", lambda r: r.bytes_("args"),
     "args: truncated (need 3 bytes at offset 4)"),
    (b"\x00\x00\x00\x05hello", lambda r: r.bytes_("args", 4),
     "args: length 5 exceeds the maximum 4"),
    (b"\x00\x00\x00", lambda r: r.bytes_list("set", 4, 4),
     "set: truncated (need 4 bytes at offset 0)"),
    (b"\x00\x00\x00\x05", lambda r: r.bytes_list("set", 4, 4), "set: 5 items exceed the maximum 4"),
    (Writer().bytes_list([b"ab", b"abcde"]).finish(), lambda r: r.bytes_list("set", 4, 4),
     "set[1]: length 5 exceeds the maximum 4"),
    (Writer().bytes_list([b"ab", b"cd"]).finish()[:-1], lambda r: r.bytes_list("set", 4, 4),
     "set[1]: truncated (need 2 bytes at offset 14)"),
    (Writer().u32(2).u32(1).finish(), lambda r: r.bytes_list("set", 4, 4),
     "set[0]: truncated (need 1 bytes at offset 8)"),
    (b"\x00\x00\x00\x02\xff\xfe", lambda r: r.str_("method"), "method: not valid UTF-8"),
])
def test_every_decode_error_names_its_field(buf: bytes, read: Callable[[Reader], object],
                                            message: str) -> None:
    assert decode_error(buf, read) == message


def test_lists_and_strings_read_back_within_their_limits() -> None:
    raw = Writer().bytes_list([b"abcd", b""]).str_("héllo").u8(7).finish()
    r = Reader(raw)
    assert r.bytes_list("set", 2, 4) == (b"abcd", b"")  # 2 items of at most 4 bytes: the limits
    assert r.str_("name", 6) == "héllo" and r.u8("v") == 7
    r.end()


def test_trailing_bytes_are_counted() -> None:
    r = Reader(b"\x01\x02\x03\x04\x05")
    r.u8("a")
    r.u8("b")
    with pytest.raises(DecodeError, match=r"^3 trailing bytes after the last field$"):
        r.end()


def test_hex_data_and_quantities_are_written_the_ethereum_way() -> None:
    assert data(b"\x01\xab") == "0x01ab" and data(b"") == "0x"
    assert qty(0) == "0x0" and qty(26) == "0x1a"
    with pytest.raises(ValueError, match=r"^quantity must be non-negative$"):
        qty(-1)


@pytest.mark.parametrize(("bits", "value", "ok"), [
    (256, 2**256 - 1, True), (256, 2**256, False), (8, 0xFF, True), (8, 0x100, False),
])
def test_quantities_are_bounded_by_max_bits(bits: int, value: int, ok: bool) -> None:
    kw = {} if bits == 256 else {"max_bits": bits}  # 256 is the default
    if ok:
        assert parse_qty(hex(value), **kw) == value
    else:
        with pytest.raises(ValueError, match=rf"^quantity exceeds {bits} bits$"):
            parse_qty(hex(value), **kw)


@pytest.mark.parametrize("bad", ["0x01", "1a", "0x", 26, None, "0xg"])
def test_bad_quantities_say_what_is_expected(bad: object) -> None:
    with pytest.raises(ValueError,
                       match=r"^expected a hex quantity like 0x1a \(no leading zeros\)$"):
        parse_qty(bad)


@pytest.mark.parametrize("bad", ["0x1", "0xzz", "abcd", "0Xab", 5, None, b"0x00"])
def test_bad_data_says_what_is_expected(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^expected 0x-prefixed hex bytes$"):
        parse_data(bad)


def test_data_length_limits() -> None:
    assert parse_data("0xABcd") == b"\xab\xcd" and parse_data("0x") == b""
    assert parse_data("0x0102", length=2) == b"\x01\x02"
    with pytest.raises(ValueError, match=r"^expected 2 bytes, got 3$"):
        parse_data("0x010203", length=2)
    for n in (1, 2):
        assert len(parse_data("0x" + "ab" * n, max_len=2)) == n
    with pytest.raises(ValueError, match=r"^3 bytes exceed the maximum 2$"):
        parse_data("0x" + "ab" * 3, max_len=2)
