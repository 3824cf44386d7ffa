"""A lab described as data: :class:`LabSpec` (components, their settings, fault profiles, seed).

Build one in Python (``LabSpec(nginx=NginxSpec(read_timeout_s=3))``), or from plain data with
:func:`spec_from_dict` / :meth:`LabSpec.overlay` (what scenario files and ``--spec`` use). Unknown
keys and wrong types are errors naming the dotted key (``nginx.read_timout_s: unknown key, did
you mean read_timeout_s?``), every problem at once.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lab.orchestrate.errors import SpecError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class LimitsSpec(_Model):
    """nginx request and connection limits (the seed's values). They key on the client address;
    in the lab every client arrives through the ``client-edge`` proxy from 127.0.0.1, so one key
    covers the whole lab: that is why they are off unless a scenario turns them on."""

    req: bool = False
    conn: bool = False
    ws_rate: str = Field("1r/s", pattern=r"^[1-9][0-9]*r/[sm]$")
    ws_burst: int = Field(5, ge=0)
    api_rate: str = Field("2r/s", pattern=r"^[1-9][0-9]*r/[sm]$")
    api_burst: int = Field(10, ge=0)
    general_rate: str = Field("5r/s", pattern=r"^[1-9][0-9]*r/[sm]$")
    general_burst: int = Field(10, ge=0)
    conn_per_ip: int = Field(5, ge=1)
    #: HTTP status of a refused request. 429 lets clients tell a rate limit from an outage
    #: (websockets retries 503 but not 429).
    req_status: int = Field(429, ge=400, le=599)
    conn_status: int = Field(503, ge=400, le=599)


TlsCert = Literal["valid", "expired", "wrong-host", "untrusted"]


class NginxSpec(_Model):
    """Settings of the rendered nginx config (``nginx/nginx.conf.j2``)."""

    enabled: bool = True
    worker_processes: int = Field(1, ge=1, le=64)
    worker_connections: int = Field(1024, ge=8, le=1_000_000)
    connect_timeout_s: float = Field(5.0, gt=0)
    send_timeout_s: float = Field(60.0, gt=0)
    read_timeout_s: float = Field(60.0, gt=0)
    keepalive: int = Field(4, ge=0)
    keepalive_requests: int = Field(50, ge=1)
    keepalive_timeout_s: float = Field(15.0, gt=0)
    limits: LimitsSpec = LimitsSpec()
    #: The server certificate nginx presents: ``valid`` (signed by the run's CA, for localhost and
    #: 127.0.0.1), ``expired``, ``wrong-host`` (for another name) or ``untrusted`` (signed by a
    #: CA that is not in the run's ``ca.pem``).
    tls_cert: TlsCert = "valid"
    ssl_protocols: str = Field("TLSv1.2 TLSv1.3", pattern=r"^(TLSv1(\.[0-3])?)( TLSv1(\.[0-3])?)*$")
    error_log_level: Literal["debug", "info", "notice", "warn", "error"] = "info"


class L1Spec(_Model):
    """One mock L1 chain (``python -m lab.l1``)."""

    chain: Literal["eth", "sui"]
    #: Listeners serving the same chain; the node uses the first as primary and the others as
    #: fallbacks, each through its own link (``node-l1-eth``, ``node-l1-eth-2``, ...).
    endpoints: int = Field(1, ge=1, le=8)
    block_time_ms: int = Field(500, ge=0)
    chain_id: int = Field(1337, ge=1)
    seed: int | None = None
    #: The node adapter's per-attempt timeout for this chain (``adapters.<chain>.backoff.
    #: request_timeout_ms``; None: the node's default, 5 s). A black-holed endpoint is only
    #: given up after it, so failover scenarios shorten it.
    request_timeout_ms: int | None = Field(None, ge=1)


class ProxySpec(_Model):
    """The fault proxy. ``toxiproxy_url`` runs the links on an external Toxiproxy server instead
    of starting ``lab.proxy`` (standard toxics only: no ``ws_*``/lab types, no schedule/target)."""

    toxiproxy_url: str | None = Field(None, pattern=r"^https?://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?/?$")


def _default_l1s() -> tuple[L1Spec, ...]:
    return (L1Spec(chain="eth"), L1Spec(chain="sui"))


class LabSpec(_Model):
    """Everything a lab run needs to know; ``seed`` None picks one (printed, stored in lab.json)."""

    name: str = Field("lab", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    seed: int | None = Field(None, ge=0, lt=2**63)
    #: Node config sections merged key by key over the lab's defaults (``{"node":
    #: {"block_time_ms": 100}}``); the lab owns ``api.*_bind``, ``state.path``, the adapters'
    #: URLs and ``security.audit_log``.
    node: dict[str, dict[str, Any]] = {}
    block_time_ms: int = Field(200, ge=10)
    l1: tuple[L1Spec, ...] = Field(default_factory=_default_l1s)
    nginx: NginxSpec = NginxSpec()
    proxy: ProxySpec = ProxySpec()
    #: Fault profiles applied once the lab is up (paths).
    profiles: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _distinct_chains(self) -> LabSpec:
        chains = [l1.chain for l1 in self.l1]
        if len(chains) != len(set(chains)):
            raise ValueError("l1: each chain (eth, sui) may appear once")
        for section in self.node:
            if section not in _NODE_SECTIONS:
                raise ValueError(f"node.{section}: unknown node config section "
                                 f"(known: {', '.join(sorted(_NODE_SECTIONS))})")
        return self

    def overlay(self, data: Mapping[str, Any], source: str = "overlay") -> LabSpec:
        """A copy with ``data`` merged in (tables key by key, everything else replaced)."""
        return spec_from_dict(_merge(self.model_dump(), data), source)

    def chain(self, name: str) -> L1Spec | None:
        return next((l1 for l1 in self.l1 if l1.chain == name), None)


_NODE_SECTIONS = {"api", "scheduler", "vm", "state", "node", "security", "logging", "adapters"}


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _known_keys(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        inner = getattr(ann, "__args__", (ann,))
        nested = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if nested is None:
            return []
        model = nested
    return list(model.model_fields)


def spec_from_dict(data: Mapping[str, Any], source: str = "spec") -> LabSpec:
    """Validate plain data (TOML tables, JSON) into a :class:`LabSpec`; raises
    :class:`~lab.orchestrate.errors.SpecError` listing every problem."""
    # Arrays from TOML/JSON arrive as lists; the model stores tuples.
    data = dict(data)
    if isinstance(data.get("l1"), list):
        data["l1"] = tuple(data["l1"])
    if isinstance(data.get("profiles"), list):
        data["profiles"] = tuple(data["profiles"])
    try:
        return LabSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            key = ".".join(str(p) for p in loc) or "(root)"
            if err["type"] == "extra_forbidden":
                known = _known_keys(LabSpec, loc)
                close = difflib.get_close_matches(str(loc[-1]), known, n=1)
                hint = f", did you mean {close[0]}?" if close else ""
                problems.append((key, f"unknown key{hint} (known: {', '.join(known)})"))
            else:
                msg = err["msg"].removeprefix("Value error, ")
                problems.append((key, f"{msg} (got {err.get('input')!r})"
                                 if err["type"] != "missing" else "required"))
        raise SpecError(source, problems) from None


def derive_seed(seed: int, name: str) -> int:
    """A component's seed from the lab's: stable across runs and machines (SHA-256)."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:4], "big")
