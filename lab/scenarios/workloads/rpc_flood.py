"""``rpc_flood``: one client floods the node with requests over a single WebSocket while polite
clients on their own connections call at a modest rate.

The node's per-connection token bucket answers over-limit requests with -32005 and, after
``[api] ws_rate_violations_close`` of them, closes the connection with 1008 and writes a
``limit_close`` line in its audit log. Limits are per connection: the polite clients must not
notice anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lab.checkers import load as io
from lab.checkers.connections import close_census
from lab.clients.backoff import BackoffPolicy
from lab.clients.reconnecting import ClientOptions, ReconnectingClient
from lab.clients.rpc import RpcError
from lab.clients.transport import websockets_connector
from lab.scenarios.context import RunContext
from lab.scenarios.workloads import workload

LIMIT_EXCEEDED = -32005


class FloodParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int = Field(200, ge=1, le=100_000)
    transport: Literal["wss", "ws", "direct"] = "wss"
    polite: int = Field(2, ge=0, le=100)
    polite_per_s: float = Field(5.0, gt=0)
    #: How long the polite clients keep calling (the flood runs at the start of it).
    duration_s: float = Field(2.0, gt=0)


def _figures(p: FloodParams) -> list[str]:
    return ["flood.ok", "flood.limited", "flood.failed", "flood.closes_*", "flood.close_code",
            "polite.ok", "polite.errors", "polite.closes", "node.audit_limit_close"]


def _url(ctx: RunContext, transport: str) -> str:
    return ctx.lab.endpoints["node_ws" if transport == "direct" else transport]


@workload("rpc_flood", FloodParams, _figures)
async def rpc_flood(ctx: RunContext, p: FloodParams) -> dict[str, Any]:
    url = _url(ctx, p.transport)
    connector = websockets_connector(ssl_context=ctx.lab.ssl_context())
    before = io.log_sizes(ctx.lab.run_dir)

    def make(name: str, reconnect: bool) -> ReconnectingClient:
        return ReconnectingClient(url, connector=connector, name=name, history=ctx.history(name),
                                  options=ClientOptions(seed=ctx.derived_seed(name),
                                                        ping_interval_s=None, reconnect=reconnect,
                                                        backoff=BackoffPolicy(0.05, 0.5)))

    flood = make("flood", reconnect=False)
    polite = [make(f"polite-{i}", reconnect=True) for i in range(p.polite)]
    counts = {"ok": 0, "limited": 0, "failed": 0}
    polite_counts = {"ok": 0, "errors": 0}

    async def one() -> None:
        try:
            await flood.call("eth_blockNumber", timeout_s=10)
            counts["ok"] += 1
        except RpcError as e:
            counts["limited" if e.code == LIMIT_EXCEEDED else "failed"] += 1
        except Exception:
            counts["failed"] += 1

    async def behave(c: ReconnectingClient) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + p.duration_s
        while loop.time() < end:
            try:
                await c.call("eth_blockNumber", timeout_s=5)
                polite_counts["ok"] += 1
            except Exception:
                polite_counts["errors"] += 1
            await asyncio.sleep(1.0 / p.polite_per_s)

    for c in (flood, *polite):
        c.start()
    try:
        for c in (flood, *polite):
            await c.wait_open(10)
        async with ctx.nemesis():
            tasks = [asyncio.create_task(behave(c)) for c in polite]
            await asyncio.gather(*(one() for _ in range(p.requests)))
            await asyncio.gather(*tasks)
    finally:
        for c in (flood, *polite):
            with contextlib.suppress(Exception):
                await c.stop()
    await asyncio.sleep(0.2)
    span = io.spans(before, io.log_sizes(ctx.lab.run_dir)).get("node_audit")
    audit = io.read_span(ctx.lab.run_dir, span) if span else []
    flood_census = close_census(flood.history.events)
    closes = [e for e in flood.history.of("close") if not e.get("stop")]
    figures: dict[str, Any] = {
        "flood.ok": counts["ok"], "flood.limited": counts["limited"],
        "flood.failed": counts["failed"],
        "flood.close_code": closes[0]["code"] if closes else None,
        "polite.ok": polite_counts["ok"], "polite.errors": polite_counts["errors"],
        "polite.closes": sum(sum(close_census(c.history.events).values()) for c in polite),
        "node.audit_limit_close": sum(1 for line in audit if '"limit_close"' in line),
    }
    figures.update({f"flood.closes_{k}": v for k, v in flood_census.items()})
    figures.setdefault("flood.closes_1008", 0)
    return figures
