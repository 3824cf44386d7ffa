"""The Sui adapter against the mock Sui L1 over real loopback sockets, over JSON-RPC (+ WebSocket)
and over GraphQL (every test that uses the ``sui`` fixture runs with both)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest
from timing import scaled, wait_until  # type: ignore[import-not-found]

from lab.l1.harness import admin, mock_l1
from lab.l1.server import MockL1
from lab.l1.wire import b58encode
from node.adapters import (
    BackoffPolicy,
    CodeNotFound,
    CodeUpgrade,
    Endpoint,
    NewHead,
    Reorg,
    SuiAdapter,
)
from node.adapters.base import EventStream
from node.adapters.events import AdapterEvent, Header

pytestmark = pytest.mark.timeout(60)

FAST = BackoffPolicy(base_s=0.02, cap_s=0.2, max_retry_after_s=1.0)


def sui_adapter(l1: MockL1, **kw: object) -> SuiAdapter:
    opts: dict[str, object] = {
        "backoff": FAST, "rng_seed": 3, "poll_interval_s": 0.05, "request_timeout_s": 2.0,
        "network_type": "Localnet", "package_ids": ["0x2"],
    }
    protocol = getattr(l1, "protocol_under_test", "jsonrpc")
    opts["protocol"] = protocol
    opts.update(kw)
    eps = [Endpoint(ep.graphql_url) if protocol == "graphql" else Endpoint(ep.http_url, ep.ws_url)
           for ep in l1.endpoints]
    return SuiAdapter(eps, **opts)  # type: ignore[arg-type]


class Seen:
    def __init__(self) -> None:
        self.chain: list[Header] = []
        self.events: list[AdapterEvent] = []

    def add(self, ev: AdapterEvent) -> None:
        self.events.append(ev)
        if isinstance(ev, NewHead):
            if self.chain:
                assert ev.header.number == self.chain[-1].number + 1
                assert ev.header.parent_hash == self.chain[-1].hash
            self.chain.append(ev.header)
        elif isinstance(ev, Reorg):
            assert ev.fork_point is not None
            while self.chain and self.chain[-1].number > ev.fork_point.number:
                self.chain.pop()

    async def until(
        self, stream: EventStream, pred: Callable[[], bool], timeout_s: float = 15.0
    ) -> None:
        async with asyncio.timeout(scaled(timeout_s)):
            while not pred():
                self.add(await stream.get())


def digests(l1: MockL1, first: int) -> list[str]:
    return [b58encode(b.hash) for b in l1.chain.blocks[first:]]


@pytest.fixture(params=["jsonrpc", "graphql"])
async def sui(request: pytest.FixtureRequest) -> AsyncIterator[MockL1]:
    async with mock_l1("sui", seed=5, endpoints=2) as l1:
        l1.protocol_under_test = request.param  # type: ignore[attr-defined]
        yield l1


async def test_follows_checkpoints_and_reports_publish_and_upgrade(sui: MockL1) -> None:
    primary = sui.endpoints[0]
    sui.produce(2)
    async with sui_adapter(sui) as a:
        stream = a.listen()
        seen = Seen()
        await a.wait_ready(10)
        await seen.until(stream, lambda: bool(seen.chain))
        d = await admin(
            primary.admin_url,
            {"cmd": "deploy", "modules": {"main": "0x7f454c4601", "lib": "0x7f454c46aa"}},
        )
        u = await admin(
            primary.admin_url, {"cmd": "upgrade", "address": d["address"], "code": "0x7f454c4602"}
        )
        sui.produce(1)

        def done() -> bool:
            return (
                sum(isinstance(e, CodeUpgrade) for e in seen.events) == 2
                and seen.chain[-1].number == sui.chain.head.number
            )

        await seen.until(stream, done)
        ups = [e for e in seen.events if isinstance(e, CodeUpgrade)]
        assert [(x.address, x.location, x.version) for x in ups] == [
            (d["address"], d["package_id"], 1), (d["address"], u["package_id"], 2)
        ]
        assert u["package_id"] != d["package_id"]  # an upgrade publishes a new package
        assert await a.get_package_modules(d["package_id"]) == {
            "lib": b"\x7fELF\xaa",
            "main": b"\x7fELF\x01",
        }
        assert await a.get_package_modules(u["package_id"]) == {"dubhe": b"\x7fELF\x02"}
        with pytest.raises(CodeNotFound):
            await a.get_package_modules("0x1234")
        assert [h.hash for h in seen.chain] == digests(sui, seen.chain[0].number)
        owner = (await admin(primary.admin_url, {"cmd": "state"}))["accounts"][0]
        assert await a.get_balance(owner) > 0
        assert await a.latest_checkpoint() == sui.chain.head.number
        assert a.package_ids == ("0x" + "00" * 31 + "02",)


async def test_backfills_after_an_outage_without_gaps_or_duplicates(sui: MockL1) -> None:
    primary = sui.endpoints[0]
    async with sui_adapter(sui) as a:
        stream = a.listen()
        seen = Seen()
        await a.wait_ready(10)
        for _ in range(3):
            await primary.stop()
            await sui.endpoints[1].stop()
            sui.produce(9)
            d = (
                await admin(f"http://127.0.0.1:{sui.endpoints[0].port}/admin", {"cmd": "state"})
                if primary.up
                else None
            )
            assert d is None
            failures = sum(int(e["failures"]) for e in a.health())
            await wait_until(lambda f=failures: sum(int(e["failures"]) for e in a.health()) > f,
                             what="the adapter failing to reach the stopped endpoints")
            await primary.start()
            await sui.endpoints[1].start()
            sui.produce(1)
        await seen.until(
            stream, lambda: bool(seen.chain) and seen.chain[-1].number == sui.chain.head.number
        )
        assert [h.hash for h in seen.chain] == digests(sui, seen.chain[0].number)
        assert a.stats["backfilled"] > 0


async def test_failover_and_reorg(sui: MockL1) -> None:
    primary, fallback = sui.endpoints
    async with sui_adapter(sui) as a:
        stream = a.listen()
        seen = Seen()
        await a.wait_ready(10)
        await primary.stop()
        sui.produce(6)
        await seen.until(
            stream, lambda: bool(seen.chain) and seen.chain[-1].number == sui.chain.head.number
        )
        r = await admin(fallback.admin_url, {"cmd": "reorg", "depth": 3})
        await seen.until(
            stream,
            lambda: (
                any(isinstance(e, Reorg) for e in seen.events)
                and seen.chain[-1].number == sui.chain.head.number
            ),
        )
        reorg = next(e for e in seen.events if isinstance(e, Reorg))
        assert reorg.fork_point is not None and reorg.fork_point.number == r["fork_point"]
        assert [h.hash for h in seen.chain] == digests(sui, seen.chain[0].number)
        assert a.health()[0]["failures"] >= 1  # the primary


async def test_malformed_checkpoints_are_logged_and_survived(
    sui: MockL1, caplog: pytest.LogCaptureFixture
) -> None:
    method = "graphql" if getattr(sui, "protocol_under_test", "") == "graphql" else (
        "sui_getCheckpoints")
    for ep in sui.endpoints:
        for kind in ("bad_json", "wrong_type", "truncated"):
            await admin(
                ep.admin_url,
                {"cmd": "faults", "count": 1, "malformed": kind, "methods": [method]},
            )
    async with sui_adapter(sui) as a:
        stream = a.listen()
        seen = Seen()
        with caplog.at_level(logging.ERROR, logger="node.adapters"):
            await a.wait_ready(10)
            sui.produce(4)
            await seen.until(
                stream, lambda: bool(seen.chain) and seen.chain[-1].number == sui.chain.head.number
            )
        assert a.rpc.errors_by_kind.get("MalformedResponse", 0) >= 3
        assert any(r.levelno == logging.ERROR for r in caplog.records)


def test_rejects_unknown_network_type() -> None:
    with pytest.raises(ValueError):
        SuiAdapter([Endpoint("http://127.0.0.1:9/")], network_type="Moonnet")  # type: ignore[arg-type]


async def test_event_cursor_lost_in_a_reorg_is_recovered(sui: MockL1) -> None:
    """A (mock-only) reorg drops the transaction of the event cursor: the adapter moves its cursor
    back before the dropped checkpoints and reports the package published right after."""
    primary = sui.endpoints[0]
    async with sui_adapter(sui) as a:
        stream = a.listen()
        seen = Seen()
        await a.wait_ready(10)
        d = await admin(primary.admin_url, {"cmd": "deploy", "code": "0x7f454c4601"})
        await seen.until(stream, lambda: any(isinstance(e, CodeUpgrade) for e in seen.events))
        await admin(primary.admin_url, {"cmd": "reorg", "depth": 1, "keep_txs": False})
        await seen.until(stream, lambda: any(isinstance(e, Reorg) for e in seen.events))
        reorg = next(e for e in seen.events if isinstance(e, Reorg))
        assert reorg.reverted_code == (d["address"],)
        d2 = await admin(primary.admin_url, {"cmd": "deploy", "code": "0x7f454c4603"})
        await seen.until(stream, lambda: sum(isinstance(e, CodeUpgrade) for e in seen.events) == 2)
        last = [e for e in seen.events if isinstance(e, CodeUpgrade)][-1]
        assert last.address == d2["address"] != d["address"]


async def test_reorg_removing_an_upgrade_restores_the_previous_package(sui: MockL1) -> None:
    primary = sui.endpoints[0]
    async with sui_adapter(sui) as a:
        stream = a.listen()
        seen = Seen()
        await a.wait_ready(10)
        d = await admin(primary.admin_url, {"cmd": "deploy", "code": "0x7f454c4601"})
        up = await admin(primary.admin_url, {"cmd": "upgrade", "address": d["address"],
                                              "code": "0x7f454c4602"})
        await seen.until(stream, lambda: sum(isinstance(e, CodeUpgrade) for e in seen.events) == 2)
        assert a.current_package(d["address"]) == up["package_id"]
        assert a.current_version(d["address"]) == 2
        await admin(primary.admin_url, {"cmd": "reorg", "depth": 1, "keep_txs": False})
        await seen.until(stream, lambda: any(isinstance(e, Reorg) for e in seen.events))
        reorg = next(e for e in seen.events if isinstance(e, Reorg))
        assert reorg.reverted_code == (d["address"],)
        assert a.current_package(d["address"]) == d["package_id"]
        assert a.current_version(d["address"]) == 1
        mods = await a.get_package_modules(a.current_package(d["address"]))
        assert list(mods.values()) == [bytes.fromhex("7f454c4601")]
