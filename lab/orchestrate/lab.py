"""The lab: bring every component up behind its links, fault them, tear everything down.

::

    async with Lab.up(LabSpec(), progress=print) as lab:
        lab.endpoints["wss"]                       # client -> client-edge-tls -> nginx -> node
        await lab.apply_profile("fault-profiles/mobile-3g.toml")
        await lab.kill("node"); await lab.restart("node")

:meth:`Lab.up` starts every component at once (they do not need each other to start), creates
the links as soon as the proxy answers, waits for each component's real readiness, then checks
the whole path end to end (``/health`` through client-edge, nginx and nginx-node-rpc to the node,
over plain HTTP and TLS). Leaving the ``async with`` — normally, by an exception, by
cancellation (Ctrl-C) — tears everything down; if the owning process is killed, the components
get SIGTERM from the kernel and the next ``up``/``down`` cleans whatever remains (pid file).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil

from lab.nginx.check import check_config, find_nginx
from lab.nginx.render import NginxPaths
from lab.nginx.tls import write_tls
from lab.orchestrate.backend import Backend
from lab.orchestrate.errors import ComponentError, EnvironmentProblem, SpecError
from lab.orchestrate.handle import LabHandle
from lab.orchestrate.linkctl import LinkControl, ToxiproxyLinks, check_external
from lab.orchestrate.local import LocalBackend
from lab.orchestrate.plan import Plan, Probe, make_plan
from lab.orchestrate.readiness import HttpProber, Prober, close_quietly, wait_ready
from lab.orchestrate.rundir import DEFAULT_ROOT, RunDir, clean_dead_labs, write_json
from lab.orchestrate.spec import LabSpec
from lab.proxy.profiles import load_profile

Progress = Callable[[str], None]

#: Component actions :meth:`Lab.act` takes (the last four need a container backend).
ACTIONS = ("kill", "stop", "start", "restart", "pause", "resume", "unpause",
           "disconnect", "reconnect", "cut", "uncut")


def _quiet(_: str) -> None:
    pass


def pick_seed(spec: LabSpec) -> int:
    """The spec's seed, else the first profile's, else a fresh random one (printed by up)."""
    if spec.seed is not None:
        return spec.seed
    for path in spec.profiles:
        with contextlib.suppress(Exception):
            seed = load_profile(path).seed
            if seed is not None:
                return seed
    return random.SystemRandom().randrange(2**31)


class Lab(LabHandle):
    """A lab this process owns (see the module docstring). Build with :meth:`up`/:meth:`start`."""

    def __init__(self, spec: LabSpec, run: RunDir, plan: Plan, backend: Backend,
                 links: LinkControl, prober: Prober, progress: Progress,
                 ready_timeout_s: float) -> None:
        self.spec = spec
        self.run = run
        self.plan = plan
        self.backend = backend
        self.prober = prober
        self.progress = progress
        self.ready_timeout_s = ready_timeout_s
        self.timings: dict[str, float] = {}
        self._t0 = time.monotonic()
        self._down = False
        super().__init__(run, self._describe("starting"))
        self._links = self._link_control = links

    # -- construction ----------------------------------------------------------------------
    @classmethod
    async def start(cls, spec: LabSpec | None = None, *, run_dir: Path | None = None,
                    runs_root: Path | None = None, backend: Backend | None = None,
                    progress: Progress | None = None, prober: Prober | None = None,
                    links: LinkControl | None = None, ready_timeout_s: float = 30.0) -> Lab:
        """Bring a lab up and return it; on any failure everything started is torn down and the
        error (a :class:`~lab.orchestrate.errors.LabError`) propagates."""
        spec = spec or LabSpec()
        progress = progress or _quiet
        root = (runs_root or DEFAULT_ROOT).resolve()
        for run_id, comps in clean_dead_labs(root).items():
            progress(f"   cleaned what a killed lab left in {run_id}: "
                     f"{', '.join(comps) or 'no processes'}")
        run = RunDir.new(root, spec.name, path=run_dir)
        seed = pick_seed(spec)
        backend = backend or LocalBackend()
        nginx_binary = getattr(backend, "nginx_binary", None)
        if spec.nginx.enabled and nginx_binary is None:
            nginx_binary = find_nginx()
        plan = make_plan(spec, run, seed, backend.allocate, nginx_binary=nginx_binary or "nginx",
                         tls_ca=run.path / "tls" / "ca.pem" if spec.nginx.enabled else None,
                         nginx_trusted=tuple(getattr(backend, "nginx_trusted", ())))
        # Profiles are checked against this run's links before anything starts.
        for path in spec.profiles:
            profile = load_profile(path, addresses=plan.link_addresses())
            if plan.external_proxy:
                check_external(profile, plan.proxy_api)
        run.make()
        links = links or ToxiproxyLinks(plan.proxy_api, external=plan.external_proxy)
        lab = cls(spec, run, plan, backend, links, prober or HttpProber(), progress,
                  ready_timeout_s)
        progress(f"== lab {run.run_id}: seed {seed} (replay with --seed {seed})")
        progress(f"   run directory {run.path}")
        try:
            await lab._bring_up()
        except BaseException:
            await asyncio.shield(lab.down(state="failed"))
            raise
        return lab

    @classmethod
    @contextlib.asynccontextmanager
    async def up(cls, spec: LabSpec | None = None, **kwargs: Any) -> AsyncIterator[Lab]:
        """``async with Lab.up(spec) as lab``: see :meth:`start` for the arguments."""
        lab = await cls.start(spec, **kwargs)
        try:
            yield lab
        finally:
            await asyncio.shield(lab.down())

    def _describe(self, state: str) -> dict[str, Any]:
        return {
            "run_id": self.run.run_id, "name": self.spec.name, "state": state,
            "seed": self.plan.seed, "backend": self.backend.name,
            "owner_pid": os.getpid(), "started": time.time(),
            "admin_token": self.plan.admin_token,
            "spec": self.spec.model_dump(mode="json"),
            **self.plan.describe(),
            "timings": self.timings,
        }

    def _save(self, state: str | None = None) -> None:
        if state is not None:
            self.desc["state"] = state
        self.desc["timings"] = {k: round(v, 4) for k, v in self.timings.items()}
        write_json(self.run.lab_json, self.desc)

    def _save_pids(self) -> None:
        me = psutil.Process()
        write_json(self.run.pid_file, {
            "owner": {"pid": me.pid, "create_time": me.create_time()},
            "backend": self.backend.name,
            "components": {n: {"pid": r.pid, "create_time": r.create_time, **r.extra}
                           for n, r in self.backend.records().items()},
        })

    # -- bring up --------------------------------------------------------------------------
    async def _bring_up(self) -> None:
        self._save_pids()
        self._save("starting")
        if "nginx" in self.plan.components:
            write_tls(self.run.path / "tls", self.run.run_id, self.spec.nginx.tls_cert)
        for comp in self.plan.components.values():
            for path, data in comp.files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        if "nginx" in self.plan.components:
            await self._check_nginx()
        for comp in self.plan.components.values():
            await self.backend.start(comp.process)
        self._save_pids()
        waits = [asyncio.ensure_future(w) for w in (
            *(self._ready(name) for name in self.plan.components), self._create_links())]
        try:
            await asyncio.gather(*waits)
        except BaseException:
            # one component failed: stop waiting for the others before the lab goes down (a
            # probe still running would open a client session after the prober was closed)
            for w in waits:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
            raise
        await self._check_edge()
        self.timings["up"] = time.monotonic() - self._t0
        self._save("up")
        self.progress(f"== lab up in {self.timings['up']:.2f} s")
        for profile in self.spec.profiles:
            await self.apply_profile(profile)
            self.progress(f"   fault profile applied: {profile}")

    async def _check_nginx(self) -> None:
        check = getattr(self.backend, "check_nginx", None)
        comp = self.plan.components["nginx"]
        if check is not None:
            await check(comp.process)
            return
        paths = NginxPaths(self.run.path / "nginx")
        paths.temp.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(check_config, comp.process.argv[0], paths.root, paths.conf,
                                paths.error_log)

    async def _ready(self, name: str) -> None:
        comp = self.plan.components[name]
        took = await wait_ready(name, comp.readiness, self.prober,
                                lambda: self.backend.exit_code(name), comp.process.log,
                                self.ready_timeout_s)
        since = time.monotonic() - self._t0
        self.timings[f"ready:{name}"] = since
        port = next(iter(comp.endpoints.values()))
        self.progress(f"   {name:<7} ready in {since:5.2f} s  {port.public}  "
                      f"(probe {took:.2f} s)")

    async def _create_links(self) -> None:
        if not self.plan.links:
            return
        if not self.plan.external_proxy:
            # The proxy answers first; links need it, nothing else.
            while "ready:proxy" not in self.timings:
                if self.backend.exit_code("proxy") is not None:
                    return  # _ready("proxy") reports it
                await asyncio.sleep(0.005)
        await self._link_control.create(self.plan.links.values())
        self.timings["links"] = time.monotonic() - self._t0
        self.progress(f"   links   ready in {self.timings['links']:5.2f} s  "
                      f"{len(self.plan.links)} through {self.plan.proxy_api}")

    async def _check_edge(self) -> None:
        eps = self.plan.endpoints
        if "health" not in eps:
            return
        # "insecure": the run presents a broken certificate on purpose.
        ca = (str(self.run.path / "tls" / "ca.pem") if self.spec.nginx.tls_cert == "valid"
              else "insecure")
        probes = [Probe("http", eps["health"]),
                  Probe("http", eps["https"] + "health", ca=ca)]
        for probe in probes:
            await wait_ready("edge", probe, self.prober, lambda: None,
                             self.run.log("nginx"), self.ready_timeout_s)
        self.timings["ready:edge"] = time.monotonic() - self._t0
        self.progress(f"   edge    ready in {self.timings['ready:edge']:5.2f} s  "
                      f"{eps['http']}  {eps['https']}")

    # -- tear down -------------------------------------------------------------------------
    async def down(self, state: str = "down") -> None:
        """Stop everything (idempotent). The run directory stays, with its logs."""
        if self._down:
            return
        self._down = True
        t0 = time.monotonic()
        self.progress("== tearing the lab down")
        with contextlib.suppress(Exception):
            if self.plan.external_proxy:
                await self._link_control.remove(self.plan.links)
        await self.close()
        await close_quietly(self.prober)
        await self.backend.close()
        self.run.remove_temp()
        with contextlib.suppress(FileNotFoundError):
            self.run.pid_file.unlink()
        self.timings["down"] = time.monotonic() - t0
        self._save(state)
        self.progress(f"== lab {state} in {self.timings['down']:.2f} s; logs in {self.run.path}")

    # -- component faults ------------------------------------------------------------------
    def _component(self, name: str) -> None:
        if name not in self.plan.components:
            raise ComponentError(name, "no such component (components: "
                                 f"{', '.join(self.plan.components)})")

    async def stop(self, name: str, timeout_s: float = 10.0) -> int | None:
        """Stop a component cleanly (its stop signal); returns its exit code."""
        self._component(name)
        rc = await self.backend.stop(name, timeout_s)
        self._save_pids()
        return rc

    async def kill(self, name: str) -> None:
        """``kill -9`` a component (a crash)."""
        self._component(name)
        await self.backend.kill(name)
        self._save_pids()

    async def pause(self, name: str) -> None:
        """SIGSTOP: the component keeps its connections but answers nothing."""
        self._component(name)
        await self.backend.pause(name)

    async def resume(self, name: str) -> None:
        self._component(name)
        await self.backend.resume(name)

    async def start_component(self, name: str) -> float:
        """Start a stopped component on its same ports and wait until it is ready; returns
        the seconds it took. A restarted proxy gets the lab's links again (without toxics)."""
        self._component(name)
        t0 = time.monotonic()
        comp = self.plan.components[name]
        await self.backend.start(comp.process)
        self._save_pids()
        await wait_ready(name, comp.readiness, self.prober, lambda: self.backend.exit_code(name),
                         comp.process.log, self.ready_timeout_s)
        if name == "proxy":
            await self._link_control.create(self.plan.links.values())
        return time.monotonic() - t0

    async def restart(self, name: str, *, kill: bool = False) -> float:
        """Stop (or ``kill``) then start a component; returns the seconds until ready again."""
        if kill:
            await self.kill(name)
        else:
            await self.stop(name)
        return await self.start_component(name)

    # -- container-level faults (a backend that runs components in containers) -----------
    def _container_fault(self, action: str, name: str) -> Any:
        self._component(name)
        method = getattr(self.backend, action, None)
        if method is None:
            raise EnvironmentProblem(f"{action} is a container-level fault: this lab runs on the "
                                     f"{self.backend.name} backend (use --backend docker)")
        return method

    async def disconnect(self, name: str) -> None:
        """Take a component off the lab network (a partition: open connections hang)."""
        await self._container_fault("disconnect", name)(name)

    async def reconnect(self, name: str) -> None:
        """Put it back with its same address (stalled connections resume)."""
        await self._container_fault("reconnect", name)(name)

    async def cut(self, name: str, mode: str = "reset") -> None:
        """Cut the component's TCP in its network namespace: ``reset`` (open connections reset,
        new ones refused) or ``drop`` (everything hangs)."""
        await self._container_fault("cut", name)(name, mode)

    async def uncut(self, name: str) -> None:
        await self._container_fault("uncut", name)(name)

    async def act(self, action: str, name: str) -> None:
        """A component action by name, for timelines and scenarios: one of :data:`ACTIONS`."""
        if action not in ACTIONS:
            raise SpecError("action", [(action, f"unknown action (actions: {', '.join(ACTIONS)})")])
        if action == "start":
            await self.start_component(name)
        elif action == "restart":
            await self.restart(name)
        elif action in ("resume", "unpause"):
            await self.resume(name)
        else:
            await getattr(self, action)(name)

    def state_of(self, name: str) -> str:
        """``running``, ``paused``, ``exited N`` or ``not started``."""
        self._component(name)
        if self.backend.paused(name):
            return "paused"
        if self.backend.running(name):
            return "running"
        rc = self.backend.exit_code(name)
        return "not started" if rc is None else f"exited {rc}"

    async def status(self) -> dict[str, Any]:
        out = await super().status()
        out["components"] = {n: self.state_of(n) for n in self.plan.components}
        return out
