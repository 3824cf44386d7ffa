"""Helpers to run mock chains from tests and lab scenarios.

In process (fast, full control)::

    async with mock_l1("eth", seed=7, endpoints=2) as l1:
        primary, fallback = l1.endpoints
        await admin(primary.admin_url, {"cmd": "faults", "count": 3, "http_status": 503})
        ...

As a separate process (what the node sees in the lab)::

    async with spawn_mock("sui", seed=7, block_time_ms=100) as proc:
        proc.http_url, proc.ws_url, proc.admin_url
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from lab.l1.server import ChainKind, MockL1


@contextlib.asynccontextmanager
async def mock_l1(
    kind: ChainKind,
    *,
    seed: int = 0,
    block_time_ms: int = 0,
    endpoints: int = 1,
    chain_id: int = 1337,
    finality_depth: int = 64,
) -> AsyncIterator[MockL1]:
    """A started in-process mock on 127.0.0.1 free ports; stopped on exit."""
    l1 = MockL1(
        kind,
        seed=seed,
        block_time_ms=block_time_ms,
        chain_id=chain_id,
        finality_depth=finality_depth,
    )
    await l1.start(endpoints)
    try:
        yield l1
    finally:
        await l1.stop()


async def admin(url: str, command: dict[str, Any], *, timeout_s: float = 10.0) -> dict[str, Any]:
    """POST one admin command; raises ``RuntimeError`` with the mock's message on a 400."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s,
        s.post(url, json=command) as r,
    ):
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"admin {command.get('cmd')}: {body.get('error')}")
        assert isinstance(body, dict)
        return body


async def rpc(
    url: str,
    method: str,
    params: list[Any] | dict[str, Any] | None = None,
    *,
    timeout_s: float = 10.0,
) -> Any:
    """One plain JSON-RPC call over HTTP; returns the whole response object."""
    req = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": method,
        "params": params if params is not None else [],
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s,
        s.post(url, json=req) as r,
    ):
        return await r.json(content_type=None)


@dataclass
class MockProcess:
    proc: asyncio.subprocess.Process
    seed: int
    http_url: str
    ws_url: str
    admin_url: str


@contextlib.asynccontextmanager
async def spawn_mock(
    kind: ChainKind, *, seed: int = 0, block_time_ms: int = 0, extra: list[str] | None = None,
    start_timeout: float = 20.0,
) -> AsyncIterator[MockProcess]:
    """Run ``python -m lab.l1`` on a free port; waits for its banner line; terminated on exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lab.l1", kind, "--port", "0", "--seed", str(seed),
        "--block-time-ms", str(block_time_ms), *(extra or []),
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), start_timeout)).decode()
        fields = dict(f.split("=", 1) for f in line.split()[2:])
        yield MockProcess(proc, int(fields["seed"]), fields["http"], fields["ws"], fields["admin"])
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
