"""The sans-I/O WebSocket tracker: RFC 6455 §5.2 framing, no sockets."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from lab.proxy.stream import Direction
from lab.proxy.ws_tracker import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    Header,
    Payload,
    Raw,
    WsTracker,
    build_frame,
    close_frame,
)

REQUEST = (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
RESPONSE = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")


def frames_of(pieces: list[Raw | Header | Payload]) -> list[tuple[int, int]]:
    return [(p.frame.opcode, p.frame.length) for p in pieces if isinstance(p, Header)]


class TestBaseFramingProtocol:  # RFC 6455 §5.2
    def test_server_frames_after_101(self) -> None:
        t = WsTracker(Direction.DOWNSTREAM)
        stream = RESPONSE + build_frame(OP_TEXT, b"hello", mask_key=None) + build_frame(
            OP_BINARY, b"\x00" * 300, mask_key=None) + build_frame(
            OP_BINARY, b"\x01" * 70_000, mask_key=None)
        pieces = t.feed(stream)
        assert isinstance(pieces[0], Raw) and pieces[0].data == RESPONSE
        assert frames_of(pieces) == [(OP_TEXT, 5), (OP_BINARY, 300), (OP_BINARY, 70_000)]
        assert b"".join(p.data for p in pieces) == stream
        assert t.at_boundary

    def test_masked_client_frames_after_upgrade_request(self) -> None:
        t = WsTracker(Direction.UPSTREAM)
        frame = build_frame(OP_PING, b"p", mask_key=b"\x01\x02\x03\x04")
        pieces = t.feed(REQUEST + frame)
        headers = [p for p in pieces if isinstance(p, Header)]
        assert len(headers) == 1 and headers[0].frame.masked and headers[0].frame.opcode == OP_PING
        assert len(headers[0].data) == 2 + 4  # header + mask key

    def test_zero_length_frame_completes_at_once(self) -> None:
        t = WsTracker(Direction.DOWNSTREAM)
        t.feed(RESPONSE)
        pieces = t.feed(build_frame(OP_PING, b"", mask_key=None))
        assert isinstance(pieces[-1], Payload) and pieces[-1].last and pieces[-1].data == b""
        assert t.at_boundary

    def test_close_frame_payload(self) -> None:
        frame = close_frame(1012, "restart", mask_key=None)
        assert frame[:2] == bytes([0x88, 9]) and frame[2:4] == (1012).to_bytes(2, "big")
        masked = close_frame(1001, "", mask_key=b"\xff\xff\xff\xff")
        assert masked[1] == 0x80 | 2
        assert bytes(b ^ 0xFF for b in masked[6:8]) == (1001).to_bytes(2, "big")


class TestSniffing:
    def test_plain_http_switches_off(self) -> None:
        t = WsTracker(Direction.UPSTREAM)
        pieces = t.feed(b"POST /rpc HTTP/1.1\r\n\r\n{}")
        assert not t.active and b"".join(p.data for p in pieces) == b"POST /rpc HTTP/1.1\r\n\r\n{}"

    def test_get_without_upgrade_switches_off(self) -> None:
        t = WsTracker(Direction.UPSTREAM)
        t.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert not t.active

    def test_binary_protocol_switches_off_at_first_byte(self) -> None:
        t = WsTracker(Direction.DOWNSTREAM)
        t.feed(b"\x00\x01")
        assert not t.active

    def test_non_101_response_switches_off(self) -> None:
        t = WsTracker(Direction.DOWNSTREAM)
        t.feed(b"HTTP/1.1 200 OK\r\n\r\n")
        assert not t.active


@given(sizes=st.lists(st.one_of(st.integers(0, 130), st.integers(0, 70_000)), max_size=20),
       cuts=st.lists(st.integers(1, 5000),
       max_size=40), masked=st.booleans())
def test_any_split_gives_the_same_frames_and_bytes(sizes: list[int], cuts: list[int],
                                                    masked: bool) -> None:
    direction = Direction.UPSTREAM if masked else Direction.DOWNSTREAM
    head = REQUEST if masked else RESPONSE
    frames = [build_frame(OP_BINARY, os.urandom(n), mask_key=b"abcd" if masked else None)
              for n in sizes]
    stream = head + b"".join(frames) + close_frame(1000, mask_key=b"abcd" if masked else None)
    whole = WsTracker(direction).feed(stream)
    split_tracker = WsTracker(direction)
    skip_tracker = WsTracker(direction)
    pieces: list[Raw | Header | Payload] = []
    pos = 0
    for cut in [*cuts, len(stream)]:
        part = stream[pos:pos + cut]
        pieces += split_tracker.feed(part)
        skip_tracker.skip(part)
        assert skip_tracker.at_boundary == split_tracker.at_boundary
        pos += len(part)
        if pos >= len(stream):
            break
    pieces += split_tracker.feed(stream[pos:])
    skip_tracker.skip(stream[pos:])
    assert b"".join(p.data for p in pieces) == stream
    assert (
        frames_of(pieces) == frames_of(whole) == [(OP_BINARY, n) for n in sizes] + [(OP_CLOSE, 2)]
    )
    assert split_tracker.at_boundary and skip_tracker.at_boundary


def test_clone_is_independent() -> None:
    t = WsTracker(Direction.DOWNSTREAM)
    t.feed(RESPONSE + build_frame(OP_TEXT, b"abcdef", mask_key=None)[:4])
    c = t.clone()
    c.feed(b"cdef")
    assert c.at_boundary and not t.at_boundary
