"""Run ``dubhe-node`` as a subprocess with a generated config, as users and CI do.

The node prints one ``dubhe-node ready rpc=... ws=...`` line once it listens (ports may be
OS-chosen with ``:0``); :meth:`NodeProcess.start` waits for it and exposes the URLs. A daemon
thread then keeps draining the node's output into :attr:`NodeProcess.output`, so the pipe never
fills. The class is synchronous (usable from fixtures and benchmark drivers); async code calls
:meth:`astart` / :meth:`astop`, which run it on a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
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
    def __init__(self, workdir: Path, config: dict[str, Any], *, env: dict[str, str] | None = None,
                 config_name: str = "config.toml", prefix: tuple[str, ...] = ()) -> None:
        """``prefix`` runs the node under a wrapper command (``("prlimit", "--nofile=512")``)."""
        self.workdir = workdir
        self.prefix = prefix
        self.config = config
        self.config_path = workdir / config_name
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.rpc_url = ""
        self.ws_url = ""
        self.output: list[str] = []
        self._drain: threading.Thread | None = None

    # Short aliases used throughout the tests.
    @property
    def rpc(self) -> str:
        return self.rpc_url

    @property
    def ws(self) -> str:
        return self.ws_url

    def start(self, timeout_s: float = 30.0) -> NodeProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_bytes(tomli_w.dumps(self.config).encode())
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "node", "--config", str(self.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(self.env or {})},
        )
        out = self.proc.stdout
        assert out is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = out.readline()
            if not line:
                self.proc.wait()
                raise NodeStartError(
                    f"node exited with {self.proc.returncode}", "".join(self.output)
                )
            self.output.append(line)
            m = _READY.search(line)
            if m:
                self.rpc_url, self.ws_url = m.group(1), m.group(2)
                self._drain = threading.Thread(target=self._pump, daemon=True)
                self._drain.start()
                return self
        self.kill()
        raise NodeStartError(f"node not ready within {timeout_s} s", "".join(self.output))

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def wait(self, timeout_s: float | None = None) -> int:
        assert self.proc is not None
        rc = self.proc.wait(timeout_s)
        if self._drain is not None:
            self._drain.join(2)
        return rc

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> int:
        """Send ``sig`` (default SIGTERM) and wait; returns the exit code (SIGKILL after the
        timeout)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return -signal.SIGKILL

    def kill(self) -> None:
        """SIGKILL, as ``kill -9`` (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.wait()

    async def astart(self, timeout_s: float = 30.0) -> NodeProcess:
        return await asyncio.to_thread(self.start, timeout_s)

    async def astop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> int:
        return await asyncio.to_thread(self.stop, sig, timeout_s)
