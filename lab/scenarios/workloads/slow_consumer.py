"""``slow_consumer``: a client subscribes many times on one connection and stops reading; the
node must close it (1008, "slow consumer") and keep its own memory bounded while reconnecting
subscribers on other connections notice nothing.

The slow client is a plain websockets connection whose receive buffer is tiny (``max_queue``), so
once it stops reading, TCP pushes back through the client edge, nginx and the nginx-node link to
the node, whose per-connection queue (``[api] ws_queue_messages``) then overflows. Many
subscriptions on the one connection make that happen in seconds instead of hours. The node's
resident memory is sampled (psutil, the node's pid) before, during and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any, Literal

import aiohttp
import orjson
import psutil
import websockets
from pydantic import BaseModel, ConfigDict, Field
from websockets.exceptions import ConnectionClosed

from lab.clients.transport import classify_close
from lab.scenarios.context import RunContext
from lab.scenarios.figures import GROUP_FIGURES, group_figures
from lab.scenarios.fleet import Fleet, Group, chain_blocks, chain_height, expected_starts
from lab.scenarios.workloads import workload

_CLOSED = re.compile(r'^dubhe_ws_closed_total\{reason="slow_consumer"\} ([0-9.e+]+)$', re.M)


class SlowParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subscriptions: int = Field(200, ge=1, le=10_000)
    transport: Literal["ws", "wss", "direct"] = "ws"
    #: How long the slow client may stay silent waiting for the node to close it.
    max_stall_s: float = Field(20.0, gt=0)
    #: After the close, how long the others keep running.
    after_s: float = Field(1.0, ge=0)
    others: int = Field(3, ge=0, le=500)
    catch_up_s: float = Field(10.0, gt=0)


def _figures(p: SlowParams) -> list[str]:
    return ["slow.close_code", "slow.closed_by_node", "slow.closed_after_s", "slow.messages_read",
            "node.rss_before_mb", "node.rss_peak_mb", "node.rss_after_mb", "node.rss_growth_mb",
            "node.slow_consumer_closes", "chain.height", "not_caught_up",
            *[f"others.{f}" for f in GROUP_FIGURES]]


async def _slow_closes(http: aiohttp.ClientSession, url: str) -> float:
    async with http.get(url) as r:
        m = _CLOSED.search(await r.text())
    return float(m.group(1)) if m else 0.0


@workload("slow_consumer", SlowParams, _figures)
async def slow_consumer(ctx: RunContext, p: SlowParams) -> dict[str, Any]:
    lab = ctx.lab
    node = psutil.Process(lab.backend.records()["node"].pid)
    url = lab.endpoints["node_ws" if p.transport == "direct" else p.transport]
    fleet = Fleet(ctx, [Group(name="others", count=p.others)]) if p.others else None
    figures: dict[str, Any] = {}
    rss: list[float] = []

    def sample() -> None:
        with contextlib.suppress(psutil.Error):
            rss.append(node.memory_info().rss / 2**20)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
        metrics = lab.endpoints["node_metrics"]
        closes0 = await _slow_closes(http, metrics)
        if fleet is not None:
            await fleet.start()
            await fleet.subscribed()
        sample()
        rss_before = rss[-1]
        ws = await websockets.connect(
            url,
            ssl=lab.ssl_context() if url.startswith("wss:") else None,
            max_queue=4,
            ping_interval=None,
            proxy=None,
            compression=None,
            open_timeout=5,
        )
        read = 0
        closed_at = None
        try:
            async with ctx.nemesis():
                for i in range(p.subscriptions):
                    await ws.send(
                        orjson.dumps(
                            {
                                "jsonrpc": "2.0",
                                "id": i + 1,
                                "method": "eth_subscribe",
                                "params": ["newHeads"],
                            }
                        ).decode()
                    )
                acks = 0
                while acks < p.subscriptions:  # read the acknowledgements, then stop reading
                    msg = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
                    read += 1
                    acks += "id" in msg
                stalled = time.monotonic()
                ctx.progress(f"   slow client: {p.subscriptions} subscriptions, not reading")
                deadline = stalled + p.max_stall_s
                while time.monotonic() < deadline:
                    sample()
                    if await _slow_closes(http, metrics) > closes0:
                        closed_at = time.monotonic() - stalled
                        break
                    await asyncio.sleep(0.1)
                ctx.progress(f"   node closed the slow consumer after {closed_at} s; draining")
            code, by = None, None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(20):
                    try:
                        while True:
                            await ws.recv()
                            read += 1
                    except ConnectionClosed as e:
                        c = classify_close(e)
                        code, by = c.code, c.by
            await asyncio.sleep(p.after_s)
            sample()
            height = await chain_height(ctx)
            late = await fleet.catch_up(height, p.catch_up_s) if fleet else []
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2)
            if fleet is not None:
                await fleet.stop()
        figures.update({
            "slow.close_code": code, "slow.closed_by_node": int(closed_at is not None),
            "slow.closed_after_s": None if closed_at is None else round(closed_at, 3),
            "slow.messages_read": read,
            "node.rss_before_mb": round(rss_before, 1), "node.rss_peak_mb": round(max(rss), 1),
            "node.rss_after_mb": round(rss[-1], 1),
            "node.rss_growth_mb": round(max(rss) - rss_before, 1),
            "node.slow_consumer_closes": int(await _slow_closes(http, metrics) - closes0),
            "chain.height": height, "not_caught_up": len(late),
        })
        ctx.details["slow_close_by"] = by
    if fleet is not None:
        events, members = fleet.figures_input()
        first = min((int(e["n"]) for e in events if e.get("ev") == "deliver"), default=height)
        blocks = await chain_blocks(ctx, max(0, first - 50), height)
        figures.update(group_figures("others", events, members["others"], until=height,
                                     chain={n: h for n, (h, _) in blocks.items()},
                                     start=expected_starts(events, blocks)))
    return figures
