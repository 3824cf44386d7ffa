"""Canonical binary encoding used for hashing and storage.

The format is deliberately simple so it can be re-implemented by any client:

* unsigned integers: fixed-width big-endian (``u8``, ``u32``, ``u64``);
* byte strings: ``u32`` length, then the bytes;
* lists: ``u32`` count, then each item.

Decoding is strict: trailing bytes, truncated fields and oversize lengths are errors
(:class:`DecodeError`), never silently accepted, so one value has exactly one encoding.
"""

from __future__ import annotations

import hashlib
import struct

_U32 = struct.Struct(">I")
#: Big-endian u64: canonical integers, and the state's u64 values (nonces, balances, counters).
U64 = struct.Struct(">Q")


def pack_u64(value: int) -> bytes:
    """``value`` as 8 big-endian bytes (raises ``struct.error`` outside 0..2**64-1)."""
    return U64.pack(value)


def unpack_u64(raw: bytes | None) -> int:
    """A u64 state value (a nonce, a balance, a counter); an absent key (``None``) reads as 0."""
    return 0 if raw is None else int(U64.unpack(raw)[0])


class DecodeError(ValueError):
    """Malformed canonical encoding; the message names the field."""


def sha3(data: bytes) -> bytes:
    """The node's hash function (SHA3-256, FIPS 202)."""
    return hashlib.sha3_256(data).digest()


class Writer:
    """Appends canonical fields to a buffer."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, v: int) -> Writer:
        self._parts.append(bytes((v,)))
        return self

    def u32(self, v: int) -> Writer:
        self._parts.append(_U32.pack(v))
        return self

    def u64(self, v: int) -> Writer:
        self._parts.append(U64.pack(v))
        return self

    def raw(self, b: bytes) -> Writer:
        """Fixed-size field: the reader must know its length."""
        self._parts.append(b)
        return self

    def bytes_(self, b: bytes) -> Writer:
        self._parts.append(_U32.pack(len(b)))
        self._parts.append(b)
        return self

    def str_(self, s: str) -> Writer:
        return self.bytes_(s.encode())

    def bytes_list(self, items: tuple[bytes, ...] | list[bytes]) -> Writer:
        self._parts.append(_U32.pack(len(items)))
        for it in items:
            self.bytes_(it)
        return self

    def finish(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Reads canonical fields; every method names the field it reads in its errors."""

    __slots__ = ("_buf", "_pos")

    def __init__(self, buf: bytes) -> None:
        self._buf = memoryview(buf)
        self._pos = 0

    def _take(self, n: int, field: str) -> bytes:
        end = self._pos + n
        if end > len(self._buf):
            raise DecodeError(f"{field}: truncated (need {n} bytes at offset {self._pos})")
        out = bytes(self._buf[self._pos : end])
        self._pos = end
        return out

    def u8(self, field: str) -> int:
        return self._take(1, field)[0]

    def u32(self, field: str) -> int:
        return int(_U32.unpack(self._take(4, field))[0])

    def u64(self, field: str) -> int:
        return int(U64.unpack(self._take(8, field))[0])

    def raw(self, n: int, field: str) -> bytes:
        return self._take(n, field)

    def bytes_(self, field: str, max_len: int = 1 << 24) -> bytes:
        n = self.u32(field)
        if n > max_len:
            raise DecodeError(f"{field}: length {n} exceeds the maximum {max_len}")
        return self._take(n, field)

    def str_(self, field: str, max_len: int = 1 << 16) -> str:
        try:
            return self.bytes_(field, max_len).decode()
        except UnicodeDecodeError as e:
            raise DecodeError(f"{field}: not valid UTF-8") from e

    def bytes_list(self, field: str, max_items: int, max_len: int) -> tuple[bytes, ...]:
        n = self.u32(field)
        if n > max_items:
            raise DecodeError(f"{field}: {n} items exceed the maximum {max_items}")
        return tuple(self.bytes_(f"{field}[{i}]", max_len) for i in range(n))

    def end(self) -> None:
        if self._pos != len(self._buf):
            raise DecodeError(f"{len(self._buf) - self._pos} trailing bytes after the last field")
