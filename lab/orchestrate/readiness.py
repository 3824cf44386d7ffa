"""Readiness checks: is a component really serving (not merely started)?

:class:`HttpProber` runs a :class:`~lab.orchestrate.plan.Probe` once; :func:`wait_ready` repeats
it until it passes, the process exits (a :class:`ComponentError` with its last log lines) or the
deadline passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import aiohttp
import orjson

from lab.orchestrate.errors import ComponentError
from lab.orchestrate.plan import Probe


class Prober(Protocol):
    async def check(self, probe: Probe) -> bool: ...

    async def close(self) -> None: ...


class HttpProber:
    """Runs probes over HTTP with a short per-attempt timeout."""

    def __init__(self, attempt_timeout_s: float = 2.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=attempt_timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._ssl: dict[str, ssl.SSLContext] = {}

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No pooling: a probe must see a fresh connection through every hop.
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(force_close=True))
        return self._session

    def _context(self, ca: str) -> ssl.SSLContext | bool:
        if not ca:
            return True
        if ca == "insecure":
            return False
        if ca not in self._ssl:
            self._ssl[ca] = ssl.create_default_context(cafile=ca)
        return self._ssl[ca]

    async def check(self, probe: Probe) -> bool:
        try:
            if probe.kind == "jsonrpc":
                body = {"jsonrpc": "2.0", "id": 1, "method": probe.method, "params": []}
                async with self._http().post(probe.url, json=body) as r:
                    if r.status != 200:
                        return False
                    reply = orjson.loads(await r.read())
                    return isinstance(reply, dict) and "result" in reply
            async with self._http().get(probe.url, ssl=self._context(probe.ca)) as r:
                await r.read()
                return r.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def log_tail(path: Path, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of a log file (empty if it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            tail: deque[str] = deque(f.read().decode(errors="replace").splitlines(), lines)
    except OSError:
        return []
    return list(tail)


async def wait_ready(name: str, probe: Probe, prober: Prober, exit_code: Callable[[], int | None],
                     log: Path, timeout_s: float) -> float:
    """Poll ``probe`` until it passes; returns the seconds it took.

    Raises :class:`ComponentError` (with the log's last lines) if the process exits first or the
    deadline passes.
    """
    start = time.monotonic()
    delay = 0.01
    while True:
        if await prober.check(probe):
            return time.monotonic() - start
        rc = exit_code()
        if rc is not None:
            raise ComponentError(name, f"exited with code {rc} before it was ready "
                                 f"({probe.kind} {probe.url})", log_tail(log), str(log))
        if time.monotonic() - start > timeout_s:
            raise ComponentError(name, f"not ready within {timeout_s:g} s "
                                 f"({probe.kind} {probe.url} never answered)", log_tail(log),
                                 str(log))
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.1)


async def close_quietly(prober: Prober) -> None:
    with contextlib.suppress(Exception):
        await prober.close()
