"""``bandwidth``: limit to ``rate`` KB/s (1 KB = 1000 B); ``rate <= 0`` means unlimited.

Each chunk costs ``len/rate`` ms of debt; chunks larger than 100 ms worth are released in 100 ms
slices. The schedule is absolute (the next release is due ``len/rate`` after the previous one
when data is back to back, counted from the chunk's arrival after idle time), so timer overshoot
does not accumulate, like Toxiproxy's ``sleep -= time.Since(start)`` correction.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.proxy.stream import Chunk
from lab.proxy.toxics.base import Interrupted, Toxic, ToxicStub, register


@register("bandwidth")
@dataclass
class BandwidthToxic(Toxic):
    rate: int = 0  # KB/s

    async def pipe(self, stub: ToxicStub) -> None:
        due = stub.now()
        while True:
            chunk = await stub.recv()
            if chunk is None:
                stub.close()
                return
            if self.rate <= 0:
                stub.send(chunk)
                continue
            bytes_per_s = self.rate * 1000.0
            slice_size = self.rate * 100  # 100 ms worth
            # Back to back (the chunk arrived before the previous one was released): continue
            # the schedule. After idle time: start from the chunk's arrival, banking nothing.
            due = max(due, chunk.ts)
            data = chunk.data
            try:
                while len(data) > slice_size:
                    due += slice_size / bytes_per_s
                    await stub.sleep_until(due)
                    stub.send(Chunk(data[:slice_size], chunk.ts))
                    data = data[slice_size:]
                due += len(data) / bytes_per_s
                await stub.sleep_until(due)
            except Interrupted:
                stub.unread(Chunk(data, chunk.ts))
                raise
            stub.send(Chunk(data, chunk.ts))
