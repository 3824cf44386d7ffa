"""``noop``: passes everything through unchanged (registered because Toxiproxy accepts it)."""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.toxics.base import Toxic, ToxicStub, register


@register("noop")
@dataclass
class NoopToxic(Toxic):
    """No attributes."""

    async def pipe(self, stub: ToxicStub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is None:
                stub.close()
                return
            stub.send(chunk)
