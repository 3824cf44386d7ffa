"""RFC 6455 checks on client-to-server frames that aiohttp's reader does not make (pure, no I/O).

:class:`ClientFrameCheck` follows the frame boundaries of a server's incoming byte stream
(payloads are skipped, not copied) and reports the first frame that must *fail the WebSocket
connection* with 1002 (protocol error):

* an unmasked frame: "a server MUST close the connection upon receiving a frame that is not
  masked" (section 5.1);
* a Close frame carrying 1005, 1006 or 1015: these codes "MUST NOT be set as a status code in a
  Close control frame by an endpoint" (section 7.4.1).

aiohttp already refuses the other invalid close codes, bad UTF-8, oversize messages and the rest;
this check runs in front of it on the same bytes.
"""

from __future__ import annotations

#: Close codes reserved for local use that never appear on the wire (RFC 6455 section 7.4.1).
RESERVED_CLOSE_CODES = frozenset({1005, 1006, 1015})

_OP_CLOSE = 0x8


class ClientFrameCheck:
    """Feed the bytes a server received, in order; :meth:`feed` returns ``(n, problem)``: the
    first ``n`` bytes of this chunk may go on to the frame parser, and ``problem`` (when not
    None) says why the connection must fail with 1002. After a problem, every later call
    returns ``(0, problem)``."""

    __slots__ = ("_close", "_hdr", "_key", "_left", "_opcode", "problem")

    def __init__(self) -> None:
        self._hdr = bytearray()  # header bytes of the frame being read
        self._left = -1  # payload bytes still to skip; -1 while reading a header
        self._opcode = 0
        self._key = b""
        self._close = bytearray()  # the first two (unmasked) payload bytes of a Close frame
        self.problem: str | None = None

    def feed(self, data: bytes) -> tuple[int, str | None]:
        if self.problem is not None:
            return 0, self.problem
        i, n = 0, len(data)
        start = 0 if self._hdr else -1  # where the current frame began in this chunk
        while i < n:
            if self._left < 0:  # header
                if not self._hdr:
                    start = i
                need = self._header_len()
                take = min(need - len(self._hdr), n - i)
                self._hdr += data[i : i + take]
                i += take
                if len(self._hdr) < self._header_len():
                    continue  # (the length grows once byte 2 is known)
                if not self._hdr[1] & 0x80:
                    return self._fail(start, "client frame not masked (RFC 6455 section 5.1)")
                self._opcode = self._hdr[0] & 0x0F
                self._left = self._payload_len()
                self._key = bytes(self._hdr[-4:])
                self._hdr.clear()
                self._close.clear()
                if self._left == 0:
                    self._left = -1
                continue
            take = min(self._left, n - i)
            if self._opcode == _OP_CLOSE and len(self._close) < 2:
                for b in data[i : i + min(take, 2 - len(self._close))]:
                    self._close.append(b ^ self._key[len(self._close)])
                if len(self._close) == 2:
                    code = int.from_bytes(self._close, "big")
                    if code in RESERVED_CLOSE_CODES:
                        return self._fail(
                            start, f"close code {code} must not be sent (RFC 6455 section 7.4.1)"
                        )
            self._left -= take
            i += take
            if self._left == 0:
                self._left = -1
        return n, None

    def _fail(self, start: int, problem: str) -> tuple[int, str]:
        self.problem = problem
        return max(start, 0), problem

    def _header_len(self) -> int:
        if len(self._hdr) < 2:
            return 2
        b = self._hdr[1]
        ext = {126: 2, 127: 8}.get(b & 0x7F, 0)
        return 2 + ext + (4 if b & 0x80 else 0)

    def _payload_len(self) -> int:
        code = self._hdr[1] & 0x7F
        if code == 126:
            return int.from_bytes(self._hdr[2:4], "big")
        if code == 127:
            return int.from_bytes(self._hdr[2:10], "big")
        return code


def close_frame(code: int, reason: str) -> bytes:
    """An unmasked server Close frame (control frames carry at most 125 payload bytes)."""
    payload = code.to_bytes(2, "big") + reason.encode()[:123]
    return bytes((0x88, len(payload))) + payload
