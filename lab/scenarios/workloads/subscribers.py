"""``subscribers``: groups of newHeads subscribers (and optionally transaction senders) through
the lab while the nemesis plays the fault timeline; then every group is checked against the
node's chain (gaps, duplicates, order, hashes), and senders' acknowledged transactions against
the receipts.

Timeline: start the subscribers and wait for their subscriptions, enter the nemesis (offsets
count from here), run ``duration_s``, leave the nemesis (every fault off), wait ``settle_s``, read
the node's head H, give reconnecting groups up to ``catch_up_s`` to deliver H, stop everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lab.checkers.txs import check_acked
from lab.scenarios.context import RunContext
from lab.scenarios.figures import GROUP_FIGURES, group_figures
from lab.scenarios.fleet import Fleet, Group, TxSenders, chain_blocks, chain_height, expected_starts
from lab.scenarios.workloads import workload


class SubscribersParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: list[Group] = Field(min_length=1)
    duration_s: float = Field(gt=0)
    #: End the fault phase as soon as every fault of the timeline is over (``duration_s`` is
    #: then the most it may take).
    until_faults_done: bool = False
    settle_s: float = Field(0.5, ge=0)
    catch_up_s: float = Field(10.0, gt=0)
    #: Transaction senders over https (0: none) and each one's rate.
    senders: int = Field(0, ge=0, le=100)
    tx_per_s: float = Field(5.0, gt=0)


def _figures(p: SubscribersParams) -> list[str]:
    out = [f"{g.name}.{f}" for g in p.groups for f in GROUP_FIGURES]
    out += ["chain.height", "not_caught_up", "nemesis.errors", "node_down_s"]
    if p.senders:
        out += ["txs.acked", "txs.lost", "txs.unknown", "txs.rejected", "txs.unknown_included",
                "txs.rejected_included"]
    return out


@workload("subscribers", SubscribersParams, _figures)
async def subscribers(ctx: RunContext, p: SubscribersParams) -> dict[str, Any]:
    fleet = Fleet(ctx, p.groups)
    senders = TxSenders(ctx, p.senders, p.tx_per_s) if p.senders else None
    figures: dict[str, Any] = {}
    try:
        if senders is not None:
            await senders.fund()
        await fleet.start()
        await fleet.subscribed()
        ctx.progress(f"   {len(fleet.all())} subscribers up"
                     + (f", {p.senders} senders" if senders else ""))
        if senders is not None:
            senders.start()
        async with ctx.nemesis() as nemesis:
            if p.until_faults_done:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(nemesis.done(), p.duration_s)
            else:
                await asyncio.sleep(p.duration_s)
        figures["nemesis.errors"] = len(nemesis.errors)
        figures["node_down_s"] = _down_seconds(nemesis.windows)
        if nemesis.errors:
            ctx.details["nemesis_errors"] = nemesis.errors
        if senders is not None:
            await senders.stop()
        await asyncio.sleep(p.settle_s)
        height = await chain_height(ctx)
        late = await fleet.catch_up(height, p.catch_up_s)
        figures["not_caught_up"] = len(late)
        if late:
            ctx.details["not_caught_up"] = late[:20]
    finally:
        await fleet.stop()
        if senders is not None:
            await senders.stop()
    events, members = fleet.figures_input()
    first = min((int(e["n"]) for e in events if e.get("ev") == "deliver"), default=1)
    blocks = await chain_blocks(ctx, max(0, first - 50), height)
    starts = expected_starts(events, blocks)
    chain = {n: h for n, (h, _) in blocks.items()}
    figures["chain.height"] = height
    for g in p.groups:
        figures.update(group_figures(g.name, events, members[g.name], until=height, chain=chain,
                                     start=starts))
    if senders is not None:
        receipts = await senders.receipts()
        r = check_acked([e for h in senders.histories for e in h.events], receipts)
        figures.update({f"txs.{k}": v for k, v in r.as_dict().items() if isinstance(v, int)})
        ctx.details["lost_txs"] = r.lost[:50]
    return figures


def _down_seconds(windows: list[dict[str, Any]]) -> float:
    """Seconds the node was down: from each kill/stop to the end of the next start."""
    total, down_at = 0.0, None
    for w in sorted(windows, key=lambda w: w["on"]):
        if w.get("component") != "node":
            continue
        if w.get("action") in ("kill", "stop"):
            down_at = w["on"]
        elif w.get("action") == "start" and down_at is not None and w.get("off"):
            total += w["off"] - down_at
            down_at = None
        elif w.get("action") in ("restart", "kill-restart") and w.get("off"):
            total += w["off"] - w["on"]
    return round(total, 3)
