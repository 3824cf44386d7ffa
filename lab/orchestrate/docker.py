"""The container backend: every component of a lab run in its own Docker container.

``Lab.start(spec, backend=DockerBackend())``, ``dubhe-lab up --backend docker`` or
``pytest --lab-backend=docker`` run the same lab as the local backend — same plan, links,
readiness checks, faults and results — with each component (mock L1s, fault proxy, node, nginx)
in a container from the lab image (:mod:`lab.container.images`, built on first use) on the run's
own network.

* **Network**: one user-defined bridge per run, ``dubhe-<run id>``, on a /24 picked free from
  ``DUBHE_LAB_SUBNETS`` (default 10.213.0.0/16). Components reach each other by fixed address
  (the plan's *peer* view); the host reaches them only through ports published on 127.0.0.1
  (the *public* view).
* **Two containers per component**: ``dubhe-<run id>-<component>-net`` holds the component's
  network identity (its fixed address, its name as an alias, its published ports) and runs
  nothing but ``sleep``; ``dubhe-<run id>-<component>`` runs the component in that network
  namespace (as Kubernetes pods do). So a killed or stopped component leaves an address that
  refuses connections at once, as a dead local process does, instead of an unreachable host
  (connects hanging for seconds); a restart keeps address and ports without touching the
  network; and nginx and the node, which resolve their upstreams once, keep reaching it.
* **Process containers** run with ``--init`` (a stop takes ~0.2 s, not 10), the project source
  bind-mounted read-only at its own path (code changes need no rebuild), the run directory
  bind-mounted read-write at its own path (every path in the plan is absolute and inside it),
  the host user's uid:gid, and stdout/stderr appended to ``logs/<component>.log`` as with local
  processes.
* **Labels**: containers and the network carry ``dubhe.lab``, ``dubhe.run=<run id>``,
  ``dubhe.component`` and ``dubhe.owner=<pid>:<start time>``. Teardown removes by label; the
  first start of any later docker lab (and ``dubhe-lab down``) removes what a killed owner left.
* **Faults** beyond the protocol's stop/kill/pause (which act on the process container):
  :meth:`disconnect`/:meth:`reconnect` the ``-net`` container (a partition: open connections
  hang, a stalled stream resumes on reconnect) and :meth:`cut`/:meth:`uncut` (``iptables REJECT
  --reject-with tcp-reset`` in the component's network namespace, through ``docker exec`` as
  root with ``NET_ADMIN``: open connections are reset, new ones refused; ``mode="drop"``
  black-holes instead).

Container state (running, paused, exit code) is kept from the engine's event stream, so the
readiness loop's ``exit_code`` polls cost nothing. ``start`` returns at once and creates the
container in the background (the lab starts all components concurrently); a failure to create
it shows as exit code 125 with the engine's message in the component's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from lab.container import engine
from lab.container.engine import (
    COMPONENT_LABEL,
    LAB_LABEL,
    OWNER_LABEL,
    ROLE_LABEL,
    RUN_DIR_LABEL,
    RUN_LABEL,
)
from lab.container.recipe import PROJECT_ROOT
from lab.orchestrate.backend import Endpoint, ProcessRecord, ProcessSpec
from lab.orchestrate.errors import EnvironmentProblem, NginxConfigError, SpecError
from lab.orchestrate.local import PortAllocator

#: Where run networks' subnets come from (each run takes a free /24).
DEFAULT_SUBNETS = "10.213.0.0/16"
#: Host directory (inside the project, ignored by git) for the containers' bytecode: the source
#: is mounted read-only, so without it every start would compile the project again.
PYCACHE = PROJECT_ROOT / "build" / "container" / "pycache"
#: Exit code reported for a container the engine could not create or start (as ``docker run``).
START_FAILED = 125

#: Container ports by (component kind, port name); anything else counts up from 20000. Inside
#: its own network namespace every component can use the same well-known numbers.
_KNOWN_PORTS = {("proxy", "api"): 8474, ("node", "rpc"): 8545, ("node", "ws"): 8546,
                ("nginx", "http"): 8080, ("nginx", "https"): 8443, ("l1", "rpc"): 8545}
_FIRST_LINK_PORT = 10001
_FIRST_OTHER_PORT = 20000


def container_port(component: str, port: str, used: set[int]) -> int:
    """The port ``component`` listens on inside its container (stable for a given plan)."""
    kind = "l1" if component.startswith("l1-") else component
    if kind == "l1" and port.startswith("rpc") and port != "rpc":
        wanted = 8544 + int(port.removeprefix("rpc"))  # rpc2 -> 8546, ...
    elif port.startswith("link:"):
        wanted = _FIRST_LINK_PORT
    else:
        wanted = _KNOWN_PORTS.get((kind, port), _FIRST_OTHER_PORT)
    while wanted in used:
        wanted += 1
    return wanted


def as_returncode(status: int) -> int:
    """A container's exit status as ``subprocess`` reports a process's: ``128 + N`` (killed by
    signal N: what the init process and the engine report) becomes ``-N``."""
    if 128 < status <= 128 + 64:
        return -(status - 128)
    return status


def component_process(init_pid: int, wait_s: float = 1.0) -> tuple[int, float]:
    """(pid, start time) on this host of the component a container runs: the child of its
    init process (``--init``), which is what a caller measuring the component (its memory, its
    CPU) wants; the init process itself if the child cannot be seen (another pid namespace)."""
    deadline = time.monotonic() + wait_s
    try:
        init = psutil.Process(init_pid)
        while True:
            children = init.children()
            if children:
                return children[0].pid, children[0].create_time()
            if time.monotonic() > deadline:
                return init.pid, init.create_time()
            time.sleep(0.01)
    except (psutil.Error, ValueError):
        return init_pid, 0.0


def pick_subnet(taken: list[ipaddress.IPv4Network], pool: str = DEFAULT_SUBNETS,
                rng: random.Random | None = None) -> ipaddress.IPv4Network:
    """A /24 of ``pool`` that overlaps none of ``taken``."""
    net = ipaddress.IPv4Network(pool)
    candidates = list(net.subnets(new_prefix=24)) if net.prefixlen <= 24 else [net]
    (rng or random.SystemRandom()).shuffle(candidates)
    for cand in candidates:
        if not any(cand.overlaps(t) for t in taken):
            return cand
    raise EnvironmentProblem(f"no free /24 left in {pool} for a lab network "
                             "(set DUBHE_LAB_SUBNETS to another range)")


def _existing_subnets(client: Any) -> list[ipaddress.IPv4Network]:
    out = []
    for net in client.api.networks():
        for cfg in (net.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                out.append(ipaddress.IPv4Network(cfg["Subnet"], strict=False))
    return out


# -- cleaning by label ---------------------------------------------------------------------------

def remove_by_label(client: Any, label: str) -> list[str]:
    """Remove every container (forced) and network carrying ``label`` (``key`` or ``key=value``);
    returns the names of the containers removed."""
    import docker

    def remove(c: dict[str, Any]) -> str | None:
        try:
            client.api.remove_container(c["Id"], force=True)
        except docker.errors.NotFound:
            return None
        return str(c["Names"][0].lstrip("/") if c.get("Names") else c["Id"][:12])

    # Concurrently: a forced removal of a container that holds a network namespace (the
    # components' -net sandboxes) takes 0.2-0.5 s of the engine's time each, and one after
    # the other they were most of a docker lab's teardown (1.6 s of 2.5 s).
    found = client.api.containers(all=True, filters={"label": label})
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(found)))) as pool:
        removed = [name for name in pool.map(remove, found) if name is not None]
    for n in client.api.networks(filters={"label": label}):
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_network(n["Id"])
    return removed


def clean_run(run_id: str, client: Any | None = None) -> list[str]:
    """Remove what a run left on the engine (its containers and network); returns the
    components whose containers were still there. No engine: nothing to clean (``[]``)."""
    try:
        own = client is None
        client = client or engine.connect(timeout_s=30)
    except EnvironmentProblem:
        return []
    try:
        names = remove_by_label(client, f"{RUN_LABEL}={run_id}")
        return [n.removeprefix(f"dubhe-{run_id}-") for n in names]
    finally:
        if own:
            client.close()


def clean_orphans(client: Any) -> dict[str, list[str]]:
    """Remove the containers and networks of every run whose owner process is gone (a killed
    ``dubhe-lab up`` or test session); runs with a live owner are left alone. Returns run id ->
    containers removed."""
    owners: dict[str, str] = {}
    for c in client.api.containers(all=True, filters={"label": LAB_LABEL}):
        labels = c.get("Labels") or {}
        owners.setdefault(labels.get(RUN_LABEL, ""), labels.get(OWNER_LABEL, ""))
    for n in client.api.networks(filters={"label": LAB_LABEL}):
        labels = n.get("Labels") or {}
        owners.setdefault(labels.get(RUN_LABEL, ""), labels.get(OWNER_LABEL, ""))
    out = {}
    for run_id, owner in owners.items():
        # No owner label: not a run of this tool's (a Compose lab, a testcontainers test).
        if run_id and owner and not engine.owner_alive(owner):
            out[run_id] = clean_run(run_id, client)
    return out


# -- the backend ---------------------------------------------------------------------------------

@dataclass
class _Container:
    name: str
    cid: str = ""
    pid: int = 0
    created: float = 0.0


class DockerBackend:
    """Components in containers; see the module docstring.

    ``progress`` receives the one-time set-up lines (an image build, orphans removed).
    ``image`` skips the image check and uses that tag. Construction connects to the engine and
    raises :class:`EnvironmentProblem` (one line) when none answers."""

    name = "docker"
    nginx_binary = "/usr/sbin/nginx"

    def __init__(self, *, progress: Any = None, image: str | None = None,
                 subnets: str | None = None, client: Any = None,
                 source: Path = PROJECT_ROOT) -> None:
        self.client = client or engine.connect()
        self.progress = progress or (lambda _msg: None)
        self.image = image
        self.source = source.resolve()
        self.subnets = subnets or os.environ.get("DUBHE_LAB_SUBNETS", DEFAULT_SUBNETS)
        self.ports = PortAllocator()
        self.owner = engine.owner_label()
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._container_ports: dict[str, set[int]] = {}
        self._ips: dict[str, str] = {}
        #: The run network's /24, picked free now (the plan needs the addresses); the network
        #: itself is created with the first container, once the run id is known.
        self.subnet = pick_subnet(_existing_subnets(self.client), self.subnets)
        self._hosts = self.subnet.hosts()
        self.gateway = str(next(self._hosts))
        #: nginx lets these read /metrics and /nginx_status: the host's published-port traffic
        #: arrives from the gateway, the client-edge link's from the proxy's address.
        self.nginx_trusted = (str(self.subnet),)
        self.run_id = ""
        self.run_dir: Path | None = None
        self.network = ""
        self._ready_lock = asyncio.Lock()
        self._containers: dict[str, _Container] = {}
        self._pending: dict[str, asyncio.Task[None]] = {}
        # Per container id: "created" | "running" | "paused" | "exited"; and exit codes.
        self._status: dict[str, str] = {}
        self._codes: dict[str, int] = {}
        self._state_lock = threading.Lock()
        self._events: Any = None
        self._events_thread: threading.Thread | None = None
        self._disconnected: set[str] = set()
        self._cuts: dict[str, str] = {}
        self._nginx_check: asyncio.Task[None] | None = None
        self._sandboxes: dict[str, str] = {}

    # -- addresses -------------------------------------------------------------------------
    def _ip(self, component: str) -> str:
        if component not in self._ips:
            self._ips[component] = str(next(self._hosts))
        return self._ips[component]

    def allocate(self, component: str, port: str) -> Endpoint:
        if component == "toxiproxy":
            raise SpecError("lab spec", [(
                "proxy.toxiproxy_url", "the docker backend runs the lab's own proxy in a "
                "container; an external Toxiproxy server needs the local backend")])
        key = (component, port)
        if key not in self._endpoints:
            used = self._container_ports.setdefault(component, set())
            inner = container_port(component, port, used)
            used.add(inner)
            self._endpoints[key] = Endpoint("0.0.0.0", inner, self._ip(component),
                                            "127.0.0.1", self.ports.take())
        return self._endpoints[key]

    def release(self, component: str, port: str) -> None:
        ep = self._endpoints.pop((component, port), None)
        if ep is not None:
            self.ports.give_back(ep.public_port)
            self._container_ports.get(component, set()).discard(ep.port)

    def endpoints_of(self, component: str) -> list[Endpoint]:
        return [ep for (c, _), ep in self._endpoints.items() if c == component]

    def container_name(self, component: str) -> str:
        return f"dubhe-{self.run_id}-{component}"

    def labels(self, component: str | None = None) -> dict[str, str]:
        out = {LAB_LABEL: "1", RUN_LABEL: self.run_id, OWNER_LABEL: self.owner,
               RUN_DIR_LABEL: str(self.run_dir)}
        if component is not None:
            out[COMPONENT_LABEL] = component
        return out

    # -- one-time set-up: images, orphans, the run's network, the event stream --------------
    async def _ready(self, run_dir: Path) -> None:
        async with self._ready_lock:
            if self.network:
                return
            await asyncio.to_thread(self._set_up, run_dir)

    def _set_up(self, run_dir: Path) -> None:
        import docker

        from lab.container.images import ensure_images

        self.run_dir = run_dir.resolve()
        self.run_id = self.run_dir.name
        if self.image is None:
            self.image = ensure_images(self.client, progress=self.progress).lab
        for run_id, names in clean_orphans(self.client).items():
            self.progress(f"   removed what a killed docker lab left in {run_id}: "
                          f"{', '.join(names) or 'its network'}")
        PYCACHE.mkdir(parents=True, exist_ok=True)
        name = f"dubhe-{self.run_id}"
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
            subnet=str(self.subnet), gateway=self.gateway)])
        # Subscribe to the run's container events before any container exists.
        self._events = self.client.api.events(
            decode=True, filters={"type": "container", "label": f"{RUN_LABEL}={self.run_id}"})
        self._events_thread = threading.Thread(target=self._follow_events, daemon=True,
                                               name=f"docker-events-{self.run_id}")
        self._events_thread.start()
        try:
            self.client.api.create_network(name, driver="bridge", ipam=ipam,
                                           labels=self.labels(), check_duplicate=True)
        except docker.errors.APIError as exc:
            raise EnvironmentProblem(f"cannot create the lab network {name} on {self.subnet}: "
                                     f"{exc.explanation or exc}") from None
        self.network = name

    def _follow_events(self) -> None:
        stream = self._events
        try:
            for event in stream:
                cid = event.get("id") or (event.get("Actor") or {}).get("ID", "")
                action = event.get("Action") or event.get("status") or ""
                attrs = (event.get("Actor") or {}).get("Attributes") or {}
                with self._state_lock:
                    if action == "start":
                        if self._status.get(cid) != "exited":
                            self._status[cid] = "running"
                    elif action == "die":
                        self._status[cid] = "exited"
                        with contextlib.suppress(ValueError):
                            self._codes[cid] = int(attrs.get("exitCode", "0"))
                    elif action == "pause" and self._status.get(cid) != "exited":
                        self._status[cid] = "paused"
                    elif action == "unpause" and self._status.get(cid) != "exited":
                        self._status[cid] = "running"
        except Exception:  # the stream is closed at teardown (or the engine went away)
            return

    def _set_status(self, cid: str, status: str, code: int | None = None) -> None:
        with self._state_lock:
            if status != "exited" and self._status.get(cid) == "exited":
                return
            self._status[cid] = status
            if code is not None:
                self._codes[cid] = code

    def _status_of(self, name: str) -> str:
        c = self._containers.get(name)
        if c is None:
            return "absent"
        if not c.cid:
            return "starting" if name in self._pending else "exited"
        with self._state_lock:
            return self._status.get(c.cid, "created")

    # -- processes -------------------------------------------------------------------------
    def _env(self, spec: ProcessSpec) -> dict[str, str]:
        return {"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(self.source),
                "PYTHONPYCACHEPREFIX": str(PYCACHE), "HOME": "/tmp",
                "DUBHE_LOG": str(spec.log), **dict(spec.env)}

    def command(self, spec: ProcessSpec) -> list[str]:
        """The container's command: the component's argv with its output appended to its log."""
        argv = list(spec.argv)
        if argv and argv[0] == "python":
            argv[0] = "python"  # the lab image's /opt/venv/bin/python, first on PATH
        return ["sh", "-c", 'exec "$@" >>"$DUBHE_LOG" 2>&1', spec.name, *argv]

    def _binds(self, run_dir: Path) -> dict[str, dict[str, str]]:
        return {str(self.source): {"bind": str(self.source), "mode": "ro"},
                str(PYCACHE): {"bind": str(PYCACHE), "mode": "rw"},
                str(run_dir): {"bind": str(run_dir), "mode": "rw"}}

    def _sandbox(self, name: str) -> str:
        """The component's network sandbox (created once): a container that only holds the
        address, the alias and the published ports. The component's process container joins
        its network namespace, so a killed or stopped component leaves its address answering
        "connection refused" (as a dead local process does), not an unreachable host, and a
        restart keeps the address and ports without touching the network."""
        if name in self._sandboxes:
            return self._sandboxes[name]
        api = self.client.api
        eps = self.endpoints_of(name)
        host_config = api.create_host_config(
            port_bindings={ep.port: ("127.0.0.1", ep.public_port) for ep in eps},
            init=True, cap_add=["NET_ADMIN"], network_mode=self.network)
        networking = api.create_networking_config({self.network: api.create_endpoint_config(
            ipv4_address=self._ip(name), aliases=[name])})
        created = api.create_container(
            self.image, command=["sleep", "infinity"], name=f"{self.container_name(name)}-net",
            user=f"{os.getuid()}:{os.getgid()}", labels={**self.labels(name), ROLE_LABEL: "net"},
            hostname=name, ports=[ep.port for ep in eps], host_config=host_config,
            networking_config=networking, stop_signal="SIGKILL")
        self._sandboxes[name] = created["Id"]
        api.start(created["Id"])
        return str(created["Id"])

    def _create(self, spec: ProcessSpec) -> tuple[str, int, float]:
        api = self.client.api
        assert self.run_dir is not None and self.image is not None
        name = spec.name
        sandbox = self._sandbox(name)
        host_config = api.create_host_config(
            binds=self._binds(self.run_dir), init=True, network_mode=f"container:{sandbox}")
        created = api.create_container(
            self.image, command=self.command(spec), name=self.container_name(name),
            user=f"{os.getuid()}:{os.getgid()}", working_dir=str(spec.cwd),
            environment=self._env(spec), labels={**self.labels(name), ROLE_LABEL: "process"},
            host_config=host_config, stop_signal=signal.Signals(spec.stop_signal).name)
        cid = created["Id"]
        self._containers[name].cid = cid
        self._set_status(cid, "created")
        api.start(cid)
        self._set_status(cid, "running")
        state = api.inspect_container(cid)["State"]
        if not state.get("Running"):
            self._set_status(cid, "exited", int(state.get("ExitCode") or 0))
        pid, made = component_process(int(state.get("Pid") or 0))
        return cid, pid, made

    async def _create_in_background(self, spec: ProcessSpec) -> None:
        import docker

        c = self._containers[spec.name]
        try:
            _, c.pid, c.created = await asyncio.to_thread(self._create, spec)
        except docker.errors.DockerException as exc:
            message = getattr(exc, "explanation", None) or str(exc)
            with open(spec.log, "ab") as log:  # noqa: ASYNC230 - one short append
                log.write(f"=== lab: the engine could not start {spec.name}: {message}\n".encode())
            if c.cid:
                self._set_status(c.cid, "exited", START_FAILED)
            else:
                c.cid = f"failed-{spec.name}"
                self._set_status(c.cid, "exited", START_FAILED)
        finally:
            self._pending.pop(spec.name, None)

    async def _settled(self, name: str) -> None:
        task = self._pending.get(name)
        if task is not None:
            await asyncio.shield(task)

    async def start(self, spec: ProcessSpec) -> ProcessRecord:
        await self._ready(spec.cwd)
        await self._settled(spec.name)
        if spec.name == "nginx" and self._nginx_check is not None:
            check, self._nginx_check = self._nginx_check, None
            await check  # raises NginxConfigError for a refused config
        if self._status_of(spec.name) in ("running", "paused", "created"):
            raise RuntimeError(f"{spec.name} is already running "
                               f"(container {self.container_name(spec.name)})")
        old = self._containers.get(spec.name)
        if old is not None and old.cid and not old.cid.startswith("failed-"):
            await asyncio.to_thread(self._remove, old.cid)
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log, "ab") as log:  # noqa: ASYNC230 - one short append
            log.write(f"=== lab: starting {spec.name} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')} "
                      f"in container {self.container_name(spec.name)} ({self.image}, "
                      f"{self._ip(spec.name)}): {' '.join(spec.argv)}\n".encode())
        self._containers[spec.name] = _Container(self.container_name(spec.name))
        self._pending[spec.name] = asyncio.create_task(self._create_in_background(spec))
        return ProcessRecord(spec.name, 0, 0.0, {"container": self.container_name(spec.name)})

    def _remove(self, cid: str) -> None:
        import docker

        with contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_container(cid, force=True)

    def _cid(self, name: str) -> str:
        c = self._containers.get(name)
        return c.cid if c is not None and c.cid and not c.cid.startswith("failed-") else ""

    def _exit_code_now(self, cid: str) -> int | None:
        state = self.client.api.inspect_container(cid)["State"]
        if state.get("Running"):
            return None
        code = int(state.get("ExitCode") or 0)
        self._set_status(cid, "exited", code)
        return code

    async def stop(self, name: str, timeout_s: float = 10.0) -> int | None:
        await self._settled(name)
        cid = self._cid(name)
        if not cid:
            return self.exit_code(name)
        status = self._status_of(name)
        if status == "paused":
            await self.resume(name)
        if status in ("running", "paused", "created"):
            await asyncio.to_thread(self.client.api.stop, cid, timeout=max(1, round(timeout_s)))
            await asyncio.to_thread(self._exit_code_now, cid)
        return self.exit_code(name)

    async def kill(self, name: str) -> None:
        await self._settled(name)
        cid = self._cid(name)
        if not cid or self._status_of(name) == "exited":
            return

        def kill_and_wait() -> None:
            import docker

            with contextlib.suppress(docker.errors.APIError):  # already gone
                self.client.api.kill(cid)
            self.client.api.wait(cid, timeout=10)
            self._exit_code_now(cid)

        await asyncio.to_thread(kill_and_wait)

    async def pause(self, name: str) -> None:
        await self._settled(name)
        cid = self._cid(name)
        if cid and self._status_of(name) == "running":
            await asyncio.to_thread(self.client.api.pause, cid)
            self._set_status(cid, "paused")

    async def resume(self, name: str) -> None:
        await self._settled(name)
        cid = self._cid(name)
        if cid and self._status_of(name) == "paused":
            await asyncio.to_thread(self.client.api.unpause, cid)
            self._set_status(cid, "running")

    def exit_code(self, name: str) -> int | None:
        """As the local backend reports it: the process's exit status, or ``-N`` for a death by
        signal N (the engine's ``128 + N``, as ``--init`` passes it on)."""
        c = self._containers.get(name)
        if c is None or not c.cid or self._status_of(name) != "exited":
            return None
        with self._state_lock:
            code = self._codes.get(c.cid)
        return as_returncode(code) if code is not None else None

    def running(self, name: str) -> bool:
        return self._status_of(name) in ("starting", "created", "running", "paused")

    def paused(self, name: str) -> bool:
        return self._status_of(name) == "paused"

    def records(self) -> dict[str, ProcessRecord]:
        return {name: ProcessRecord(name, c.pid, c.created,
                                    {"container": c.name, "ip": self._ips.get(name, "")})
                for name, c in self._containers.items() if self.running(name)}

    # -- container-level faults -------------------------------------------------------------
    def _net(self, name: str) -> str:
        sandbox = self._sandboxes.get(name)
        if sandbox is None:
            raise EnvironmentProblem(f"{name} was never started: it has no network to fault")
        return sandbox

    async def disconnect(self, name: str) -> None:
        """Take the component off the lab network (a partition): peers' open connections to it
        hang, new ones by address time out; its published ports stop answering."""
        await self._settled(name)
        sandbox = self._net(name)
        if name in self._disconnected:
            return
        await asyncio.to_thread(self.client.api.disconnect_container_from_network, sandbox,
                                self.network)
        self._disconnected.add(name)

    async def reconnect(self, name: str) -> None:
        """Put it back on the network with its same address: stalled streams resume."""
        await self._settled(name)
        sandbox = self._net(name)
        if name not in self._disconnected:
            return
        await asyncio.to_thread(self.client.api.connect_container_to_network, sandbox,
                                self.network, ipv4_address=self._ip(name), aliases=[name])
        self._disconnected.discard(name)

    def _iptables(self, name: str, args: list[str]) -> None:
        api = self.client.api
        exe = api.exec_create(self._net(name), ["iptables", *args], user="0")
        out = api.exec_start(exe["Id"]).decode(errors="replace").strip()
        rc = api.exec_inspect(exe["Id"]).get("ExitCode")
        if rc != 0:
            last = out.splitlines()[-1] if out else f"exit {rc}"
            raise EnvironmentProblem(f"iptables {' '.join(args)} failed in {name}'s network "
                                     f"namespace: {last}")

    async def cut(self, name: str, mode: str = "reset") -> None:
        """Cut every TCP connection of the component inside its own network namespace:
        ``reset`` (``REJECT --reject-with tcp-reset``: open connections are reset at their next
        packet, new ones refused) or ``drop`` (``DROP``: everything hangs)."""
        if mode not in ("reset", "drop"):
            raise SpecError("cut", [("mode", f"{mode!r}: expected 'reset' or 'drop'")])
        await self._settled(name)
        self._net(name)
        if name in self._cuts:
            await self.uncut(name)
        rule = ["INPUT", "-p", "tcp", "-j"] + (["REJECT", "--reject-with", "tcp-reset"]
                                               if mode == "reset" else ["DROP"])
        await asyncio.to_thread(self._iptables, name, ["-I", *rule])
        self._cuts[name] = " ".join(rule)

    async def uncut(self, name: str) -> None:
        """Remove the cut (connections that were reset stay closed; new ones work)."""
        await self._settled(name)
        rule = self._cuts.pop(name, None)
        if rule is not None:
            await asyncio.to_thread(self._iptables, name, ["-D", *rule.split()])

    # -- nginx -t in the image ---------------------------------------------------------------
    async def check_nginx(self, spec: ProcessSpec) -> None:
        """``nginx -t`` in a throwaway container of the lab image (the nginx that will run),
        with no network (the config names its upstreams by address).

        It runs while the other components' containers are created: this returns at once, and
        :meth:`start` of nginx waits for the verdict, raising :class:`NginxConfigError` there (so
        a refused config still fails the lab before nginx starts)."""
        await self._ready(spec.cwd)
        (spec.cwd / "nginx" / "tmp").mkdir(parents=True, exist_ok=True)
        self._nginx_check = asyncio.create_task(self._check_nginx(spec))

    async def _check_nginx(self, spec: ProcessSpec) -> None:
        def check() -> tuple[int, str]:
            assert self.run_dir is not None
            api = self.client.api
            created = api.create_container(
                self.image, command=[*spec.argv, "-t", "-q"], working_dir=str(spec.cwd),
                user=f"{os.getuid()}:{os.getgid()}", labels=self.labels("nginx-check"),
                host_config=api.create_host_config(binds=self._binds(self.run_dir),
                                                   network_mode="none"))
            try:
                api.start(created["Id"])
                rc = int(api.wait(created["Id"], timeout=30)["StatusCode"])
                return rc, api.logs(created["Id"]).decode(errors="replace")
            finally:
                self._remove(created["Id"])

        rc, out = await asyncio.to_thread(check)
        if rc != 0:
            lines = [line.removeprefix("nginx: ").strip() for line in out.splitlines()
                     if line.strip()]
            message = "; ".join(line for line in lines if "test failed" not in line) or \
                f"nginx -t exited with {rc}"
            raise NginxConfigError(str(spec.argv[spec.argv.index("-c") + 1]), message)

    # -- teardown ----------------------------------------------------------------------------
    async def close(self) -> None:
        for task in list(self._pending.values()):
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
        if self._nginx_check is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._nginx_check)

        async def stop_and_remove(name: str) -> None:
            if self.running(name):
                await self.stop(name, timeout_s=5.0)
            cid = self._cid(name)
            if cid:
                await asyncio.to_thread(self._remove, cid)
            # Its network sandbox next, in the same task: each component's teardown runs
            # beside the others' (a sandbox's forced removal costs the engine 0.2-0.5 s).
            sandbox = self._sandboxes.pop(name, None)
            if sandbox:
                await asyncio.to_thread(self._remove, sandbox)

        # Each container stops (its stop signal; --init makes that quick) and is removed
        # concurrently; then whatever else carries the run's label, and the network, go.
        await asyncio.gather(*(stop_and_remove(n) for n in list(self._containers)),
                             return_exceptions=True)
        if self.run_id:
            await asyncio.to_thread(remove_by_label, self.client, f"{RUN_LABEL}={self.run_id}")
        if self._events is not None:
            with contextlib.suppress(Exception):
                self._events.close()
            self._events = None
        for key in list(self._endpoints):
            self.release(*key)
        self.network = ""
