"""``ws_cut`` (lab extra, WebSocket-aware): cut the connection in the middle of a frame.

Lets ``after_frames`` data frames through whole, then forwards the next data frame's header and
half its payload and closes (``reset`` = true: RST). The receiver's WebSocket library sees the
stream end without a Close frame: close code 1006.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.stream import Chunk, End
from lab.proxy.toxics.base import Toxic, ToxicStub, register
from lab.proxy.toxics.wsbase import WsState, frame_chunks, ws_state
from lab.proxy.ws_tracker import Header, Payload


@register("ws_cut")
@dataclass
class WsCutToxic(Toxic):
    moment = True
    after_frames: int = 0
    reset: bool = False

    def new_state(self, stub: ToxicStub) -> object:
        return ws_state(stub)

    async def pipe(self, stub: ToxicStub) -> None:
        state = stub.state
        assert isinstance(state, WsState)
        cutting = -1  # payload bytes still to forward in the frame being cut, -1: not cutting
        async for chunk in frame_chunks(stub):
            out = bytearray()
            for piece in state.tracker.feed(chunk.data):
                if cutting < 0 and isinstance(piece, Header) and piece.frame.is_data:
                    if state.data_frames >= self.after_frames:
                        cutting = piece.frame.length // 2
                        out += piece.data
                        if cutting == 0:
                            break
                        continue
                    state.data_frames += 1
                if cutting > 0 and isinstance(piece, Payload):
                    out += piece.data[:cutting]
                    cutting -= min(cutting, len(piece.data))
                    if cutting == 0:
                        break
                    continue
                out += piece.data
            if out:
                stub.send(Chunk(bytes(out), chunk.ts))
            if cutting == 0:
                stub.record("ws_cut", frames=state.data_frames)
                stub.fired("cut", frames=state.data_frames)
                stub.close(End.RESET if self.reset else End.CLOSE)
                return
