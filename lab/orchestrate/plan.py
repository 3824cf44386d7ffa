"""What a lab run consists of, computed from its spec without starting anything.

:func:`make_plan` turns a :class:`~lab.orchestrate.spec.LabSpec`, a run directory and a backend's
port allocations into :class:`Plan`: one :class:`ComponentPlan` per component (command line,
files to write, ports, readiness check) and one :class:`LinkPlan` per link (the proxy listening
for it and the address it forwards to). The plan is data: it is written into ``lab.json`` and
unit-tested without processes.

Who talks to whom goes through the links (:mod:`lab.links`): the node's L1 URLs point at the
``node-l1-*`` proxies, nginx's upstreams at the ``nginx-node-*`` proxies, and the user-facing
endpoints at the ``client-edge*`` proxies.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from lab import links as lab_links
from lab.nginx.check import argv as nginx_argv
from lab.nginx.render import NginxPaths
from lab.nginx.render import render as render_nginx
from lab.orchestrate.backend import Endpoint, ProcessSpec
from lab.orchestrate.errors import SpecError
from lab.orchestrate.rundir import RunDir
from lab.orchestrate.spec import LabSpec, derive_seed

#: Node config keys the lab owns (it points them at the run's ports and files).
LAB_OWNED_NODE_KEYS = {
    ("api", "rpc_bind"), ("api", "ws_bind"), ("state", "path"), ("security", "audit_log"),
}


@dataclass(frozen=True)
class Probe:
    """A readiness check: ``http`` GET answering 200, ``jsonrpc`` POST with a result, or
    ``toxiproxy`` GET /version. ``ca`` (a path) makes an https probe verify against it."""

    kind: str
    url: str
    method: str = ""
    ca: str = ""


@dataclass(frozen=True)
class ComponentPlan:
    name: str
    process: ProcessSpec
    endpoints: dict[str, Endpoint]
    readiness: Probe
    files: dict[Path, bytes] = field(default_factory=dict)
    #: Components whose readiness this one's readiness needs (e.g. nginx's /health needs the
    #: node); starting is concurrent regardless.
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class LinkPlan:
    name: str
    listen: Endpoint
    upstream: str
    tls: bool
    description: str

    def populate_entry(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen.bind, "upstream": self.upstream,
                "enabled": True}


@dataclass(frozen=True)
class Plan:
    run_id: str
    seed: int
    components: dict[str, ComponentPlan]
    links: dict[str, LinkPlan]
    endpoints: dict[str, str]
    admin_token: str
    proxy_api: str
    external_proxy: bool

    def link_addresses(self) -> dict[str, tuple[str, str]]:
        """link -> (listen, upstream), what :func:`lab.proxy.profiles.load_profile` takes."""
        return {n: (lp.listen.bind, lp.upstream) for n, lp in self.links.items()}

    def describe(self) -> dict[str, Any]:
        """The JSON-able topology for ``lab.json``."""
        return {
            "components": {
                name: {
                    "argv": list(c.process.argv),
                    "log": str(c.process.log),
                    "ports": {p: {"bind": e.bind, "peer": e.peer, "public": e.public}
                              for p, e in c.endpoints.items()},
                    "readiness": {"kind": c.readiness.kind, "url": c.readiness.url},
                } for name, c in self.components.items()
            },
            "links": {
                name: {"listen": lp.listen.bind, "public": lp.listen.public,
                       "upstream": lp.upstream, "tls": lp.tls, "description": lp.description}
                for name, lp in self.links.items()
            },
            "endpoints": self.endpoints,
            "proxy_api": self.proxy_api,
            "external_proxy": self.external_proxy,
        }


Allocate = Callable[[str, str], Endpoint]


def _check_node_overrides(spec: LabSpec) -> None:
    problems = [(f"node.{s}.{k}", "owned by the lab (it points it at the run's ports/files)")
                for s, keys in spec.node.items() for k in keys if (s, k) in LAB_OWNED_NODE_KEYS]
    if "adapters" in spec.node:
        problems.append(("node.adapters", "owned by the lab: describe mock chains in [[l1]]"))
    if problems:
        raise SpecError("lab spec", problems)


def node_config(spec: LabSpec, run: RunDir, rpc: Endpoint, ws: Endpoint,
                l1_links: dict[str, list[LinkPlan]], admin_token: str,
                trusted: tuple[str, ...] = ()) -> dict[str, Any]:
    """The node's config: the lab's defaults, the spec's overrides, then the lab-owned keys.
    ``trusted`` (the lab's container network) joins loopback in ``per_ip_exempt``: every client
    reaches the node through the lab's proxies, so the node sees them all as one address."""
    cfg: dict[str, Any] = {
        "api": {"per_ip_exempt": ["127.0.0.1", "::1", *trusted]},
        "node": {"block_time_ms": spec.block_time_ms},
        "security": {"admin_token": admin_token},
        "logging": {"level": "INFO", "format": "text"},
    }
    for section, values in spec.node.items():
        cfg.setdefault(section, {}).update(values)
    cfg.setdefault("api", {}).update({"rpc_bind": rpc.bind, "ws_bind": ws.bind})
    cfg.setdefault("state", {}).update({"path": str(run.path / "node" / "data")})
    cfg["security"]["audit_log"] = str(run.path / "node" / "audit.jsonl")
    adapters: dict[str, Any] = {}
    for chain, links in l1_links.items():
        urls = [(f"http://{lp.listen.peer}/", f"ws://{lp.listen.peer}/ws") for lp in links]
        adapter: dict[str, Any] = {"rpc_url": urls[0][0], "ws_url": urls[0][1]}
        if len(urls) > 1:
            adapter["endpoints"] = [{"rpc_url": r, "ws_url": w} for r, w in urls[1:]]
        l1 = spec.chain(chain)
        assert l1 is not None
        if l1.request_timeout_ms is not None:
            adapter["backoff"] = {"request_timeout_ms": l1.request_timeout_ms}
        if chain == "eth":
            adapter["chain_id"] = l1.chain_id
            adapters["ethereum"] = adapter
        else:
            adapter["network_type"] = "Localnet"
            adapters["sui"] = adapter
    if adapters:
        cfg["adapters"] = adapters
    return cfg


def make_plan(spec: LabSpec, run: RunDir, seed: int, allocate: Allocate, *,
              nginx_binary: str = "nginx", tls_ca: Path | None = None,
              admin_token: str | None = None, nginx_trusted: tuple[str, ...] = ()) -> Plan:
    """The plan of a run. ``allocate(component, port)`` reserves ports (a backend's method);
    ``nginx_trusted`` are addresses besides loopback that may read nginx's status pages."""
    _check_node_overrides(spec)
    admin_token = admin_token or f"lab-{secrets.token_hex(16)}"
    external = spec.proxy.toxiproxy_url is not None
    components: dict[str, ComponentPlan] = {}
    links: dict[str, LinkPlan] = {}
    # Links listen on the proxy's ports (a separate "toxiproxy" namespace when external).
    proxy_owner = "toxiproxy" if external else "proxy"

    def link(name: str, upstream: Endpoint) -> LinkPlan:
        definition = lab_links.get(name)
        assert definition is not None, name
        lp = LinkPlan(name, allocate(proxy_owner, f"link:{name}"), upstream.peer,
                      definition.tls, definition.description)
        links[name] = lp
        return lp

    # Mock L1s.
    l1_links: dict[str, list[LinkPlan]] = {}
    for l1 in spec.l1:
        name = f"l1-{l1.chain}"
        eps = {("rpc" if i == 1 else f"rpc{i}"): allocate(name, "rpc" if i == 1 else f"rpc{i}")
               for i in range(1, l1.endpoints + 1)}
        l1_seed = l1.seed if l1.seed is not None else derive_seed(seed, name)
        argv = ["python", "-P", "-m", "lab.l1", l1.chain, "--host", eps["rpc"].bind_host,
                "--seed", str(l1_seed), "--block-time-ms", str(l1.block_time_ms),
                "--chain-id", str(l1.chain_id)]
        for ep in eps.values():
            argv += ["--port", str(ep.port)]
        method = "eth_chainId" if l1.chain == "eth" else "sui_getChainIdentifier"
        components[name] = ComponentPlan(
            name, ProcessSpec(name, tuple(argv), run.path, run.log(name)), eps,
            Probe("jsonrpc", f"http://{eps['rpc'].public}/", method))
        l1_links[l1.chain] = [link(lab_links.l1_link(l1.chain, i).name,
                                   eps["rpc" if i == 1 else f"rpc{i}"])
                              for i in range(1, l1.endpoints + 1)]

    # The fault proxy (unless an external Toxiproxy carries the links).
    if external:
        assert spec.proxy.toxiproxy_url is not None
        proxy_api = spec.proxy.toxiproxy_url.rstrip("/")
    else:
        api = allocate("proxy", "api")
        proxy_api = f"http://{api.public}"
        proxy_argv = ("python", "-P", "-m", "lab.proxy", "--host", api.bind_host,
                      "--port", str(api.port), "--seed", str(derive_seed(seed, "proxy")))
        components["proxy"] = ComponentPlan(
            "proxy", ProcessSpec("proxy", proxy_argv, run.path, run.log("proxy")), {"api": api},
            Probe("toxiproxy", f"{proxy_api}/version"))

    # The node.
    rpc, ws = allocate("node", "rpc"), allocate("node", "ws")
    cfg = node_config(spec, run, rpc, ws, l1_links, admin_token, nginx_trusted)
    conf_path = run.path / "node" / "config.toml"
    components["node"] = ComponentPlan(
        "node", ProcessSpec("node", ("python", "-P", "-m", "node", "--config", str(conf_path)),
                            run.path, run.log("node")),
        {"rpc": rpc, "ws": ws}, Probe("http", f"http://{rpc.public}/health"),
        files={conf_path: tomli_w.dumps(cfg).encode()})

    endpoints: dict[str, str] = {
        "node_rpc": f"http://{rpc.public}/",
        "node_ws": f"ws://{ws.public}/",
        "node_health": f"http://{rpc.public}/health",
        "node_metrics": f"http://{rpc.public}/metrics",
        "proxy_api": proxy_api,
    }
    for l1 in spec.l1:
        comp = components[f"l1-{l1.chain}"]
        for port, ep in comp.endpoints.items():
            suffix = "" if port == "rpc" else f"_{port.removeprefix('rpc')}"
            endpoints[f"l1_{l1.chain}{suffix}"] = f"http://{ep.public}/"
            endpoints[f"l1_{l1.chain}{suffix}_admin"] = f"http://{ep.public}/admin"

    # nginx in front of the node, through the nginx-node links.
    if spec.nginx.enabled:
        link("nginx-node-rpc", rpc)
        link("nginx-node-ws", ws)
        http, https = allocate("nginx", "http"), allocate("nginx", "https")
        paths = NginxPaths(run.path / "nginx")
        conf = render_nginx(
            spec.nginx, run_id=run.run_id, paths=paths, listen_http=http.bind,
            listen_https=https.bind, upstream_rpc=links["nginx-node-rpc"].listen.peer,
            upstream_ws=links["nginx-node-ws"].listen.peer,
            cert=run.path / "tls" / "server.pem", key=run.path / "tls" / "server.key",
            trusted=nginx_trusted)
        components["nginx"] = ComponentPlan(
            "nginx", ProcessSpec("nginx", tuple(nginx_argv(nginx_binary, paths.root, paths.conf,
                                                           paths.error_log)),
                                 run.path, run.log("nginx")),
            {"http": http, "https": https}, Probe("http", f"http://{http.public}/health"),
            files={paths.conf: conf.encode()}, after=("node",))
        edge, edge_tls = link("client-edge", http), link("client-edge-tls", https)
        endpoints.update({
            "http": f"http://{edge.listen.public}/",
            "ws": f"ws://{edge.listen.public}/ws",
            "https": f"https://{edge_tls.listen.public}/",
            "wss": f"wss://{edge_tls.listen.public}/ws",
            "health": f"http://{edge.listen.public}/health",
            "nginx_http": f"http://{http.public}/",
            "nginx_https": f"https://{https.public}/",
            "stub_status": f"http://{http.public}/nginx_status",
        })
        if tls_ca is not None:
            endpoints["ca_file"] = str(tls_ca)
    return Plan(run.run_id, seed, components, links, endpoints, admin_token, proxy_api, external)
