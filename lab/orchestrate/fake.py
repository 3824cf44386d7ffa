"""A backend, prober and link control that only record what the orchestrator asks of them.

They let the orchestration logic (order of starts, readiness, teardown after a failure,
component faults, the files written) be tested without processes, ports or nginx, in the way
hive tests its simulator API against ``internal/fakes``::

    calls: list[tuple[str, ...]] = []
    backend = FakeBackend(calls, hooks={"start": fail_on("node")})
    lab = await Lab.start(spec, backend=backend, prober=FakeProber(calls),
                          links=FakeLinks(calls), runs_root=tmp_path)
    assert calls[:3] == [("allocate", "l1-eth", "rpc"), ...]

A hook gets the same arguments as the method it replaces and may raise to simulate a failure.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from lab.orchestrate.backend import Endpoint, ProcessRecord, ProcessSpec
from lab.orchestrate.errors import EnvironmentProblem
from lab.orchestrate.plan import LinkPlan, Probe
from lab.proxy.profiles import Profile

Calls = list[tuple[str, ...]]
Hook = Callable[..., Any]


def fail_on(name: str, exc: Exception | None = None) -> Hook:
    """A ``start`` hook that fails for component ``name``."""

    def hook(spec: ProcessSpec) -> None:
        if spec.name == name:
            raise exc or EnvironmentProblem(f"cannot start {name} (fake)")

    return hook


class FakeBackend:
    """Records every call in ``calls``; processes "run" until stopped or killed."""

    name = "fake"
    nginx_binary = "nginx"

    def __init__(self, calls: Calls | None = None, hooks: dict[str, Hook] | None = None) -> None:
        self.calls: Calls = calls if calls is not None else []
        self.hooks = hooks or {}
        self._ports = itertools.count(40_000)
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._state: dict[str, str] = {}  # running | paused | exited
        self._exit: dict[str, int] = {}
        self._pids = itertools.count(1000)
        self._records: dict[str, ProcessRecord] = {}
        self.specs: dict[str, ProcessSpec] = {}

    def _hook(self, method: str, *args: Any) -> None:
        hook = self.hooks.get(method)
        if hook is not None:
            hook(*args)

    def allocate(self, component: str, port: str) -> Endpoint:
        self.calls.append(("allocate", component, port))
        key = (component, port)
        if key not in self._endpoints:
            p = next(self._ports)
            self._endpoints[key] = Endpoint("127.0.0.1", p, "127.0.0.1", "127.0.0.1", p)
        return self._endpoints[key]

    def release(self, component: str, port: str) -> None:
        self.calls.append(("release", component, port))
        self._endpoints.pop((component, port), None)

    async def check_nginx(self, spec: ProcessSpec) -> None:
        self.calls.append(("check_nginx", spec.name))
        self._hook("check_nginx", spec)

    async def start(self, spec: ProcessSpec) -> ProcessRecord:
        self.calls.append(("start", spec.name))
        self._hook("start", spec)
        if self._state.get(spec.name) in ("running", "paused"):
            raise RuntimeError(f"{spec.name} is already running")
        self.specs[spec.name] = spec
        self._state[spec.name] = "running"
        self._exit.pop(spec.name, None)
        record = ProcessRecord(spec.name, next(self._pids), 0.0)
        self._records[spec.name] = record
        return record

    def crash(self, name: str, code: int = 1) -> None:
        """Make a process exit on its own (as if it crashed)."""
        self._state[name] = "exited"
        self._exit[name] = code

    async def stop(self, name: str, timeout_s: float = 10.0) -> int | None:
        self.calls.append(("stop", name))
        self._hook("stop", name)
        if self._state.get(name) in ("running", "paused"):
            self._state[name] = "exited"
            self._exit[name] = 0
        return self._exit.get(name)

    async def kill(self, name: str) -> None:
        self.calls.append(("kill", name))
        if self._state.get(name) in ("running", "paused"):
            self._state[name] = "exited"
            self._exit[name] = -9

    async def pause(self, name: str) -> None:
        self.calls.append(("pause", name))
        if self._state.get(name) == "running":
            self._state[name] = "paused"

    async def resume(self, name: str) -> None:
        self.calls.append(("resume", name))
        if self._state.get(name) == "paused":
            self._state[name] = "running"

    def exit_code(self, name: str) -> int | None:
        return self._exit.get(name) if self._state.get(name) == "exited" else None

    def running(self, name: str) -> bool:
        return self._state.get(name) == "running"

    def paused(self, name: str) -> bool:
        return self._state.get(name) == "paused"

    def records(self) -> dict[str, ProcessRecord]:
        return {n: r for n, r in self._records.items()
                if self._state.get(n) in ("running", "paused")}

    async def close(self) -> None:
        self.calls.append(("close",))
        for name in [n for n, s in self._state.items() if s in ("running", "paused")]:
            await self.stop(name)


class FakeProber:
    """Every probe passes unless ``ready`` (component URL -> bool or awaitable) says otherwise."""

    def __init__(self, calls: Calls | None = None,
                 ready: Callable[[Probe], bool | Awaitable[bool]] | None = None) -> None:
        self.calls: Calls = calls if calls is not None else []
        self.ready = ready

    async def check(self, probe: Probe) -> bool:
        self.calls.append(("probe", probe.kind, probe.url))
        if self.ready is None:
            return True
        result = self.ready(probe)
        return await result if isinstance(result, Awaitable) else result

    async def close(self) -> None:
        self.calls.append(("prober_close",))


class FakeLinks:
    """Link control that keeps the links and toxics in memory."""

    def __init__(self, calls: Calls | None = None) -> None:
        self.calls: Calls = calls if calls is not None else []
        self.links: dict[str, LinkPlan] = {}
        self.toxics: dict[str, list[dict[str, Any]]] = {}

    async def create(self, links: Iterable[LinkPlan]) -> None:
        for lp in links:
            self.calls.append(("create_link", lp.name))
            self.links[lp.name] = lp
            self.toxics.setdefault(lp.name, [])

    async def apply(self, profile: Profile) -> list[tuple[str, str]]:
        added = []
        for spec in profile.proxies:
            for body in spec.toxics:
                self.calls.append(("add_toxic", spec.link, body["name"]))
                self.toxics[spec.link].append(body)
                added.append((spec.link, body["name"]))
        return added

    async def clear(self, link: str | None = None) -> list[str]:
        names = [link] if link else list(self.links)
        for name in names:
            self.calls.append(("clear", name))
            self.toxics[name] = []
        return names

    async def active(self) -> dict[str, dict[str, Any]]:
        return {n: {"enabled": True, "toxics": list(t)} for n, t in self.toxics.items()}

    async def events(self, since: int = 0) -> list[dict[str, Any]]:
        return []

    async def remove(self, links: Iterable[str]) -> None:
        for name in links:
            self.calls.append(("remove_link", name))

    async def close(self) -> None:
        self.calls.append(("links_close",))
