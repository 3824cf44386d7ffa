"""Groups of head subscribers and transaction senders driven against a lab, and what the node's
chain says at the end (the checkers' reference)."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lab.clients.backoff import BackoffPolicy
from lab.clients.http import RecordingHttp
from lab.clients.reconnecting import ClientOptions, ReconnectingClient
from lab.clients.rpc import HttpRpc, RpcError
from lab.clients.transport import websockets_connector
from lab.scenarios.context import RunContext
from node.core import keys
from node.core.hexutil import data, parse_qty
from node.core.tx import Signer, sign_tx

_U64 = struct.Struct(">Q")
LIMIT_EXCEEDED = -32005


class Group(BaseModel):
    """A group of identical head subscribers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    count: int = Field(1, ge=1, le=2000)
    #: ``wss`` (client-edge-tls), ``ws`` (client-edge) or ``direct`` (the node, no nginx).
    transport: Literal["wss", "ws", "direct"] = "wss"
    #: Client keepalive ping period (None: off).
    keepalive_s: float | None = Field(None, gt=0)
    ping_timeout_s: float = Field(2.0, gt=0)
    backfill: bool = True
    reconnect: bool = True
    backoff_base_s: float = Field(0.05, gt=0)
    backoff_cap_s: float = Field(1.0, gt=0)
    stable_s: float = Field(5.0, ge=0)
    max_attempts: int | None = Field(None, ge=1)
    #: Spread the group's starts over this many seconds.
    stagger_s: float = Field(0.0, ge=0)
    #: Wait for this group to deliver the final head before checking (reconnecting groups).
    must_catch_up: bool = True


