"""``slicer``: split each chunk into pieces of about ``average_size`` ± ``size_variation`` bytes,
``delay`` **microseconds** apart (Toxiproxy's units). Sizes come from the stub's seeded RNG.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lab.proxy.stream import Chunk
from lab.proxy.toxics.base import Interrupted, Toxic, ToxicStub, register


def slice_bounds(length: int, average: int, variation: int, rng: random.Random) -> list[int]:
    """Boundaries ``[0, b1, ..., length]`` by Toxiproxy's recursive halving (sans-I/O).

    A span stops splitting once it is at most ``average + variation`` long; otherwise it is cut
    near its middle, moved by U[-variation, +variation).
    """
    bounds = [0]

    def split(start: int, end: int) -> None:
        if (end - start) - average <= variation or end - start <= 1:
            bounds.append(end)
            return
        mid = start + (end - start) // 2
        if variation > 0:
            mid += rng.randrange(variation * 2) - variation
        mid = min(max(mid, start + 1), end - 1)
        split(start, mid)
        split(mid, end)

    if length > 0:
        split(0, length)
    return bounds


@register("slicer")
@dataclass
class SlicerToxic(Toxic):
    average_size: int = 0  # bytes
    size_variation: int = 0  # bytes
    delay: int = 0  # µs between pieces

    async def pipe(self, stub: ToxicStub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is None:
                stub.close()
                return
            if self.average_size <= 0:
                stub.send(chunk)
                continue
            bounds = slice_bounds(len(chunk.data), self.average_size, self.size_variation, stub.rng)
            for i in range(1, len(bounds)):
                stub.send(Chunk(chunk.data[bounds[i - 1] : bounds[i]], chunk.ts))
                if i + 1 < len(bounds):
                    try:
                        await stub.sleep(self.delay / 1e6)
                    except Interrupted:
                        stub.unread(Chunk(chunk.data[bounds[i] :], chunk.ts))
                        raise
