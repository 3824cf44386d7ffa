"""Frame encoder (differential against the websockets parser) and log filters."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from node.server.methods.subscriptions import parse_log_filter
from node.server.pubsub import LogFilter
from node.server.ws_text_frame import text_frame


@given(st.binary(max_size=70_000))
def test_text_frame_parses_back(payload: bytes) -> None:
    reader = StreamReader()
    reader.feed_data(text_frame(payload))
    reader.feed_eof()
    gen = Frame.parse(reader.read_exact, mask=False, max_size=None)
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        frame = stop.value
    assert frame.opcode == Opcode.TEXT and frame.fin and frame.data == payload


A = bytes(19) + b"\x01"
T1, T2 = b"\x11" * 32, b"\x22" * 32


def test_log_filter_semantics() -> None:
    assert LogFilter().matches(A, (T1,))
    f = parse_log_filter(
        {"address": "0x" + A.hex(), "topics": [None, ["0x" + T2.hex(), "0x" + T1.hex()]]}
    )
    assert f.matches(A, (T2, T1))
    assert not f.matches(A, (T1,))  # the second position is required
    assert not f.matches(bytes(20), (T2, T1))
    only_first = parse_log_filter({"topics": ["0x" + T1.hex()]})
    assert only_first.matches(A, (T1, T2)) and not only_first.matches(A, (T2,))
