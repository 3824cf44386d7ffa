"""``limit_data``: forward at most ``bytes`` bytes in this direction (truncating the chunk that
crosses the limit), then close the connection. The count is per link and survives restarts.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.stream import Chunk
from lab.proxy.toxics.base import Toxic, ToxicStub, register


@dataclass
class LimitState:
    transmitted: int = 0


@register("limit_data")
@dataclass
class LimitDataToxic(Toxic):
    moment = True
    bytes: int = 0

    def new_state(self, stub: ToxicStub) -> object:
        return LimitState()

    async def pipe(self, stub: ToxicStub) -> None:
        state = stub.state
        assert isinstance(state, LimitState)
        while True:
            chunk = await stub.recv()
            if chunk is None:
                stub.close()
                return
            remaining = max(self.bytes - state.transmitted, 0)
            data = chunk.data[:remaining]
            if data:
                stub.send(Chunk(data, chunk.ts))
                state.transmitted += len(data)
            if self.bytes - state.transmitted <= 0:
                stub.record("limit_reached", bytes=state.transmitted)
                stub.fired("close", bytes=state.transmitted)
                stub.close()
                return
