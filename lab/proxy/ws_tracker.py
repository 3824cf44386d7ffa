"""Sans-I/O WebSocket stream tracker: bytes in, pieces out (RFC 6455 §5.2), no sockets.

One :class:`WsTracker` follows one direction of one TCP connection. It first sniffs the HTTP
upgrade (a ``GET`` with ``Upgrade: websocket`` upstream, a ``101`` response downstream); if the
stream is not a WebSocket it switches itself off and passes everything as :class:`Raw`. After the
handshake it cuts the byte stream at frame boundaries::

    tracker = WsTracker(Direction.DOWNSTREAM)
    for piece in tracker.feed(data):
        ...  # Raw(data) | Header(raw, frame) | Payload(data, frame, last)

Pieces concatenate back to exactly the input. The tracker never unmasks or buffers payloads; it
only buffers an incomplete frame header (at most 14 bytes) or HTTP head (at most 16 KiB).
"""

from __future__ import annotations

import copy
import enum
import struct
from dataclasses import dataclass

from lab.proxy.stream import Direction

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
DATA_OPCODES = frozenset({OP_CONT, OP_TEXT, OP_BINARY})
MAX_HTTP_HEAD = 16 * 1024


@dataclass(frozen=True, slots=True)
class Frame:
    """A parsed frame header."""

    fin: bool
    opcode: int
    masked: bool
    length: int

    @property
    def is_data(self) -> bool:
        return self.opcode in DATA_OPCODES

    @property
    def is_control(self) -> bool:
        return self.opcode >= 0x8


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes outside WebSocket framing (the HTTP handshake, or a stream that is not WebSocket)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Header:
    """The header bytes of ``frame`` exactly as on the wire."""

    data: bytes
    frame: Frame


@dataclass(frozen=True, slots=True)
class Payload:
    """Part of ``frame``'s payload (still masked); ``last`` marks the frame's final piece."""

    data: bytes
    frame: Frame
    last: bool


Piece = Raw | Header | Payload


class _State(enum.Enum):
    SNIFF = 1
    FRAMES = 2
    OFF = 3


