"""``ws_close`` (lab extra, WebSocket-aware): send a Close frame with a chosen code, then end.

``delay`` ms after the toxic meets a link (it was added or activated, or the connection
opened, whichever is later), at the next frame boundary, the proxy sends a Close
frame with ``code`` (e.g. 1001 going away, 1011 internal error, 1012 service restart, 1013 try
again later) and ``reason`` in this direction (masked when going upstream), drops whatever
follows in this direction and half-closes (FIN) towards the receiver, which therefore sees a
clean closing handshake with that code. Its reply still travels the other way.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.stream import Chunk, Direction, End
from lab.proxy.toxics.base import TimedOut, Toxic, ToxicStub, register
from lab.proxy.toxics.wsbase import WsState, ws_state
from lab.proxy.ws_tracker import Header, close_frame


@register("ws_close")
@dataclass
class WsCloseToxic(Toxic):
    moment = True
    code: int = 1001
    reason: str = ""
    delay: int = 0  # ms after the toxic met this link

    def new_state(self, stub: ToxicStub) -> object:
        return ws_state(stub)

    def _inject(self, stub: ToxicStub, ts: float) -> None:
        key = stub.rng.randbytes(4) if stub.info.direction is Direction.UPSTREAM else None
        stub.send(Chunk(close_frame(self.code, self.reason, mask_key=key), ts))
        stub.record("ws_close_sent", code=self.code)
        stub.fired("close", code=self.code)
        stub.close(End.EOF)

    async def pipe(self, stub: ToxicStub) -> None:
        state = stub.state
        assert isinstance(state, WsState)
        # Counted from when the toxic met this link (added/activated, or the connection opened),
        # not from this run: restarts caused by other chain changes must not push it back.
        due: float | None = max(stub.toxic_started, stub.info.opened_at) + self.delay / 1000.0
        while True:
            if due is None and state.tracker.at_boundary:
                self._inject(stub, stub.now())
                return
            item = await stub.recv_before(due)
            if isinstance(item, TimedOut):
                due = None  # armed: fire at the first frame boundary
                continue
            if item is None:
                stub.close()
                return
            if due is not None or not state.tracker.active:
                state.tracker.skip(item.data)
                stub.send(item)
                continue
            out = bytearray()
            for piece in state.tracker.feed(item.data):
                if isinstance(piece, Header):  # a frame boundary: the Close frame goes here
                    stub.send(Chunk(bytes(out), item.ts))
                    self._inject(stub, item.ts)
                    return
                out += piece.data
            stub.send(Chunk(bytes(out), item.ts))
