"""Helpers for the proxy tests (a uniquely named module: ``conftest`` is taken by the root)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

#: Multiply timing tolerances on slow machines (shared convention, see /conftest.py).
TIME_FACTOR = float(os.getenv("LAB_TIMEOUT_FACTOR", "1"))


async def echo_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def open_through(listen: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to a proxy's ``listen`` address."""
    host, _, port = listen.rpartition(":")
    return await asyncio.open_connection(host.strip("[]"), int(port), limit=4 * 1024 * 1024)


async def read_all(reader: asyncio.StreamReader, limit_s: float = 5.0) -> bytes:
    """Everything until EOF (bounded by ``limit_s`` seconds)."""
    return await asyncio.wait_for(reader.read(), limit_s)


async def eventually(check: Callable[[], Awaitable[bool]], what: str,
                     limit_s: float = 10.0) -> None:
    """Wait until ``await check()`` is true, polling every 10 ms; fail naming ``what`` after
    ``limit_s`` seconds (scaled by ``LAB_TIMEOUT_FACTOR``). For conditions the test cannot await
    directly (a metric, an event), instead of a fixed sleep."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s * TIME_FACTOR
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"still not true after {limit_s * TIME_FACTOR:.1f} s: {what}")
        await asyncio.sleep(0.01)


def assert_delta(what: str, actual: float, expected: float, delta: float) -> None:
    """Toxiproxy's ``AssertDeltaTime``: ``|actual - expected| <= delta`` (seconds)."""
    delta *= TIME_FACTOR
    assert abs(actual - expected) <= delta, (
        f"{what}: took {actual * 1000:.1f} ms, expected {expected * 1000:.1f} ± {delta * 1000:.1f} ms"
    )


class Timer:
    def __enter__(self) -> Timer:
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.t0
