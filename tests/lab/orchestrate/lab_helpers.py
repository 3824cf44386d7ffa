"""Helpers for tests that run a real lab: leak accounting and small clients."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil


def processes_in(run_dir: Path) -> list[psutil.Process]:
    """Processes whose working directory is the run directory (every component's is)."""
    out = []
    for proc in psutil.process_iter():
        try:
            if proc.cwd() == str(run_dir) and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            continue
    return out


def lab_ports(run_dir: Path) -> list[int]:
    """Every port lab.json lists: components' listeners and the links' proxy listeners."""
    desc = json.loads((run_dir / "lab.json").read_text())
    ports = [int(p["bind"].rsplit(":", 1)[1]) for c in desc["components"].values()
             for p in c["ports"].values()]
    ports += [int(link["listen"].rsplit(":", 1)[1]) for link in desc["links"].values()]
    return ports


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def assert_nothing_left(run_dir: Path, timeout_s: float = 5.0) -> None:
    """No process of the run, no port of the run listening, no pid file, no nginx temp dir."""
    deadline = time.monotonic() + timeout_s
    while True:
        procs = processes_in(run_dir)
        ports = [p for p in lab_ports(run_dir) if listening(p)]
        if not procs and not ports:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"left behind: processes {[p.cmdline() for p in procs]}, "
                                 f"listening ports {ports}")
        time.sleep(0.05)
    assert not (run_dir / "lab.pid").exists()
    assert not (run_dir / "nginx" / "tmp").exists()


async def rpc(url: str, method: str, *params: Any, ssl_ctx: ssl.SSLContext | None = None,
              timeout_s: float = 10.0) -> Any:
    """One JSON-RPC call on a fresh connection; returns the result."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    conn = aiohttp.TCPConnector(force_close=True, ssl=ssl_ctx if ssl_ctx is not None else True)
    async with aiohttp.ClientSession(connector=conn,
                                     timeout=aiohttp.ClientTimeout(total=timeout_s)) as s:
        async with s.post(url, json=body) as r:
            reply = await r.json(content_type=None)
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


async def get_status(url: str, timeout_s: float = 5.0) -> int:
    conn = aiohttp.TCPConnector(force_close=True)
    try:
        async with aiohttp.ClientSession(connector=conn,
                                         timeout=aiohttp.ClientTimeout(total=timeout_s)) as s:
            async with s.get(url) as r:
                return r.status
    except (aiohttp.ClientError, TimeoutError, OSError):
        return 0


async def wait_for_status(url: str, status: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    last = -1
    while time.monotonic() < deadline:
        last = await get_status(url, 2.0)
        if last == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} answered {last}, expected {status} within {timeout_s} s")
