"""Waiting on a condition with a bound (workloads poll the lab's state, they never sleep blind)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def poll(condition: Callable[[], Awaitable[T]], *, timeout_s: float,
               interval_s: float = 0.1) -> T | None:
    """Await ``condition()`` every ``interval_s`` until it gives something truthy and return it;
    ``None`` if ``timeout_s`` ran out first (the caller decides what that means)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(interval_s)
