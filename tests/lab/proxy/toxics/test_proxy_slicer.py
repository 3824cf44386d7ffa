"""slicer: split bounds (sans-I/O) and byte-exact delivery in several reads."""

from __future__ import annotations

import asyncio
import itertools
import random

from hypothesis import given
from hypothesis import strategies as st
from proxy_helpers import open_through

from lab.proxy.client import ToxiproxyClient
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


async def test_slicer_delivers_byte_exact_in_pieces(tp: ToxiproxyClient, echo_server: str) -> None:
    proxy = await tp.create_proxy("slice", upstream=echo_server)
    await proxy.add_toxic("slicer", attributes={"average_size": 512, "size_variation": 128,
                                                "delay": 2000})
    reader, writer = await open_through(proxy.listen)
    payload = bytes(range(256)) * 16  # 4 KiB
    writer.write(payload)
    got, reads = b"", 0
    while len(got) < len(payload):
        got += await asyncio.wait_for(reader.read(65536), 2)
        reads += 1
    assert got == payload
    assert reads >= 4  # 2 ms between pieces: the reader sees them apart
    writer.close()
