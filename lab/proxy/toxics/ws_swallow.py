"""``ws_swallow`` (lab extra, WebSocket-aware): drop Ping and/or Pong frames in this direction.

A client with keepalive pings then times out: websockets sends 1011 "keepalive ping timeout" and
reports close code 1006 (no close frame received). Everything else passes; a stream that is not a
WebSocket passes untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.stream import Chunk
from lab.proxy.toxics.base import Toxic, ToxicStub, register
from lab.proxy.toxics.wsbase import WsState, frame_chunks, ws_state
from lab.proxy.ws_tracker import OP_PING, OP_PONG, Header, Payload


@register("ws_swallow")
@dataclass
class WsSwallowToxic(Toxic):
    ping: bool = True
    pong: bool = True

    def new_state(self, stub: ToxicStub) -> object:
        return ws_state(stub)

    async def pipe(self, stub: ToxicStub) -> None:
        state = stub.state
        assert isinstance(state, WsState)
        drop = {op for op, on in ((OP_PING, self.ping), (OP_PONG, self.pong)) if on}
        async for chunk in frame_chunks(stub):
            out = bytearray()
            for piece in state.tracker.feed(chunk.data):
                if isinstance(piece, Header | Payload) and piece.frame.opcode in drop:
                    if isinstance(piece, Header):
                        stub.record("ws_frame_dropped", opcode=piece.frame.opcode)
                    continue
                out += piece.data
            if out:
                stub.send(Chunk(bytes(out), chunk.ts))
