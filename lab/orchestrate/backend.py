"""Where a lab's components run: the :class:`Backend` interface and the data it works on.

The orchestrator (:mod:`lab.orchestrate.lab`) decides *what* runs (rendered configs, command
lines, order, readiness); a backend decides *where*: local processes
(:class:`~lab.orchestrate.local.LocalBackend`, the default), a recording fake for tests
(:class:`~lab.orchestrate.fake.FakeBackend`), or containers. Everything a backend does is one of
the methods below, so each can be replaced and recorded.

Addresses come in two views (:class:`Endpoint`): where the *other components* reach a port
(``peer``) and where the *host* — the lab's clients, probes and the user — reaches it
(``public``). For local processes they are the same loopback address; a container backend
gives a network name to peers and a published loopback port to the host.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Endpoint:
    """One listening port of a component. ``bind`` is what the component listens on."""

    bind_host: str
    port: int
    peer_host: str
    public_host: str
    public_port: int

    @property
    def bind(self) -> str:
        return f"{self.bind_host}:{self.port}"

    @property
    def peer(self) -> str:
        return f"{self.peer_host}:{self.port}"

    @property
    def public(self) -> str:
        return f"{self.public_host}:{self.public_port}"


@dataclass(frozen=True)
class ProcessSpec:
    """One component's process. ``argv[0]`` may be ``"python"``: the backend substitutes the
    interpreter it runs components with. ``stop_signal`` asks for a clean exit."""

    name: str
    argv: tuple[str, ...]
    cwd: Path
    log: Path
    env: tuple[tuple[str, str], ...] = ()
    stop_signal: int = signal.SIGTERM


@dataclass
class ProcessRecord:
    """What the pid file keeps of a running component (to clean up after a killed owner)."""

    name: str
    pid: int
    create_time: float
    extra: dict[str, str] = field(default_factory=dict)


class Backend(Protocol):
    """Starts, stops and faults the processes of one lab run."""

    #: ``local``, ``fake``, ``docker``: shown in lab.json and status.
    name: str

    def allocate(self, component: str, port: str) -> Endpoint:
        """Reserve a listening port for ``component`` (``port`` names it: ``rpc``, ``http``...)."""
        ...

    def release(self, component: str, port: str) -> None:
        """Forget a reservation so :meth:`allocate` picks a new port (after "address in use")."""
        ...

    async def start(self, spec: ProcessSpec) -> ProcessRecord:
        """Start the process (it must not be running); returns at once, before readiness."""
        ...

    async def stop(self, name: str, timeout_s: float = 10.0) -> int | None:
        """Ask the process to exit (its ``stop_signal``; a paused one is resumed first), kill it
        after ``timeout_s``; returns its exit code (None if it was not running)."""
        ...

    async def kill(self, name: str) -> None:
        """SIGKILL, as ``kill -9`` (a crash). Returns once it is gone."""
        ...

    async def pause(self, name: str) -> None:
        """Freeze (SIGSTOP): it keeps its sockets but answers nothing."""
        ...

    async def resume(self, name: str) -> None:
        """Unfreeze (SIGCONT)."""
        ...

    def exit_code(self, name: str) -> int | None:
        """The exit code if the process has ended, else None (also None if never started)."""
        ...

    def running(self, name: str) -> bool:
        ...

    def paused(self, name: str) -> bool:
        ...

    def records(self) -> dict[str, ProcessRecord]:
        """The running processes, for the pid file."""
        ...

    async def close(self) -> None:
        """Stop whatever is still running and release every reservation."""
        ...
