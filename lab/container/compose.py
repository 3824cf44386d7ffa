"""``dubhe-lab compose``: the lab as a Compose file, from the same plan the backends run.

``dubhe-lab compose [--profile P] > lab.compose.yml`` then ``docker-compose -f lab.compose.yml
up`` runs the lab without this tool's orchestration: one service per component from the lab
image (``make images``), the project source mounted read-only, fixed addresses on the lab's own
network, ports published on 127.0.0.1 from ``--port-base`` up, and a health check per component
that is the lab's own readiness check. The fault proxy starts with every link already created
(and the profiles' toxics applied) from a generated proxy config, so there is no set-up step.

The lab's files (node config, nginx config, TLS, logs) are written into a directory (``--dir``,
default ``reports/compose/<run id>``) together with ``lab.json``, so ``dubhe-lab status|fault|
logs --run-dir DIR`` work on a lab that Compose runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import tomli_w

from lab.container.engine import COMPONENT_LABEL, LAB_LABEL, RUN_LABEL
from lab.container.recipe import PROJECT_ROOT, ImageRecipe
from lab.nginx.tls import write_tls
from lab.orchestrate.backend import Endpoint
from lab.orchestrate.docker import PYCACHE, container_port
from lab.orchestrate.errors import SpecError
from lab.orchestrate.plan import Plan, Probe, make_plan
from lab.orchestrate.rundir import RunDir, write_json
from lab.orchestrate.spec import LabSpec
from lab.proxy.profiles import load_profile

COMPOSE_LABEL = "dubhe.compose"
LOG_WRAPPER = 'exec "$@" >>"$DUBHE_LOG" 2>&1'


class ComposeAllocator:
    """Fixed addresses on ``subnet`` (in the order components are met) and host ports counting
    up from ``port_base``: the same plan every time for the same spec."""

    def __init__(self, subnet: str, port_base: int) -> None:
        import ipaddress

        self.subnet = ipaddress.IPv4Network(subnet)
        self._hosts = self.subnet.hosts()
        self.gateway = str(next(self._hosts))
        self._ips: dict[str, str] = {}
        self._used: dict[str, set[int]] = {}
        self._next_public = port_base
        self.endpoints: dict[tuple[str, str], Endpoint] = {}

    def ip(self, component: str) -> str:
        if component not in self._ips:
            self._ips[component] = str(next(self._hosts))
        return self._ips[component]

    def allocate(self, component: str, port: str) -> Endpoint:
        if component == "toxiproxy":
            raise SpecError("lab spec", [("proxy.toxiproxy_url", "a Compose lab runs its own "
                                          "proxy; an external Toxiproxy needs the local backend")])
        key = (component, port)
        if key not in self.endpoints:
            used = self._used.setdefault(component, set())
            inner = container_port(component, port, used)
            used.add(inner)
            self.endpoints[key] = Endpoint("0.0.0.0", inner, self.ip(component), "127.0.0.1",
                                           self._next_public)
            self._next_public += 1
        return self.endpoints[key]


# -- a small YAML writer (Compose files are plain maps, lists and scalars) ------------------------

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.\-/]+$")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a YAML double-quoted scalar


def _key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) else json.dumps(key)


def _emit(value: Any, indent: int, out: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict) and v:
                out.append(f"{pad}{_key(k)}:")
                _emit(v, indent + 2, out)
            elif isinstance(v, list) and v and any(isinstance(i, dict) for i in v):
                out.append(f"{pad}{_key(k)}:")
                _emit(v, indent + 2, out)
            elif isinstance(v, list):
                out.append(f"{pad}{_key(k)}: [{', '.join(_scalar(i) for i in v)}]")
            elif isinstance(v, dict):
                out.append(f"{pad}{_key(k)}: {{}}")
            else:
                out.append(f"{pad}{_key(k)}: {_scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            sub: list[str] = []
            if isinstance(item, dict | list):
                _emit(item, indent + 2, sub)
            else:
                sub.append(" " * (indent + 2) + _scalar(item))
            out.append(f"{pad}- {sub[0].lstrip()}")
            out.extend(sub[1:])
    else:
        out.append(f"{pad}{_scalar(value)}")


def to_yaml(doc: dict[str, Any]) -> str:
    out: list[str] = []
    _emit(doc, 0, out)
    return "\n".join(out) + "\n"


def _escape(value: Any) -> Any:
    """Compose interpolates ``$NAME`` in every string: a literal ``$`` is written ``$$``."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_escape(v) for v in value]
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    return value


# -- the document ----------------------------------------------------------------------------

def _healthcheck(probe: Probe, endpoint: Endpoint) -> dict[str, Any]:
    """The component's readiness check, run inside its container against its own port."""
    path = "/" + probe.url.split("/", 3)[3] if probe.url.count("/") >= 3 else "/"
    url = f"http://127.0.0.1:{endpoint.port}{path}"
    if probe.kind == "jsonrpc":
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": probe.method, "params": []})
        test = ["CMD", "curl", "-fsS", "-o", "/dev/null", "-H", "Content-Type: application/json",
                "-d", body, url]
    else:
        test = ["CMD", "curl", "-fsS", "-o", "/dev/null", url]
    return {"test": test, "interval": "1s", "timeout": "2s", "retries": 60}