class Fleet:
    """Every subscriber of a run: started, drained (a consumer per client), stopped."""

    def __init__(self, ctx: RunContext, groups: Sequence[Group]) -> None:
        self.ctx = ctx
        self.groups = list(groups)
        self.clients: dict[str, list[ReconnectingClient]] = {}
        self._drains: list[asyncio.Task[None]] = []
        self._starts: list[asyncio.Task[None]] = []
        lab = ctx.lab
        ssl_ctx = lab.ssl_context()
        urls = {"wss": lab.endpoints["wss"], "ws": lab.endpoints["ws"],
                "direct": lab.endpoints["node_ws"]}
        for g in self.groups:
            connector = websockets_connector(ssl_context=ssl_ctx)
            members = []
            for i in range(g.count):
                name = f"{g.name}-{i}"
                opts = ClientOptions(
                    backoff=BackoffPolicy(base_s=g.backoff_base_s,
                                          cap_s=max(g.backoff_cap_s, g.backoff_base_s),
                                          stable_s=g.stable_s),
                    seed=ctx.derived_seed(f"client/{name}"), ping_interval_s=g.keepalive_s,
                    ping_timeout_s=g.ping_timeout_s, reconnect=g.reconnect, backfill=g.backfill,
                    max_attempts=g.max_attempts)
                members.append(ReconnectingClient(urls[g.transport], connector=connector,
                                                  options=opts, name=name,
                                                  history=ctx.history(name)))
            self.clients[g.name] = members

    def all(self) -> list[ReconnectingClient]:
        return [c for cs in self.clients.values() for c in cs]

    async def start(self) -> None:
        """Start every client (each group's starts spread over its ``stagger_s``) and wait until
        each has a subscription (or gave up)."""
        for g in self.groups:
            for i, c in enumerate(self.clients[g.name]):
                delay = g.stagger_s * i / max(1, g.count)
                self._starts.append(asyncio.create_task(self._start_one(c, delay)))
        await asyncio.gather(*self._starts)

    async def _start_one(self, c: ReconnectingClient, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        c.start()
        c.follow_heads()
        self._drains.append(asyncio.create_task(self._drain(c)))

    async def _drain(self, c: ReconnectingClient) -> None:
        with contextlib.suppress(Exception):
            async for _ in c.heads():
                pass

    async def subscribed(self, timeout_s: float = 10.0) -> None:
        """Wait until every client that can has subscribed once."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(c.history.of("subscribe") or c.fatal for c in self.all()):
                return
            await asyncio.sleep(0.02)
        missing = [c.name for c in self.all() if not c.history.of("subscribe")]
        raise TimeoutError(f"{len(missing)} subscribers never subscribed: {missing[:5]}")

    async def catch_up(self, height: int, timeout_s: float) -> list[str]:
        """Wait until every group marked ``must_catch_up`` delivered ``height``; returns the
        clients that did not (the checkers then report their missed heads)."""
        deadline = time.monotonic() + timeout_s
        waiting = [c for g in self.groups if g.must_catch_up and g.reconnect
                   for c in self.clients[g.name]]
        while waiting and time.monotonic() < deadline:
            waiting = [c for c in waiting if (c.delivered or -1) < height and c.fatal is None]
            await asyncio.sleep(0.05)
        return [c.name for c in waiting]

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.all()), return_exceptions=True)
        for t in self._drains + self._starts:
            t.cancel()
        for t in self._drains + self._starts:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def figures_input(self) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
        events = [e for c in self.all() for e in c.history.events]
        return events, {g: [c.name for c in cs] for g, cs in self.clients.items()}


async def batch_all(rpc: HttpRpc, calls: list[tuple[str, list[Any]]], *, chunk: int = 100,
                    max_wait_s: float = 60.0) -> list[Any]:
    """Every call's result, in batches of ``chunk``. Batches the node refused for its rate
    limit (-32005: a batch of 100 counts as 100 requests) are sent again after a pause, and any
    other error answer raises, so a checker never mistakes a refusal for a missing receipt."""
    out: list[Any] = []
    deadline = time.monotonic() + max_wait_s
    for lo in range(0, len(calls), chunk):
        part = calls[lo:lo + chunk]
        delay = 0.2
        while True:
            res = await rpc.batch(part)
            limited = [r for r in res if isinstance(r, RpcError) and r.code == LIMIT_EXCEEDED]
            if not limited:
                break
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the node kept refusing reads for its rate limit for "
                                   f"{max_wait_s:g} s")
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)
        errors = [r for r in res if isinstance(r, RpcError)]
        if errors:
            raise RuntimeError(f"the node answered a read with an error: {errors[0]}")
        out += res
    return out


async def chain_height(ctx: RunContext) -> int:
    """The node's head, read directly (not through nginx)."""
    async with HttpRpc(ctx.lab.endpoints["node_rpc"], timeout_s=5) as rpc:
        return parse_qty(await rpc.call("eth_blockNumber"))


async def chain_blocks(ctx: RunContext, first: int, last: int) -> dict[int, tuple[str, int]]:
    """Block number -> (hash, timestampMs) for ``first..last``, from the node directly
    (batched)."""
    out: dict[int, tuple[str, int]] = {}
    calls: list[tuple[str, list[Any]]] = [("eth_getBlockByNumber", [hex(n), False])
                                          for n in range(max(0, first), last + 1)]
    async with HttpRpc(ctx.lab.endpoints["node_rpc"], timeout_s=20) as rpc:
        for block in await batch_all(rpc, calls):
            if isinstance(block, dict):
                out[parse_qty(block["number"])] = (block["hash"], parse_qty(block["timestampMs"]))
    return out


def expected_starts(events: Sequence[dict[str, Any]], blocks: dict[int, tuple[str, int]]
                    ) -> dict[str, int]:
    """Per client, the first block it must see: the first one it was handed, or the first
    block made after its first subscription was acknowledged, whichever is lower (a client that
    died before any head still owed every block after it subscribed)."""
    firsts: dict[str, int] = {}
    subscribed: dict[str, float] = {}
    for e in events:
        c = e["client"]
        if e.get("ev") == "deliver" and c not in firsts:
            firsts[c] = int(e["n"])
        elif e.get("ev") == "subscribe" and c not in subscribed:
            subscribed[c] = float(e["wall"]) * 1000
    out = dict(firsts)
    by_time = sorted((ts, n) for n, (_, ts) in blocks.items())
    for c, t in subscribed.items():
        after = next((n for ts, n in by_time if ts > t), None)
        if after is not None:
            out[c] = min(out.get(c, after), after)
    return out


class TxSenders:
    """Senders of signed transfers over https through nginx, each recording every submission's
    outcome (ack, rejected, unknown) in its history. Nonces are tracked per sender locally and
    re-read from the node after a failure whose outcome is unknown."""

    def __init__(self, ctx: RunContext, count: int, rate_per_s: float) -> None:
        self.ctx = ctx
        self.rate = rate_per_s
        self.signers = [Signer.from_seed(f"scenario-{ctx.seed}-sender-{i}".encode())
                        for i in range(count)]
        self.histories = [ctx.history(f"sender-{i}") for i in range(count)]
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self.hashes: list[str] = []

    async def fund(self) -> None:
        """Mint to each sender (as the node's dev mint authority), directly, and wait."""
        authority = Signer.from_seed(b"mint-authority")
        async with HttpRpc(self.ctx.lab.endpoints["node_rpc"]) as rpc:
            chain_id = parse_qty(await rpc.call("eth_chainId"))
            nonce = parse_qty(
                await rpc.call("eth_getTransactionCount", data(authority.address), "pending")
            )
            hashes = []
            for i, s in enumerate(self.signers):
                tx = sign_tx(authority, chain_id=chain_id, nonce=nonce + i, to=keys.NATIVE_TOKEN,
                             method="mint", args=s.address + _U64.pack(1_000_000),
                             write_set=(keys.balance_key(s.address),))
                await rpc.call("dubhe_sendTransaction", data(tx.raw))
                hashes.append(data(tx.hash))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if all([await rpc.call("dubhe_getReceipt", h) for h in hashes]):
                    return
                await asyncio.sleep(0.1)
            raise TimeoutError("the senders' funding was not included within 20 s")

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._send(i)) for i in range(len(self.signers))]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send(self, i: int) -> None:
        signer, history = self.signers[i], self.histories[i]
        rng = self.ctx.rng(f"sender/{i}")
        peer = Signer.from_seed(f"scenario-{self.ctx.seed}-sink".encode())
        nonce: int | None = None
        async with RecordingHttp(self.ctx.lab.endpoints["https"], history=history,
                                 ssl=self.ctx.lab.ssl_context(), timeout_s=3,
                                 seed=self.ctx.derived_seed(f"sender-http/{i}")) as rpc:
            chain_id: int | None = None
            while not self._stop.is_set():
                try:
                    if chain_id is None:
                        chain_id = parse_qty(await rpc.call("eth_chainId"))
                    if nonce is None:
                        nonce = parse_qty(await rpc.call("eth_getTransactionCount",
                                                         data(signer.address), "pending"))
                except Exception:
                    await asyncio.sleep(0.2)
                    continue
                tx = sign_tx(
                    signer,
                    chain_id=chain_id,
                    nonce=nonce,
                    to=keys.NATIVE_TOKEN,
                    method="transfer",
                    args=peer.address + _U64.pack(rng.randrange(1, 100)),
                    write_set=(keys.balance_key(signer.address), keys.balance_key(peer.address)),
                )
                h = data(tx.hash)
                outcome = await rpc.send_raw_transaction(data(tx.raw), h)
                self.hashes.append(h)
                if outcome == "ack":
                    nonce += 1
                else:
                    nonce = None  # re-read: an unknown outcome may have taken the nonce
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 1.0 / self.rate)

    def acked(self) -> set[str]:
        return {e["tx"] for h in self.histories for e in h.events
                if e.get("ev") == "request" and e.get("outcome") == "ack"}

    async def receipts(self, wait_s: float = 30.0) -> dict[str, Any]:
        """tx hash -> receipt (or None), read from the node directly, once every acknowledged
        transaction has one or ``wait_s`` has passed (the last blocks may still be coming: an
        empty mempool is not enough, a block may be executing)."""
        out: dict[str, Any] = {}
        hashes = sorted(set(self.hashes))
        acked = self.acked()
        deadline = time.monotonic() + wait_s
        async with HttpRpc(self.ctx.lab.endpoints["node_rpc"], timeout_s=20) as rpc:
            while True:
                todo = [h for h in hashes if out.get(h) is None]
                res = await batch_all(rpc, [("dubhe_getReceipt", [h]) for h in todo])
                for h, r in zip(todo, res, strict=True):
                    out[h] = r if isinstance(r, dict) else None
                if all(out.get(h) is not None for h in acked) or time.monotonic() >= deadline:
                    return out
                await asyncio.sleep(0.5)


__all__ = ["Fleet", "Group", "TxSenders", "chain_blocks", "chain_height", "expected_starts"]

