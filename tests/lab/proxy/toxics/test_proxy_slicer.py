"""slicer: split bounds (sans-I/O) and, on the virtual clock, the pieces' sizes and spacing."""

from __future__ import annotations

import asyncio
import itertools
import random

from hypothesis import given
from hypothesis import strategies as st
from vclock import ms, virtual_time
from vlab import VirtualLab

from lab.proxy import rng
from lab.proxy.toxics.slicer import slice_bounds


def _sizes(bounds: list[int]) -> list[int]:
    return [b - a for a, b in itertools.pairwise(bounds)]


def test_480kb_avg_1024_var_512_in_240_to_720_pieces() -> None:
    bounds = slice_bounds(480_000, 1024, 512, random.Random(1))
    assert bounds[0] == 0 and bounds[-1] == 480_000
    assert 240 <= len(bounds) - 1 <= 720
    assert all(0 < s <= 1024 + 512 for s in _sizes(bounds))


def test_average_1_no_variation_is_one_byte_each() -> None:
    assert _sizes(slice_bounds(24, 1, 0, random.Random(1))) == [1] * 24


@given(length=st.integers(0, 50_000), avg=st.integers(1, 4096), var=st.integers(0, 2048),
       seed=st.integers(0, 2**32))
def test_bounds_cover_the_chunk_in_order(length: int, avg: int, var: int, seed: int) -> None:
    bounds = slice_bounds(length, avg, var, random.Random(seed))
    assert bounds[0] == 0 and bounds[-1] == length
    assert all(s > 0 for s in _sizes(bounds))
    assert all(s <= avg + var for s in _sizes(bounds))


@virtual_time
async def test_pieces_arrive_delay_apart_with_seeded_sizes() -> None:
    async with VirtualLab(seed=5) as lab:
        proxy = await lab.proxy("slice", await lab.echo())
        await lab.add(proxy, {"type": "slicer", "attributes": {
            "average_size": 512, "size_variation": 128, "delay": 2000}})  # delay in µs
        reader, writer = await lab.connect(proxy)
        payload = bytes(range(256)) * 16  # 4 KiB
        t0 = lab.now()
        writer.write(payload)
        got, pieces = b"", []
        while len(got) < len(payload):
            data = await asyncio.wait_for(reader.read(65536), 5)
            pieces.append((ms(lab.now() - t0), len(data)))
            got += data
    assert got == payload
    gen = rng.generator(proxy.link_seed(1, "down"), "slicer_downstream")
    gen.random()  # the toxicity draw
    sizes = _sizes(slice_bounds(len(payload), 512, 128, gen))
    assert pieces == [(2 * i, size) for i, size in enumerate(sizes)]  # exactly 2 ms apart
