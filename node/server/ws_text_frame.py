"""RFC 6455 server-to-client frame encoding (pure, no I/O).

Used for the notification fast path: a whole unmasked, unfragmented text frame is built once and
written to the transport in one call, so frames never interleave with frames aiohttp writes.
Servers must not mask (RFC 6455 section 5.1); compression is off on the node's sockets.
"""

from __future__ import annotations

import struct

_H16 = struct.Struct(">BBH")
_H64 = struct.Struct(">BBQ")
_FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """A FIN text frame carrying ``payload`` (UTF-8 JSON)."""
    n = len(payload)
    if n < 126:
        return bytes((_FIN_TEXT, n)) + payload
    if n < 65536:
        return _H16.pack(_FIN_TEXT, 126, n) + payload
    return _H64.pack(_FIN_TEXT, 127, n) + payload