class WsTracker:
    """Follows one direction; see the module docstring. Copy it with :meth:`clone`."""

    def __init__(self, direction: Direction) -> None:
        self.direction = direction
        self._state = _State.SNIFF
        self._head = b""  # buffered HTTP head or partial frame header
        self._frame: Frame | None = None  # frame whose payload is being read
        self._left = 0  # payload bytes left in that frame

    def clone(self) -> WsTracker:
        """An independent copy at the same stream position."""
        return copy.copy(self)

    @property
    def active(self) -> bool:
        """True while the stream may still be (or is) WebSocket."""
        return self._state is not _State.OFF

    @property
    def framing(self) -> bool:
        """True once past the handshake of a WebSocket stream."""
        return self._state is _State.FRAMES

    @property
    def at_boundary(self) -> bool:
        """True when the next byte starts a frame (safe point to inject or cut cleanly)."""
        return self._state is _State.FRAMES and self._frame is None and not self._head

    def skip(self, data: bytes) -> None:
        """Advance over ``data`` without building pieces.

        This runs on every write of every WebSocket connection through the proxy, so whole
        frames are stepped over in place; only a header split across writes takes the slow path.
        """
        if self._state is _State.OFF:
            return
        if self._state is not _State.FRAMES or self._head:
            self.feed(data)
            return
        n = len(data)
        pos = 0
        if self._frame is not None:
            if n <= self._left:
                self._left -= n
                if self._left == 0:
                    self._frame = None
                return
            pos = self._left
            self._frame = None
            self._left = 0
        while n - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            ln = b1 & 0x7F
            size = 2 + (2 if ln == 126 else 8 if ln == 127 else 0) + (4 if b1 & 0x80 else 0)
            if n - pos < size:
                break
            if ln == 126:
                ln = int.from_bytes(data[pos + 2 : pos + 4], "big")
            elif ln == 127:
                ln = int.from_bytes(data[pos + 2 : pos + 10], "big")
            pos += size
            if n - pos >= ln:
                pos += ln
                continue
            self._frame = Frame(fin=bool(b0 & 0x80), opcode=b0 & 0x0F, masked=bool(b1 & 0x80),
                                length=ln)
            self._left = ln - (n - pos)
            return
        if pos < n:
            self.feed(data[pos:])  # a header split across writes: buffer it

    def feed(self, data: bytes) -> list[Piece]:
        """Cut ``data`` into pieces; see the module docstring."""
        out: list[Piece] = []
        pos = 0
        n = len(data)
        while pos < n:
            if self._state is _State.OFF:
                out.append(Raw(data[pos:]))
                break
            if self._state is _State.SNIFF:
                pos = self._sniff(data, pos, out)
                continue
            if self._frame is not None:
                take = min(self._left, n - pos)
                self._left -= take
                frame = self._frame
                if self._left == 0:
                    self._frame = None
                out.append(Payload(data[pos : pos + take], frame, self._left == 0))
                pos += take
                continue
            pos = self._header(data, pos, out)
        return out

    def _sniff(self, data: bytes, pos: int, out: list[Piece]) -> int:
        head = self._head + data[pos:]
        prefix = b"GET " if self.direction is Direction.UPSTREAM else b"HTTP/1.1 101"
        if not (head.startswith(prefix) or prefix.startswith(head)):
            self._off(data, pos, out)
            return len(data)
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > MAX_HTTP_HEAD:
                self._off(data, pos, out)
                return len(data)
            self._head = head
            out.append(Raw(data[pos:]))
            return len(data)
        end += 4
        consumed = end - len(self._head)  # bytes of ``data`` that belong to the head
        text = head[:end].lower()
        upgrade = self.direction is Direction.DOWNSTREAM or b"\nupgrade: websocket" in text
        self._head = b""
        out.append(Raw(data[pos : pos + consumed]))
        self._state = _State.FRAMES if upgrade else _State.OFF
        return pos + consumed

    def _off(self, data: bytes, pos: int, out: list[Piece]) -> None:
        self._state = _State.OFF
        self._head = b""
        out.append(Raw(data[pos:]))

    def _header(self, data: bytes, pos: int, out: list[Piece]) -> int:
        need = 2
        buf = self._head + data[pos : pos + 14]
        if len(buf) >= 2:
            b1 = buf[1]
            ln = b1 & 0x7F
            need = 2 + (2 if ln == 126 else 8 if ln == 127 else 0) + (4 if b1 & 0x80 else 0)
        if len(buf) < need:
            self._head = buf
            return len(data)
        raw = buf[:need]
        used = need - len(self._head)
        self._head = b""
        b0, b1 = raw[0], raw[1]
        ln = b1 & 0x7F
        if ln == 126:
            ln = struct.unpack("!H", raw[2:4])[0]
        elif ln == 127:
            ln = struct.unpack("!Q", raw[2:10])[0]
        frame = Frame(fin=bool(b0 & 0x80), opcode=b0 & 0x0F, masked=bool(b1 & 0x80), length=ln)
        out.append(Header(raw, frame))
        if ln == 0:
            out.append(Payload(b"", frame, True))
        else:
            self._frame = frame
            self._left = ln
        return pos + used


def build_frame(opcode: int, payload: bytes, *, mask_key: bytes | None, fin: bool = True) -> bytes:
    """Serialize one frame; pass a 4-byte ``mask_key`` for client-to-server frames."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mask_bit = 0x80 if mask_key is not None else 0
    if n < 126:
        head = bytes([b0, mask_bit | n])
    elif n < 1 << 16:
        head = bytes([b0, mask_bit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mask_bit | 127]) + struct.pack("!Q", n)
    if mask_key is None:
        return head + payload
    masked = bytes(b ^ mask_key[i % 4] for i, b in enumerate(payload))
    return head + mask_key + masked


def close_frame(code: int, reason: str = "", *, mask_key: bytes | None) -> bytes:
    """A Close frame with ``code`` and ``reason`` (masked when ``mask_key`` is given)."""
    payload = struct.pack("!H", code) + reason.encode()[:123]
    return build_frame(OP_CLOSE, payload, mask_key=mask_key)
