"""``slow_close``: data passes unchanged; the end of the stream is held back ``delay`` ms."""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.toxics.base import Toxic, ToxicStub, register


@register("slow_close")
@dataclass
class SlowCloseToxic(Toxic):
    delay: int = 0  # ms

    async def pipe(self, stub: ToxicStub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is None:
                # An interrupt here keeps the end marker in the stub; the restart waits again.
                await stub.sleep(self.delay / 1000.0)
                stub.close()
                return
            stub.send(chunk)