def proxy_config(plan: Plan, profiles: list[Path]) -> dict[str, Any]:
    """A lab.proxy start-up profile creating every link of the plan (listen/upstream) with the
    toxics of ``profiles`` (checked against the plan's links first)."""
    toxics: dict[str, list[dict[str, Any]]] = {name: [] for name in plan.links}
    enabled: dict[str, bool] = {name: True for name in plan.links}
    names: list[str] = []
    for path in profiles:
        profile = load_profile(path, addresses=plan.link_addresses())
        names.append(profile.name)
        for spec in profile.proxies:
            toxics[spec.link].extend(dict(body) for body in spec.toxics)
            enabled[spec.link] = enabled[spec.link] and spec.enabled
    return {
        "name": "+".join(["compose-links", *names]),
        "description": "the lab's links, written by dubhe-lab compose",
        "proxies": [{"link": name, "listen": lp.listen.bind, "upstream": lp.upstream,
                     "enabled": enabled[name], "toxics": toxics[name]}
                    for name, lp in plan.links.items()],
    }


def compose_document(plan: Plan, run: RunDir, image: str, alloc: ComposeAllocator,
                     proxy_conf: Path | None) -> dict[str, Any]:
    """The Compose file (as data) running ``plan`` from ``image``."""
    user = f"{os.getuid()}:{os.getgid()}"
    source = str(PROJECT_ROOT)
    services: dict[str, Any] = {}
    for name, comp in plan.components.items():
        argv = list(comp.process.argv)
        if name == "proxy" and proxy_conf is not None:
            argv += ["--profile", str(proxy_conf)]
        ports = [f"127.0.0.1:{ep.public_port}:{ep.port}" for (c, _), ep in
                 alloc.endpoints.items() if c == name]
        first = next(iter(comp.endpoints.values()))
        services[name] = {
            "image": image,
            "init": True,
            "user": user,
            "working_dir": str(run.path),
            "hostname": name,
            "command": ["sh", "-c", LOG_WRAPPER, name, *argv],
            "environment": {"PYTHONUNBUFFERED": "1", "PYTHONPATH": source,
                            "PYTHONPYCACHEPREFIX": str(PYCACHE), "HOME": "/tmp",
                            "DUBHE_LOG": str(comp.process.log)},
            "volumes": [f"{source}:{source}:ro", f"{PYCACHE}:{PYCACHE}:rw",
                        f"{run.path}:{run.path}:rw"],
            "networks": {"lab": {"ipv4_address": alloc.ip(name), "aliases": [name]}},
            "ports": ports,
            "cap_add": ["NET_ADMIN"],
            "labels": {LAB_LABEL: "1", RUN_LABEL: run.run_id, COMPONENT_LABEL: name,
                       COMPOSE_LABEL: "1"},
            "healthcheck": _healthcheck(comp.readiness, first),
        }
        if comp.after:
            services[name]["depends_on"] = {dep: {"condition": "service_healthy"}
                                            for dep in comp.after}
    doc: dict[str, Any] = _escape({
        "version": "2.4",
        "services": services,
        "networks": {"lab": {
            "driver": "bridge",
            "ipam": {"config": [{"subnet": str(alloc.subnet), "gateway": alloc.gateway}]},
            "labels": {LAB_LABEL: "1", RUN_LABEL: run.run_id, COMPOSE_LABEL: "1"},
        }},
    })
    return doc


def write_compose_lab(spec: LabSpec, run: RunDir, seed: int, *, port_base: int = 18000,
                      subnet: str = "10.213.255.0/24", profiles: list[Path] | None = None,
                      image: str | None = None) -> str:
    """Write the lab's files into ``run`` and return the Compose file's text."""
    alloc = ComposeAllocator(subnet, port_base)
    tls_ca = run.path / "tls" / "ca.pem" if spec.nginx.enabled else None
    plan = make_plan(spec, run, seed, alloc.allocate, nginx_binary="/usr/sbin/nginx",
                     tls_ca=tls_ca, nginx_trusted=(str(alloc.subnet),))
    conf = proxy_config(plan, list(profiles or []))  # profiles checked before writing anything
    run.make()
    if spec.nginx.enabled:
        write_tls(run.path / "tls", run.run_id, spec.nginx.tls_cert)
        (run.path / "nginx" / "tmp").mkdir(parents=True, exist_ok=True)
    for comp in plan.components.values():
        for path, data in comp.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    proxy_conf = None
    if "proxy" in plan.components:
        proxy_conf = run.path / "proxy" / "links.toml"
        proxy_conf.parent.mkdir(exist_ok=True)
        proxy_conf.write_text(tomli_w.dumps(conf))
    PYCACHE.mkdir(parents=True, exist_ok=True)
    image = image or ImageRecipe.for_host().lab_tag
    write_json(run.lab_json, {
        "run_id": run.run_id, "name": spec.name, "state": "compose", "seed": seed,
        "backend": "compose", "owner_pid": None, "started": time.time(),
        "admin_token": plan.admin_token, "spec": spec.model_dump(mode="json"),
        **plan.describe(), "image": image, "timings": {},
    })
    return to_yaml(compose_document(plan, run, image, alloc, proxy_conf))


def compose_main(args: argparse.Namespace, spec: LabSpec) -> int:
    """``dubhe-lab compose``: the Compose file on stdout, what it did on stderr."""
    from lab.orchestrate.lab import pick_seed

    seed = pick_seed(spec)
    root = (Path("reports") / "compose").resolve()
    run = RunDir.new(root, spec.name, path=args.dir)
    text = write_compose_lab(spec, run, seed, port_base=args.port_base, subnet=args.subnet,
                             profiles=[Path(p) for p in spec.profiles])
    sys.stdout.write(text)
    sys.stdout.flush()
    print(f"dubhe-lab compose: lab files in {run.path} (seed {seed}); run it with "
          "'docker-compose -f FILE up' (images: make images)", file=sys.stderr)
    return 0
