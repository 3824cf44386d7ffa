"""``latency``: delay every chunk by ``latency`` ms ± ``jitter`` ms, counted from its arrival.

Chunks never reorder and throughput is not capped: a chunk that arrived while the previous one
was waiting is already (nearly) due. Unlike Toxiproxy, a chunk held during a chain change is not
released early: it is put back and its delay recomputed from its arrival. The chunk's timestamp
moves forward by the delay, so two
latency toxics add up (Toxiproxy's ``c.Timestamp.Add(sleep)``).
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.toxics.base import Interrupted, Toxic, ToxicStub, register


@register("latency")
@dataclass
class LatencyToxic(Toxic):
    latency: int = 0  # ms
    jitter: int = 0  # ms; delay is latency + U[-jitter, +jitter)

    def delay(self, stub: ToxicStub) -> float:
        """Seconds for the next chunk, drawing jitter from the stub's seeded generator."""
        ms = self.latency
        if self.jitter > 0:
            ms += stub.rng.randrange(-self.jitter, self.jitter)
        return ms / 1000.0

    async def pipe(self, stub: ToxicStub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is None:
                stub.close()
                return
            delay = self.delay(stub)
            try:
                await stub.sleep_until(chunk.ts + delay)
            except Interrupted:
                stub.unread(chunk)  # the restart (or the next stub) takes it from here
                raise
            chunk.ts += delay
            stub.send(chunk)
