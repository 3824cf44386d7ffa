"""Helpers for the proxy tests (a uniquely named module: ``conftest`` is taken by the root).

Bounds and tolerances scale with ``LAB_TIMEOUT_FACTOR`` through ``tests/timing.py``, the one
place that reads it; waits on conditions use its ``wait_until``.
"""

from __future__ import annotations

import asyncio

from timing import scaled


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
    """Everything until EOF (bounded by ``limit_s`` seconds, scaled)."""
    return await asyncio.wait_for(reader.read(), scaled(limit_s))


def assert_delta(what: str, actual: float, expected: float, delta: float) -> None:
    """Toxiproxy's ``AssertDeltaTime``: ``|actual - expected| <= delta`` (seconds; the
    tolerance is scaled, the expectation is not)."""
    delta = scaled(delta)
    assert abs(actual - expected) <= delta, (
        f"{what}: took {actual * 1000:.1f} ms, expected {expected * 1000:.1f} "
        f"± {delta * 1000:.1f} ms"
    )

