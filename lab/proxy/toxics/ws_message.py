"""``ws_message`` (lab extra, WebSocket-aware): delay or drop individual messages.

A data message is picked when its 1-based index is a multiple of ``every`` and a draw from the
seeded RNG is below ``probability``. A picked message is dropped (``drop`` = true: all of its
frames vanish) or held until ``delay`` ms after it arrived; messages behind it wait too (TCP is
in order). Control frames are never dropped. Dropping only works when permessage-deflate is off
or without context takeover: a missing compressed message breaks the receiver's inflater.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.stream import Chunk
from lab.proxy.toxics.base import Interrupted, Toxic, ToxicStub, register
from lab.proxy.toxics.wsbase import WsState, frame_chunks, ws_state
from lab.proxy.ws_tracker import OP_CONT, Header, Payload, Piece


@register("ws_message")
@dataclass
class WsMessageToxic(Toxic):
    every: int = 1
    probability: float = 1.0
    drop: bool = False
    delay: int = 0  # ms

    def new_state(self, stub: ToxicStub) -> object:
        return ws_state(stub)

    def _pick(self, stub: ToxicStub, state: WsState) -> bool:
        state.messages += 1
        every = max(self.every, 1)
        return state.messages % every == 0 and stub.rng.random() < self.probability

    async def pipe(self, stub: ToxicStub) -> None:
        state = stub.state
        assert isinstance(state, WsState)
        async for chunk in frame_chunks(stub):
            pieces: list[Piece] = state.tracker.feed(chunk.data)
            out = bytearray()
            for i, piece in enumerate(pieces):
                if isinstance(piece, Header) and piece.frame.is_data:
                    if piece.frame.opcode != OP_CONT:
                        state.selected = self._pick(stub, state)
                        if state.selected and not self.drop and self.delay > 0:
                            stub.record("ws_message_delayed", message=state.messages)
                            if out:
                                stub.send(Chunk(bytes(out), chunk.ts))
                                out = bytearray()
                            try:
                                await stub.sleep_until(chunk.ts + self.delay / 1000.0)
                            except Interrupted:
                                # The tracker already consumed these bytes: pass them unchanged.
                                rest = b"".join(p.data for p in pieces[i:])
                                stub.send(Chunk(rest, chunk.ts))
                                raise
                        elif state.selected and self.drop:
                            stub.record("ws_message_dropped", message=state.messages)
                if (
                    isinstance(piece, Header | Payload)
                    and piece.frame.is_data
                    and state.selected
                    and self.drop
                ):
                    continue
                out += piece.data
            if out:
                stub.send(Chunk(bytes(out), chunk.ts))
