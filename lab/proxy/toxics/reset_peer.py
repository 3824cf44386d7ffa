"""``reset_peer``: on the first chunk in its direction (which it drops), wait ``timeout`` ms and
reset the connection: both sockets are aborted with SO_LINGER 0, so both peers read
``ECONNRESET``.

The wait cannot be cancelled (as in Toxiproxy): if the chain changes meanwhile, the reset is
handed to the link, which still fires it on time.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.stream import End
from lab.proxy.toxics.base import Interrupted, Toxic, ToxicStub, register


@register("reset_peer")
@dataclass
class ResetPeerToxic(Toxic):
    timeout: int = 0  # ms

    async def pipe(self, stub: ToxicStub) -> None:
        await stub.recv()  # the first chunk (or the end) is dropped
        when = stub.now() + self.timeout / 1000.0
        try:
            await stub.sleep_until(when)
        except Interrupted:
            stub.host.end_at(when, End.RESET)
            raise
        stub.record("reset")
        stub.close(End.RESET)
