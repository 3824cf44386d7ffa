"""The tests' one time unit: every wall-clock bound in the suite goes through this module.

``LAB_TIMEOUT_FACTOR`` (a positive number, default 1) is read here and nowhere else. It stretches
*bounds*, never
expectations: a wait's deadline or a wall-clock tolerance grows on a slow or loaded machine, while
the value a test expects (a 300 ms latency is still 300 ms) does not change.

A test that needs something to happen waits on the condition that stands for it
(:func:`wait_until`, :func:`wait_until_sync`) instead of sleeping a fixed time: it goes on as soon
as the condition holds and fails with a message naming the condition when the bound runs out.

Importable from any test as ``from timing import ...`` (``pythonpath = ["tests"]`` in
pyproject.toml).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def _factor() -> float:
    raw = os.getenv("LAB_TIMEOUT_FACTOR", "1")
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0.0:  # also rejects nan
        raise RuntimeError(f"LAB_TIMEOUT_FACTOR must be a positive number, got {raw!r}")
    return value


#: Multiplier of every wall-clock bound in the tests (``LAB_TIMEOUT_FACTOR``, default 1).
FACTOR = _factor()

#: Default bound of :func:`wait_until` before scaling: generous, since it only limits a failure.
DEFAULT_TIMEOUT_S = 10.0

#: How often a condition is polled.
POLL_S = 0.02


def scaled(seconds: float) -> float:
    """``seconds`` stretched by :data:`FACTOR` (for a bound or a tolerance, not an expectation)."""
    return seconds * FACTOR


class ConditionTimeout(AssertionError):
    """A waited-for condition did not hold within its (scaled) bound."""


def _describe(condition: object, what: str | None) -> str:
    if what:
        return what
    name = getattr(condition, "__qualname__", None) or repr(condition)
    return f"condition {name}"


async def wait_until(
    condition: Callable[[], T | Awaitable[T]],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    *,
    what: str | None = None,
    interval: float = POLL_S,
) -> T:
    """Poll ``condition`` (a function, sync or async) until it returns a truthy value, and
    return that value. ``timeout_s`` is in unscaled seconds; past ``scaled(timeout_s)`` it raises
    :class:`ConditionTimeout` naming ``what`` (or the function) and its last value."""
    deadline = time.monotonic() + scaled(timeout_s)
    last: object = None
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        last = value
        if time.monotonic() >= deadline:
            raise ConditionTimeout(
                f"{_describe(condition, what)} not reached within {scaled(timeout_s):.2f} s "
                f"(last value {last!r})"
            )
        await asyncio.sleep(interval)


def wait_until_sync(
    condition: Callable[[], T],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    *,
    what: str | None = None,
    interval: float = POLL_S,
) -> T:
    """:func:`wait_until` for code outside an event loop (threads, subprocess checks)."""
    deadline = time.monotonic() + scaled(timeout_s)
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise ConditionTimeout(
                f"{_describe(condition, what)} not reached within {scaled(timeout_s):.2f} s "
                f"(last value {value!r})"
            )
        time.sleep(interval)


__all__ = [
    "DEFAULT_TIMEOUT_S",
    "FACTOR",
    "POLL_S",
    "ConditionTimeout",
    "scaled",
    "wait_until",
    "wait_until_sync",
]
