"""bandwidth, on the virtual clock: 480 KB at 1000 KB/s takes exactly 480 ms (bandwidth_test.go).

Toxiproxy allows ±10 ms on the wall clock; here every byte arrives exactly when the rate says
(byte n at n / rate), whatever the chunking. ``test_proxy_wallclock.py`` checks the real loop.
"""

from __future__ import annotations

import asyncio
import itertools

from vclock import ms, virtual_time
from vlab import VirtualLab

PAYLOAD = b"hello world " * 40_000  # 480 KB, as Toxiproxy's test


async def _at_1000kbps(lab: VirtualLab, name: str, total: int
                   ) -> tuple[asyncio.StreamWriter, list[tuple[float, int]],
                              asyncio.Future[bytes]]:
    """A client writer through proxy ``name`` with a 1000 KB/s upstream bandwidth toxic, to
    ``lab.sink(total)``; with the sink's arrivals and its future of all the bytes."""
    upstream, arrivals, done = await lab.sink(total)
    proxy = await lab.proxy(name, upstream)
    await lab.add(proxy, {"type": "bandwidth", "stream": "upstream",
                          "attributes": {"rate": 1000}})
    _, writer = await lab.connect(proxy)
    return writer, arrivals, done


@virtual_time
async def test_480kb_at_1000kbps_arrives_byte_by_rate() -> None:
    async with VirtualLab() as lab:
        writer, arrivals, done = await _at_1000kbps(lab, "bw", len(PAYLOAD))
        t0 = lab.now()
        writer.write(PAYLOAD)
        assert await asyncio.wait_for(done, 5) == PAYLOAD
        assert ms(arrivals[-1][0] - t0) == 480
        # 1000 KB/s is 1000 bytes per ms: every release is exactly on schedule, and chunks
        # larger than 100 ms worth go out in 100 ms slices.
        assert [(ms(t - t0), n) for t, n in arrivals] == [(n / 1000, n) for _, n in arrivals]
        sizes = [b - a for a, b in itertools.pairwise([0] + [n for _, n in arrivals])]
        assert max(sizes) == 100_000 and len(arrivals) >= 5


@virtual_time(lateness=0.001)
async def test_late_wake_ups_do_not_add_up() -> None:
    # Every timer fires 1 ms late (as a real loop's may): 48 chunks of 10 kB arriving back to
    # back still take 480 ms plus one late wake-up, not plus 48 of them.
    async with VirtualLab() as lab:
        writer, arrivals, done = await _at_1000kbps(lab, "bwlate", 480_000)
        t0 = lab.now()
        for _ in range(48):
            writer.write(b"c" * 10_000)
            await asyncio.sleep(0.001)  # one chunk each
        await asyncio.wait_for(done, 5)
        assert len(arrivals) == 48 and ms(arrivals[-1][0] - t0) == 481


@virtual_time
async def test_idle_time_is_not_banked() -> None:
    # A burst after a pause starts from the moment it arrives: no credit for the idle time.
    async with VirtualLab() as lab:
        writer, arrivals, done = await _at_1000kbps(lab, "bwidle", 200_000)
        t0 = lab.now()
        writer.write(b"a" * 100_000)
        await asyncio.sleep(0.5)
        writer.write(b"b" * 100_000)
        await asyncio.wait_for(done, 5)
        assert [(ms(t - t0), n) for t, n in arrivals] == [(100, 100_000), (600, 200_000)]


@virtual_time
async def test_zero_rate_is_unlimited() -> None:
    async with VirtualLab() as lab:
        proxy = await lab.proxy("bw0", await lab.echo())
        await lab.add(proxy, {"type": "bandwidth", "attributes": {"rate": 0}})
        reader, writer = await lab.connect(proxy)
        t0 = lab.now()
        writer.write(b"z" * 1_000_000)
        await asyncio.wait_for(reader.readexactly(1_000_000), 5)
        assert ms(lab.now() - t0) == 0
