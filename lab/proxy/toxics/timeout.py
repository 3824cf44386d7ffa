"""``timeout``: drop all data; close the connection ``timeout`` ms after the toxic started on
this link, or never if ``timeout`` is 0 (a black hole).

Removing it from a live connection closes that connection (Toxiproxy's ``Cleanup``; the bytes
it swallowed would otherwise corrupt the stream).
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.toxics.base import TimedOut, Toxic, ToxicStub, register


@register("timeout")
@dataclass
class TimeoutToxic(Toxic):
    timeout: int = 0  # ms

    async def pipe(self, stub: ToxicStub) -> None:
        deadline = stub.now() + self.timeout / 1000.0 if self.timeout > 0 else None
        while True:
            item = await stub.recv_before(deadline)
            if item is None or isinstance(item, TimedOut):
                stub.close()
                return
            # data is dropped on the floor

    def cleanup(self, stub: ToxicStub) -> None:
        stub.close()
