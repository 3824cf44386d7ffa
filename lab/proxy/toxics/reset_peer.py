"""``reset_peer``: on the first chunk in its direction (which it drops), wait ``timeout`` ms and
reset the connection: both sockets are aborted with SO_LINGER 0, so both peers read
``ECONNRESET``.

The wait cannot be cancelled (as in Toxiproxy): if the chain changes meanwhile, the reset is
handed to the link, which still fires it on time. Either way it is one reset and one firing.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.stream import End
from lab.proxy.toxics.base import Interrupted, Toxic, ToxicStub, register


@dataclass
class ResetState:
    due: float | None = None  # loop time of the reset, once the first chunk came
    handed: bool = False  # the reset is done, or the link will do it at ``due``


@register("reset_peer")
@dataclass
class ResetPeerToxic(Toxic):
    moment = True
    timeout: int = 0  # ms

    def new_state(self, stub: ToxicStub) -> object:
        return ResetState()

    async def pipe(self, stub: ToxicStub) -> None:
        state = stub.state
        assert isinstance(state, ResetState)
        if state.due is None:
            await stub.recv()  # the first chunk (or the end) is dropped
            state.due = stub.now() + self.timeout / 1000.0
        try:
            await stub.sleep_until(state.due)  # holding whatever arrives meanwhile
        except Interrupted:
            if not state.handed:
                state.handed = True

                def fire() -> None:
                    stub.record("reset")
                    stub.fired("reset")

                stub.host.end_at(state.due, End.RESET, fire)
            raise
        if state.handed:
            return  # the link resets the connection at this very time
        state.handed = True
        stub.record("reset")
        stub.fired("reset")
        stub.close(End.RESET)
