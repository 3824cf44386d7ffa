"""Shared per-link state of the WebSocket-aware toxics (not a toxic itself)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from lab.proxy.stream import Chunk
from lab.proxy.toxics.base import ToxicStub
from lab.proxy.ws_tracker import WsTracker


@dataclass
class WsState:
    """Where the toxic's input stands in the frame stream, plus counters toxics may use."""

    tracker: WsTracker
    data_frames: int = 0  # data frames seen (first fragments and continuations)
    messages: int = 0  # messages started
    selected: bool = False  # ws_message: the current message was picked
    extra: dict[str, int] = field(default_factory=dict)


def ws_state(stub: ToxicStub) -> WsState:
    """New state for a WebSocket toxic, positioned where the toxic's input starts.

    The link's writer tracks frames from the first byte of every connection, and a toxic is
    always appended at the end of the chain, so a copy of the writer's tracker is exactly at the
    toxic's input, even on a connection that was open long before the toxic was added.
    """
    return WsState(tracker=stub.host.tracker_snapshot())


async def frame_chunks(stub: ToxicStub) -> AsyncIterator[Chunk]:
    """The chunks a WebSocket toxic has to look into (feed them to ``stub.state.tracker``).

    Ends the link when the input ends, and passes chunks through untouched while the stream is
    not a WebSocket (the tracker is not active), so each toxic only handles frames.
    """
    state = stub.state
    assert isinstance(state, WsState)
    while True:
        chunk = await stub.recv()
        if chunk is None:
            stub.close()
            return
        if not state.tracker.active:
            stub.send(chunk)
            continue
        yield chunk
