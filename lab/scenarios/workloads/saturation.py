"""``saturation``: a surge of WebSocket handshakes beyond nginx's limits, held, then released.

1. The surge: ``surge`` connections opened one after another through the client edge and held
   (no retries: each handshake's outcome is recorded as it is). ``stub_status`` and the node's
   ``/health`` are read between opens, so the samples never compete with the surge for nginx's
   last free connection.
2. While the surge holds (``hold_s``), ``late`` reconnecting subscribers start: they are refused
   and back off; ``stub_status``, the node's health and its open connections are sampled.
3. The surge is released; every late subscriber must be served (subscribed) within
   ``served_within_s``.

nginx's worker connections: each proxied WebSocket takes two (client and upstream); the two
listeners and the worker's channel to the master take three more. ``worker_connections = 34``
with the upstream keepalive pool off therefore holds 15 WebSockets and has one connection to
spare: the 16th client is accepted but its upstream connection cannot be made (HTTP 500,
``[alert] ... worker_connections are not enough while connecting to upstream``); with no spare
connection at all nginx cannot even accept and the client sees a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from lab.checkers.connections import handshake_statuses
from lab.clients.history import History
from lab.clients.transport import Conn, HandshakeFailed, websockets_connector
from lab.nginx.status import parse as parse_stub
from lab.scenarios.context import RunContext
from lab.scenarios.figures import GROUP_FIGURES, group_figures
from lab.scenarios.fleet import Fleet, Group
from lab.scenarios.workloads import workload


class SaturationParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    surge: int = Field(ge=1, le=5000)
    transport: Literal["wss", "ws"] = "wss"
    hold_s: float = Field(2.0, ge=0)
    late: int = Field(5, ge=0, le=1000)
    late_backoff_base_s: float = Field(0.1, gt=0)
    late_backoff_cap_s: float = Field(1.0, gt=0)
    served_within_s: float = Field(10.0, gt=0)
    #: Seconds between samples of stub_status and the node while the surge holds.
    sample_every_s: float = Field(0.1, gt=0)


def _figures(p: SaturationParams) -> list[str]:
    return ["surge.opened", "surge.handshake.*", "surge.refused", "stub.*", "node.*",
            "late.served", "late.served_s", *[f"late.{f}" for f in GROUP_FIGURES]]


class _Sampler:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.samples: list[dict[str, Any]] = []
        self.failed = 0
        self.node_health_failures = 0
        self.node_ws_max = 0
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))

    async def close(self) -> None:
        await self._http.close()

    async def sample(self, phase: str) -> None:
        eps = self.ctx.lab.endpoints
        try:
            async with self._http.get(eps["stub_status"]) as r:
                stub = parse_stub(await r.text())
            self.samples.append({"t": time.time(), "phase": phase, **vars(stub)})
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError):
            self.failed += 1
        try:
            async with self._http.get(eps["node_health"]) as r:
                if r.status != 200:
                    self.node_health_failures += 1
            async with self._http.post(eps["node_rpc"], json={
                    "jsonrpc": "2.0", "id": 1, "method": "dubhe_status", "params": []}) as r:
                status = (await r.json())["result"]
                self.node_ws_max = max(self.node_ws_max, int(status["openConnections"]))
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError, OSError):
            self.node_health_failures += 1


@workload("saturation", SaturationParams, _figures)
async def saturation(ctx: RunContext, p: SaturationParams) -> dict[str, Any]:
    lab = ctx.lab
    url = lab.endpoints[p.transport]
    connect = websockets_connector(ssl_context=lab.ssl_context(), open_timeout_s=5)
    surge_history = ctx.history("surge")
    held: list[Conn] = []
    sampler = _Sampler(ctx)
    figures: dict[str, Any] = {}
    fleet: Fleet | None = None
    try:
        async with ctx.nemesis():
            for i in range(p.surge):
                await _open(connect, url, i, surge_history, held)
                if i % 5 == 4:
                    await sampler.sample("surge")
            ctx.progress(f"   surge: {len(held)}/{p.surge} held, "
                         f"{handshake_statuses(surge_history.events)}")
            if p.late:  # (late = 0: the surge alone)
                late = Group(name="late", count=p.late, transport=p.transport,
                             backoff_base_s=p.late_backoff_base_s,
                             backoff_cap_s=p.late_backoff_cap_s, must_catch_up=False)
                fleet = Fleet(ctx, [late])
                await fleet.start()
            deadline = time.monotonic() + p.hold_s
            while time.monotonic() < deadline:
                await sampler.sample("hold")
                await asyncio.sleep(p.sample_every_s)
            released = time.time()
            for conn in held:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)
            ctx.progress(f"   surge released after {p.hold_s:g} s")
            served_s = await _served(fleet, released, p.served_within_s) if fleet else 0.0
            await sampler.sample("after")
    finally:
        for conn in held:
            with contextlib.suppress(Exception):
                conn.abort()
        if fleet is not None:
            await fleet.stop()
        await sampler.close()
    hs = handshake_statuses(surge_history.events)
    figures["surge.opened"] = len(held)
    figures["surge.refused"] = p.surge - len(held)
    figures.update({f"surge.handshake.{k}": v for k, v in hs.items()})
    for code in ("101", "500", "503", "connect"):
        figures.setdefault(f"surge.handshake.{code}", 0)
    hold = [s for s in sampler.samples if s["phase"] == "hold"]
    writing = [int(s["writing"]) for s in hold]
    figures.update({
        "stub.samples": len(sampler.samples), "stub.failed_samples": sampler.failed,
        "stub.writing_max": max(writing, default=None),
        "stub.writing_min": min(writing, default=None),
        "stub.active_max": max((int(s["active"]) for s in hold), default=None),
        "node.health_failures": sampler.node_health_failures,
        "node.ws_connections_max": sampler.node_ws_max,
    })
    ctx.details["stub_samples"] = sampler.samples
    if fleet is not None:
        events, members = fleet.figures_input()
        figures.update(group_figures("late", events, members["late"], until=None))
        figures["late.served"] = sum(1 for c in fleet.all() if c.history.of("subscribe"))
        figures["late.served_s"] = round(served_s, 3)
    return figures


async def _open(connect: Any, url: str, i: int, history: History, held: list[Conn]) -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    history.record("connect", attempt=0, url=url, n=i)
    try:
        conn = await connect(url)
    except HandshakeFailed as e:
        history.record("handshake", ok=False, kind=e.kind, status=e.status, error=e.message,
                       exception=e.exception, ms=round((loop.time() - t0) * 1000, 3))
        return
    history.record("handshake", ok=True, kind="ok", status=101,
                   ms=round((loop.time() - t0) * 1000, 3))
    held.append(conn)


async def _served(fleet: Fleet, released: float, within_s: float) -> float:
    """Seconds from the release until every late subscriber has subscribed (or the bound)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        first = [min((e["wall"] for e in c.history.of("subscribe")), default=None)
                 for c in fleet.all()]
        if all(t is not None for t in first):
            return max(0.0, max(float(t) for t in first if t is not None) - released)
        await asyncio.sleep(0.05)
    return within_s
