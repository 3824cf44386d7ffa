"""Helpers for the proxy tests (a uniquely named module: ``conftest`` is taken by the root)."""

from __future__ import annotations

import asyncio
import os
import time

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
