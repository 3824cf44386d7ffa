"""Run ``dubhe-node`` as a subprocess with a generated config, as users and CI do.

The node prints one ``dubhe-node ready rpc=... ws=...`` line once it listens (ports may be
OS-chosen with ``:0``); :meth:`NodeProcess.start` waits for it and exposes the URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import tomli_w

_READY = re.compile(r"dubhe-node ready rpc=(\S+) ws=(\S+)")


class NodeStartError(RuntimeError):
    """The node exited or did not become ready; ``output`` has what it printed."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(f"{message}\n--- node output ---\n{output}")
        self.output = output


def default_config(workdir: Path, **overrides: dict[str, Any]) -> dict[str, Any]:
    """A loopback config with OS-chosen ports and state under ``workdir``; sections in
    ``overrides`` are merged key by key."""
    cfg: dict[str, Any] = {
        "api": {"rpc_bind": "127.0.0.1:0", "ws_bind": "127.0.0.1:0"},
        "state": {"backend": "rocksdb", "path": str(workdir / "data")},
        "node": {"block_time_ms": 100},
        "security": {"audit_log": str(workdir / "audit.jsonl")},
    }
    for section, values in overrides.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


class NodeProcess:
    def __init__(self, workdir: Path, config: dict[str, Any], *, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.config = config
        self.config_path = workdir / "config.toml"
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.rpc_url = ""
        self.ws_url = ""
        self.output: list[str] = []
        self._pump: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float = 20.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_bytes(tomli_w.dumps(self.config).encode())
        env = {**os.environ, **(self.env or {})}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "node", "--config", str(self.config_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
        )
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    line = await self.proc.stdout.readline()
                    if not line:
                        await self.proc.wait()
                        raise NodeStartError(f"node exited with {self.proc.returncode}", "".join(self.output))
                    text = line.decode(errors="replace")
                    self.output.append(text)
                    m = _READY.search(text)
                    if m:
                        self.rpc_url, self.ws_url = m.group(1), m.group(2)
                        break
        except TimeoutError:
            await self.kill()
            raise NodeStartError(f"node not ready within {timeout_s} s", "".join(self.output)) from None
        self._pump = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.output.append(line.decode(errors="replace"))

    async def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM and wait; returns the exit code (kills after ``timeout_s``)."""
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc and self.proc.returncode is not None else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout_s):
                rc = await self.proc.wait()
        except TimeoutError:
            await self.kill()
            return -9
        await self._finish_pump()
        return rc

    async def kill(self) -> None:
        """SIGKILL (a crash, as ``kill -9``)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        await self._finish_pump()

    async def _finish_pump(self) -> None:
        if self._pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pump, 2)
            self._pump = None

    async def __aenter__(self) -> NodeProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
