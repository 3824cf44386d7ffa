"""The local-process backend (the embedded default): each component is a subprocess on loopback.

* Ports are picked on 127.0.0.1 below the kernel's ephemeral range, so an outgoing connection
  (a swarm opens thousands) can never be holding the port a component is about to listen on;
  each candidate is test-bound first.
* Each process runs in its own session and process group (Ctrl-C in the terminal reaches only
  the lab, which tears down in order; stop/kill/pause act on the whole group, e.g. nginx's
  workers or the node's worker processes) with stdout and stderr appended to its log file.
* With ``die_with_owner`` (default) every component gets SIGTERM from the kernel when the lab
  process dies, even by SIGKILL (``setpriv --pdeathsig``); the pid file covers what that cannot
  (a component frozen by SIGSTOP at that moment, or a system without setpriv).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from lab.orchestrate.backend import Endpoint, ProcessRecord, ProcessSpec
from lab.orchestrate.errors import EnvironmentProblem

_LOW_PORT = 10_000


def ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral port range (where outgoing connections get their local port)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def port_is_free(host: str, port: int) -> bool:
    """Can we bind ``host:port`` right now (without SO_REUSEADDR, so TIME_WAIT counts as busy)?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Free loopback ports below the ephemeral range, never the same one twice per allocator."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        low, _ = ephemeral_range()
        self._low, self._high = _LOW_PORT, max(_LOW_PORT + 1000, low)
        self._taken: set[int] = set()
        self._rng = random.SystemRandom()  # not a workload choice: ports need no replay

    def take(self) -> int:
        for _ in range(2000):
            port = self._rng.randrange(self._low, self._high)
            if port not in self._taken and port_is_free(self.host, port):
                self._taken.add(port)
                return port
        raise EnvironmentProblem(f"no free port on {self.host} in {self._low}..{self._high}")

    def give_back(self, port: int) -> None:
        self._taken.discard(port)


def raise_descriptor_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (components inherit it: a
    proxy carrying thousands of WebSockets needs four descriptors per connection)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


class _Proc:
    def __init__(self, spec: ProcessSpec, popen: subprocess.Popen[bytes], record: ProcessRecord
                 ) -> None:
        self.spec = spec
        self.popen = popen
        self.record = record
        self.paused = False


class LocalBackend:
    """Processes on this machine; see the module docstring."""

    name = "local"

    def __init__(self, *, python: str | None = None, die_with_owner: bool = True) -> None:
        self.python = python or sys.executable
        raise_descriptor_limit()
        self.ports = PortAllocator()
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._procs: dict[str, _Proc] = {}
        setpriv = shutil.which("setpriv")
        self._death_prefix: tuple[str, ...] = (
            (setpriv, "--pdeathsig", "TERM", "--") if die_with_owner and setpriv else ())

    # -- ports -----------------------------------------------------------------------------
    def allocate(self, component: str, port: str) -> Endpoint:
        key = (component, port)
        if key not in self._endpoints:
            p = self.ports.take()
            self._endpoints[key] = Endpoint("127.0.0.1", p, "127.0.0.1", "127.0.0.1", p)
        return self._endpoints[key]

    def release(self, component: str, port: str) -> None:
        ep = self._endpoints.pop((component, port), None)
        if ep is not None:
            self.ports.give_back(ep.port)

    # -- processes -------------------------------------------------------------------------
    async def start(self, spec: ProcessSpec) -> ProcessRecord:
        old = self._procs.get(spec.name)
        if old is not None and old.popen.poll() is None:
            raise RuntimeError(f"{spec.name} is already running (pid {old.popen.pid})")
        argv = list(spec.argv)
        if argv and argv[0] == "python":
            argv[0] = self.python
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **dict(spec.env)}
        with open(spec.log, "ab") as log:  # noqa: ASYNC230 - one short append
            log.write(f"=== lab: starting {spec.name} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}: "
                      f"{' '.join(argv)}\n".encode())
            log.flush()
            try:
                # Popen from the event loop's thread: the death signal follows the thread that
                # forked, and this one lives as long as the lab.
                popen = subprocess.Popen(  # noqa: ASYNC220 - returns at once (no wait)
                    [*self._death_prefix, *argv], cwd=spec.cwd, env=env, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                raise EnvironmentProblem(
                    f"cannot start {spec.name} ({argv[0]}): {exc.strerror or exc}") from None
        try:
            created = psutil.Process(popen.pid).create_time()
        except psutil.Error:
            created = 0.0
        record = ProcessRecord(spec.name, popen.pid, created)
        self._procs[spec.name] = _Proc(spec, popen, record)
        return record

    def _signal_group(self, proc: _Proc, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.popen.pid, sig)

    async def _wait(self, proc: _Proc, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while True:
            rc = proc.popen.poll()
            if rc is not None:
                return rc
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.01)

    async def stop(self, name: str, timeout_s: float = 10.0) -> int | None:
        proc = self._procs.get(name)
        if proc is None:
            return None
        if proc.popen.poll() is None:
            if proc.paused:
                self._signal_group(proc, signal.SIGCONT)
                proc.paused = False
            with contextlib.suppress(ProcessLookupError):
                proc.popen.send_signal(proc.spec.stop_signal)
            rc = await self._wait(proc, timeout_s)
            if rc is None:
                self._signal_group(proc, signal.SIGKILL)
                rc = await self._wait(proc, 5.0)
        # Whatever the leader left in its group (workers) goes with it.
        self._signal_group(proc, signal.SIGKILL)
        return proc.popen.returncode

    async def kill(self, name: str) -> None:
        proc = self._procs.get(name)
        if proc is None or proc.popen.poll() is not None:
            return
        self._signal_group(proc, signal.SIGKILL)
        proc.paused = False
        await self._wait(proc, 10.0)

    async def pause(self, name: str) -> None:
        proc = self._procs[name]
        if proc.popen.poll() is None:
            self._signal_group(proc, signal.SIGSTOP)
            proc.paused = True

    async def resume(self, name: str) -> None:
        proc = self._procs[name]
        if proc.popen.poll() is None:
            self._signal_group(proc, signal.SIGCONT)
        proc.paused = False

    def exit_code(self, name: str) -> int | None:
        proc = self._procs.get(name)
        return None if proc is None else proc.popen.poll()

    def running(self, name: str) -> bool:
        proc = self._procs.get(name)
        return proc is not None and proc.popen.poll() is None

    def paused(self, name: str) -> bool:
        proc = self._procs.get(name)
        return proc is not None and proc.paused and proc.popen.poll() is None

    def records(self) -> dict[str, ProcessRecord]:
        return {n: p.record for n, p in self._procs.items() if p.popen.poll() is None}

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(n) for n in list(self._procs)))
        for key in list(self._endpoints):
            self.release(*key)
