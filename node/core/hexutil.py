"""Ethereum JSON-RPC hex conventions (ethereum/execution-apis ``uint`` / ``bytes`` schemas).

Quantities are ``0x``-prefixed, lowercase, without leading zeros (``0x0`` for zero); data is
``0x``-prefixed with two hex digits per byte. Parsers are strict and raise ``ValueError`` with a
message the RPC layer puts after the parameter name.
"""

from __future__ import annotations

import re

_QTY = re.compile(r"^0x(0|[1-9a-fA-F][0-9a-fA-F]*)$")
_DATA = re.compile(r"0x[0-9a-fA-F]*")  # (fullmatch, plus an even length: a fast scan)


def qty(n: int) -> str:
    """Encode a non-negative integer as an Ethereum quantity."""
    if n < 0:
        raise ValueError("quantity must be non-negative")
    return hex(n)


def data(b: bytes) -> str:
    return "0x" + b.hex()


def parse_qty(s: object, *, max_bits: int = 256) -> int:
    if not isinstance(s, str) or not _QTY.match(s):
        raise ValueError("expected a hex quantity like 0x1a (no leading zeros)")
    v = int(s, 16)
    if v.bit_length() > max_bits:
        raise ValueError(f"quantity exceeds {max_bits} bits")
    return v


def parse_data(s: object, *, length: int | None = None, max_len: int | None = None) -> bytes:
    if not isinstance(s, str) or len(s) % 2 or not _DATA.fullmatch(s):
        raise ValueError("expected 0x-prefixed hex bytes")
    b = bytes.fromhex(s[2:])
    if length is not None and len(b) != length:
        raise ValueError(f"expected {length} bytes, got {len(b)}")
    if max_len is not None and len(b) > max_len:
        raise ValueError(f"{len(b)} bytes exceed the maximum {max_len}")
    return b
