"""A virtual clock for timing tests: an event loop whose time moves only when every task waits.

:class:`VirtualClockLoop` is asyncio's selector loop with ``time()`` replaced by a counter. When
no callback is ready, no I/O event is pending and no executor job is running, the loop jumps the
clock to its next timer instead of sleeping, so a 480 ms bandwidth test takes 480 ms of loop time
exactly and almost no wall time, whatever the machine's load.

The rule is only sound when nothing moves outside the loop while it jumps. Bytes in flight on
real sockets do (the kernel delivers them later, more so under load), so tests on this loop use
the in-memory network of ``memnet.py``, where every byte moves by ``call_soon``. Executor jobs
(e.g. ``getaddrinfo``) stop the clock until they finish. If every task waits and no timer is
set, the loop raises :class:`VirtualDeadlock` instead of hanging.

Use :func:`virtual_time` on an ``async def`` test (it then runs on its own loop, not
pytest-asyncio's), or :func:`run_virtual` on a coroutine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: Loop time at start (seconds). Not 0, so code that treats 0 as "unset" still works.
START = 1000.0
#: Loop iterations allowed at one instant before the loop reports a livelock (a task that
#: polls the clock in a loop never lets it move); about ten seconds of work.
MAX_SPINS = 2_000_000


class VirtualDeadlock(RuntimeError):
    """Every task waits for something that no timer, I/O or thread can bring."""


class _IdleSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Polls without blocking; on a would-be sleep, moves the owning loop's clock instead."""

    owner: VirtualClockLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if self.owner is None:
            return events
        if events or timeout == 0:
            self.owner.spin()
            return events
        loop = self.owner
        if loop.threads_running:
            # An executor job will call back through the self-pipe: wait for it in real time,
            # with the clock standing still.
            wait = 0.005 if timeout is None else min(timeout, 0.005)
            out: list[tuple[selectors.SelectorKey, int]] = super().select(wait)
            return out
        if timeout is None:
            raise VirtualDeadlock("every task is waiting and no timer is set")
        loop.advance_to_next_timer()
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """See the module docstring."""

    def __init__(self, start: float = START, lateness: float = 0.0) -> None:
        selector = _IdleSelector()
        super().__init__(selector)
        selector.owner = self
        self._now = start
        #: Seconds every jump overshoots its timer by, to model a real loop's late wake-ups
        #: (epoll rounds up to the ms, schedulers add more): code with absolute schedules
        #: stays on time, code that sleeps relative to "now" drifts.
        self.lateness = lateness
        self._spins = 0
        self.threads_running = 0

    def time(self) -> float:
        return self._now

    def spin(self) -> None:
        """One loop iteration at the current instant; too many in a row is a livelock."""
        self._spins += 1
        if self._spins > MAX_SPINS:
            raise VirtualDeadlock(f"{MAX_SPINS} loop iterations without the clock moving")

    def advance_to_next_timer(self) -> None:
        """Jump to the earliest live timer (the loop dropped cancelled ones from the head)."""
        scheduled: list[asyncio.TimerHandle] = self._scheduled  # type: ignore[attr-defined]
        live = [h.when() for h in scheduled[:1] if not h.cancelled()]
        if not live:  # the head was cancelled after the loop looked: take the earliest live one
            live = [min((h.when() for h in scheduled if not h.cancelled()), default=self._now)]
        self._now = max(self._now, live[0] + self.lateness)
        self._spins = 0

    def run_in_executor(self, executor: Any, func: Callable[..., T],  # type: ignore[override]
                        *args: Any) -> asyncio.Future[T]:
        self.threads_running += 1
        fut = super().run_in_executor(executor, func, *args)

        def done(_: asyncio.Future[T] | concurrent.futures.Future[T]) -> None:
            self.threads_running -= 1

        fut.add_done_callback(done)
        return fut

    async def shutdown_default_executor(self, *args: Any) -> None:
        # The shutdown joins the executor in a thread and calls back through the self-pipe.
        self.threads_running += 1
        try:
            await super().shutdown_default_executor()
        finally:
            self.threads_running -= 1


def run_virtual(coro: Coroutine[Any, Any, T], lateness: float = 0.0) -> T:
    """Run ``coro`` to completion on a fresh :class:`VirtualClockLoop`, then close it."""
    with asyncio.Runner(loop_factory=lambda: VirtualClockLoop(lateness=lateness)) as runner:
        return runner.run(coro)


def virtual_time(fn: Callable[..., Coroutine[Any, Any, T]] | None = None, *,
                 lateness: float = 0.0) -> Any:
    """Decorator: run an ``async def`` test on its own :class:`VirtualClockLoop`
    (``@virtual_time`` or ``@virtual_time(lateness=0.001)``).

    The test may take ordinary (synchronous) fixtures; async fixtures belong to another loop.
    """

    def deco(f: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            return run_virtual(f(*args, **kwargs), lateness)

        return wrapper

    return deco(fn) if fn is not None else deco


def ms(seconds: float) -> float:
    """Seconds of loop time as milliseconds, rounded to the nanosecond (float noise removed)."""
    return round(seconds * 1000.0, 6)
