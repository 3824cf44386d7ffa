"""``slow_close``: data passes unchanged; the end of the stream is held back ``delay`` ms.

The delay counts from when the end arrived, also across restarts of the stub (another toxic
added or removed meanwhile): Toxiproxy starts the wait again after such an interrupt, which
makes a chain change lengthen the delay.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.toxics.base import Toxic, ToxicStub, register


@dataclass
class CloseState:
    end_seen_at: float | None = None  # loop time the end of the stream reached this toxic


@register("slow_close")
@dataclass
class SlowCloseToxic(Toxic):
    moment = True
    delay: int = 0  # ms

    def new_state(self, stub: ToxicStub) -> object:
        return CloseState()

    async def pipe(self, stub: ToxicStub) -> None:
        state = stub.state
        assert isinstance(state, CloseState)
        while True:
            chunk = await stub.recv()
            if chunk is None:
                if state.end_seen_at is None:
                    state.end_seen_at = stub.now()
                # An interrupt here keeps the end marker in the stub; the restart waits for
                # what is left of the delay.
                await stub.sleep_until(state.end_seen_at + self.delay / 1000.0)
                stub.fired("close")
                stub.close()
                return
            stub.send(chunk)
