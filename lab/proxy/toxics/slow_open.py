"""``slow_open`` (lab extra): hold the first bytes in this direction until ``delay`` ms after the
connection was accepted; later data flows normally.

Models a slow connect phase (Toxiproxy PR #536): the kernel completes the TCP handshake at once,
but nothing moves for ``delay`` ms. On a connection older than ``delay`` it has no effect.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.toxics.base import Interrupted, Toxic, ToxicStub, register


@dataclass
class OpenState:
    opened: bool = False


@register("slow_open")
@dataclass
class SlowOpenToxic(Toxic):
    delay: int = 0  # ms after the connection was accepted

    def new_state(self, stub: ToxicStub) -> object:
        return OpenState()

    async def pipe(self, stub: ToxicStub) -> None:
        state = stub.state
        assert isinstance(state, OpenState)
        while True:
            chunk = await stub.recv()
            if chunk is None:
                stub.close()
                return
            if not state.opened:
                try:
                    await stub.sleep_until(stub.info.opened_at + self.delay / 1000.0)
                except Interrupted:
                    stub.unread(chunk)
                    raise
                state.opened = True
            stub.send(chunk)
