"""The Ethereum adapter against the mock Ethereum L1 over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest
from timing import scaled, wait_until  # type: ignore[import-not-found]

from lab.l1.harness import admin, mock_l1
from lab.l1.server import MockL1
from node.adapters import (
    AllEndpointsFailed,
    BackoffPolicy,
    BudgetExceeded,
    ChainMismatch,
    CodeUpgrade,
    Endpoint,
    EthereumAdapter,
    Header,
    NewHead,
    Reorg,
    RpcFailure,
)
from node.adapters.base import ChainAdapter, EventStream
from node.adapters.events import AdapterEvent
from node.adapters.health import HealthBook
from node.adapters.transport import RpcClient
from node.core.hexutil import data

pytestmark = pytest.mark.timeout(60)

FAST = BackoffPolicy(base_s=0.02, cap_s=0.2, max_retry_after_s=1.0)
ELF1 = "0x7f454c4601"
ELF2 = "0x7f454c4602"


def endpoints(l1: MockL1) -> list[Endpoint]:
    return [Endpoint(ep.http_url, ep.ws_url) for ep in l1.endpoints]


def eth_adapter(l1: MockL1, **kw: object) -> EthereumAdapter:
    opts: dict[str, object] = {
        "chain_id": 1337, "backoff": FAST, "rng_seed": 7, "poll_interval_s": 0.1,
        "request_timeout_s": 2.0, "ping_interval_s": 1.0,
    }
    opts.update(kw)
    return EthereumAdapter(endpoints(l1), **opts)  # type: ignore[arg-type]


class Collected:
    """Replays NewHead/Reorg events into a chain and checks the adapter's guarantees as it goes."""

    def __init__(self) -> None:
        self.chain: list[Header] = []
        self.events: list[AdapterEvent] = []
        self.reorgs: list[Reorg] = []

    def add(self, ev: AdapterEvent) -> None:
        self.events.append(ev)
        if isinstance(ev, NewHead):
            h = ev.header
            if self.chain:
                assert h.number == self.chain[-1].number + 1, f"gap or duplicate at {h.number}"
                assert h.parent_hash == self.chain[-1].hash, f"unlinked head {h.number}"
            self.chain.append(h)
        elif isinstance(ev, Reorg):
            self.reorgs.append(ev)
            assert ev.fork_point is not None
            assert [h.hash for h in ev.dropped] == [
                h.hash
                for h in reversed(self.chain[ev.fork_point.number - self.chain[0].number + 1 :])
            ]
            del self.chain[ev.fork_point.number - self.chain[0].number + 1 :]
            assert self.chain[-1] == ev.fork_point

    async def until(
        self, stream: EventStream, pred: Callable[[], bool], timeout_s: float = 15.0
    ) -> None:
        async with asyncio.timeout(scaled(timeout_s)):
            while not pred():
                self.add(await stream.get())


async def eventually(pred: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``pred`` until true; fails after ``scaled(timeout_s)`` (a generous bound, not a
    timing assertion)."""
    await wait_until(pred, timeout_s)


def canonical(l1: MockL1, first: int) -> list[str]:
    return [data(b.hash) for b in l1.chain.blocks[first:]]


@pytest.fixture
async def eth() -> AsyncIterator[MockL1]:
    async with mock_l1("eth", seed=11, endpoints=2) as l1:
        yield l1


async def started(a: ChainAdapter) -> tuple[EventStream, Collected]:
    stream = a.listen()
    await a.start()
    await a.wait_ready(10)
    return stream, Collected()


async def test_follows_heads_and_reports_code_deploy_and_upgrade(eth: MockL1) -> None:
    eth.produce(3)
    async with eth_adapter(eth) as a:
        stream, got = await started(a)
        primary = eth.endpoints[0]
        d = await admin(primary.admin_url, {"cmd": "deploy", "code": ELF1})
        await admin(primary.admin_url, {"cmd": "upgrade", "address": d["address"], "code": ELF2})
        eth.produce(2)
        await got.until(
            stream, lambda: bool(got.chain) and got.chain[-1].number == eth.chain.head.number
        )
        ups = [e for e in got.events if isinstance(e, CodeUpgrade)]
        assert [(u.address, u.version) for u in ups] == [(d["address"], 1), (d["address"], 2)]
        assert ups[1].header is not None and ups[1].header.number == d["block"] + 1
        assert await a.get_code(d["address"]) == bytes.fromhex(ELF2[2:])
        assert await a.get_code(d["address"], d["block"]) == bytes.fromhex(ELF1[2:])
        assert await a.get_code("0x" + "00" * 20) == b""
        assert [h.hash for h in got.chain] == canonical(eth, got.chain[0].number)
        st = a.status()
        assert st["ws_connected"] == primary.ws_url
        assert a.health()[0]["state"] == "up"


async def test_backfills_after_disconnects_with_no_missed_or_duplicate_block(eth: MockL1) -> None:
    primary = eth.endpoints[0]
    async with eth_adapter(eth, poll_interval_s=0.3) as a:
        stream, got = await started(a)
        for round_ in range(3):
            connects = a.stats["ws_connects"]
            cut = a.ws_connected in (None, primary.ws_url)  # else it already follows the fallback
            await primary.disconnect_ws()
            eth.produce(7)  # while the subscription is down
            if cut:  # the next blocks arrive on a new subscription
                await wait_until(lambda c=connects: a.stats["ws_connects"] > c,
                                 what="the adapter subscribed again")
            eth.produce(3)
            if round_ == 1:
                await admin(primary.admin_url, {"cmd": "outage", "ms": 300})
                await wait_until(lambda: not primary.up, what="the primary's outage started")
                eth.produce(5)  # while the primary is not even listening
                await wait_until(lambda: primary.up, what="the primary back after its outage")
        await got.until(
            stream, lambda: bool(got.chain) and got.chain[-1].number == eth.chain.head.number
        )
        assert [h.hash for h in got.chain] == canonical(eth, got.chain[0].number)
        assert a.stats["backfilled"] > 0
        assert a.stats["ws_connects"] >= 2


async def test_reorg_rolls_back_to_the_fork_point_and_reports_reverted_code(eth: MockL1) -> None:
    primary = eth.endpoints[0]
    eth.produce(5)
    async with eth_adapter(eth) as a:
        stream, got = await started(a)
        d = await admin(primary.admin_url, {"cmd": "deploy", "code": ELF1})
        eth.produce(2)
        await got.until(
            stream, lambda: bool(got.chain) and got.chain[-1].number == eth.chain.head.number
        )
        r = await admin(primary.admin_url, {"cmd": "reorg", "depth": 3, "keep_txs": False})
        await got.until(
            stream, lambda: bool(got.reorgs) and got.chain[-1].number == eth.chain.head.number
        )
        reorg = got.reorgs[0]
        assert reorg.fork_point is not None and reorg.fork_point.number == r["fork_point"]
        assert [h.hash for h in reorg.dropped] == list(reversed(r["dropped"]))
        assert reorg.reverted_code == (d["address"],)
        assert [h.hash for h in got.chain] == canonical(eth, got.chain[0].number)
        assert await a.get_code(d["address"]) == b""


async def test_reorg_seen_only_by_polling_is_resolved(eth: MockL1) -> None:
    eth.produce(2)
    async with eth_adapter(eth, use_ws=False, poll_interval_s=0.05) as a:
        stream, got = await started(a)
        eth.produce(10)
        await got.until(
            stream, lambda: bool(got.chain) and got.chain[-1].number == eth.chain.head.number
        )
        eth.chain.reorg(6, 8)  # no notification: only the next poll of "latest" can see it
        await got.until(
            stream, lambda: bool(got.reorgs) and got.chain[-1].number == eth.chain.head.number
        )
        assert got.reorgs[0].fork_point is not None and got.reorgs[0].fork_point.number == 6
        assert [h.hash for h in got.chain] == canonical(eth, got.chain[0].number)


async def test_failover_when_the_primary_dies(eth: MockL1) -> None:
    primary, fallback = eth.endpoints
    async with eth_adapter(eth) as a:
        stream, got = await started(a)
        assert a.ws_connected == primary.ws_url
        await primary.stop()
        eth.produce(6)
        await got.until(
            stream, lambda: bool(got.chain) and got.chain[-1].number == eth.chain.head.number
        )
        assert [h.hash for h in got.chain] == canonical(eth, got.chain[0].number)
        await eventually(lambda: a.ws_connected == fallback.ws_url)
        h = {e["rpc_url"]: e for e in a.health()}
        assert h[primary.http_url]["failures"] >= 1
        assert h[primary.http_url]["state"] in ("down", "degraded")
        assert h[fallback.http_url]["successes"] >= 1
        # the primary comes back: traffic returns to it once its cooldown ends
        await primary.start()
        eth.produce(2)
        await eventually(
            lambda: {e["rpc_url"]: e for e in a.health()}[primary.http_url]["state"] == "up", 15
        )


async def test_429_with_retry_after_is_honoured(eth: MockL1) -> None:
    primary = eth.endpoints[0]
    d = await admin(primary.admin_url, {"cmd": "deploy", "code": ELF1})
    a = eth_adapter(eth)
    a.health_book.entries.pop()  # only the primary, so the client must wait
    try:
        await admin(
            primary.admin_url,
            {
                "cmd": "faults",
                "count": 2,
                "http_status": 429,
                "retry_after": "0.3",
                "methods": ["eth_getCode"],
            },
        )
        t0 = time.monotonic()
        assert await a.get_code(d["address"]) == bytes.fromhex(ELF1[2:])
        elapsed = time.monotonic() - t0
        assert list(a.rpc.retry_delays) == [pytest.approx(0.3), pytest.approx(0.3)]
        assert 0.55 <= elapsed < 10  # loosely: two honoured Retry-Afters
        assert a.health()[0]["rate_limited"] == 2
    finally:
        await a.stop()


async def test_503_fails_over_without_waiting(eth: MockL1) -> None:
    primary, _fallback = eth.endpoints
    await admin(primary.admin_url, {"cmd": "faults", "count": 5, "http_status": 503})
    a = eth_adapter(eth)
    try:
        assert await a.get_chain_id() == 1337
        assert list(a.rpc.retry_delays) == []
        h = a.health()
        assert h[0]["failures"] == 1 and "HTTP 503" in str(h[0]["last_error"])
        assert h[1]["successes"] == 1
        assert a.rpc.errors_by_kind == {"ServerBusy": 1}
    finally:
        await a.stop()


async def test_stalled_endpoint_times_out_and_fails_over(eth: MockL1) -> None:
    primary = eth.endpoints[0]
    await admin(primary.admin_url, {"cmd": "faults", "count": 1, "stall_ms": 3000})
    a = eth_adapter(eth, request_timeout_s=0.3, hedge=False)
    try:
        t0 = time.monotonic()
        assert await a.get_chain_id() == 1337
        assert time.monotonic() - t0 < 2.5
        assert a.rpc.errors_by_kind == {"EndpointUnavailable": 1}
    finally:
        await a.stop()


async def test_stalled_endpoint_loses_a_hedge_and_is_scored(eth: MockL1) -> None:
    """Hedging: the fallback is asked once the primary is late (its hedge delay, 0.2 s before any
    latency is known), answers first, and the primary's cancelled attempt counts against it."""
    primary = eth.endpoints[0]
    await admin(primary.admin_url, {"cmd": "faults", "count": 1, "stall_ms": 3000})
    a = eth_adapter(eth, request_timeout_s=5.0)
    try:
        t0 = time.monotonic()
        assert await a.get_chain_id() == 1337
        took = time.monotonic() - t0
        assert 0.2 <= took < 1.0, took
        h = a.health()
        assert h[0]["abandoned"] == 1 and h[0]["failures"] == 1 and h[0]["hedged"] == 1
        assert h[0]["latency_ms"] >= 200  # took at least as long as it was waited for
        assert h[0]["state"] in ("down", "slow")
        assert h[1]["successes"] == 1
        assert a.rpc.hedges == 1 and a.rpc.abandoned == 1
        # the next call goes to the fallback first: no hedge delay to pay
        t0 = time.monotonic()
        assert await a.get_chain_id() == 1337
        assert time.monotonic() - t0 < 0.15
        assert a.health()[1]["successes"] == 2
        assert a.status()["failovers"] == 1
    finally:
        await a.stop()


async def test_call_budget_bounds_every_attempt(eth: MockL1) -> None:
    """One budget for the whole call: a black-holed single endpoint is given up at the budget,
    not at its (longer) request timeout, and the cancelled attempt is scored."""
    primary = eth.endpoints[0]
    await admin(primary.admin_url, {"cmd": "faults", "count": 10, "stall_ms": 5000})
    a = eth_adapter(eth, request_timeout_s=5.0)
    a.health_book.entries.pop()
    try:
        t0 = time.monotonic()
        with pytest.raises(BudgetExceeded, match=r"0\.4 s budget"):
            await a.rpc.call("eth_chainId", [], lambda r: r, timeout_s=0.4)
        assert 0.39 <= time.monotonic() - t0 < 0.8
        assert a.health()[0]["failures"] >= 1
    finally:
        await a.stop()


@pytest.mark.parametrize(
    "kind", ["bad_json", "truncated", "wrong_type", "missing_result", "wrong_id"]
)
async def test_malformed_responses_are_logged_and_survived(
    eth: MockL1, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    primary = eth.endpoints[0]
    eth.produce(2)
    a = eth_adapter(eth)
    a.health_book.entries.pop()
    try:
        await admin(
            primary.admin_url,
            {"cmd": "faults", "count": 1, "malformed": kind, "methods": ["eth_chainId"]},
        )
        with caplog.at_level(logging.ERROR, logger="node.adapters"):
            assert await a.get_chain_id() == 1337
        assert any(
            "MalformedResponse" in r.getMessage()
            for r in caplog.records
            if r.levelno == logging.ERROR
        )
        assert a.rpc.errors_by_kind == {"MalformedResponse": 1}
        # the same while following: head fetches and a subscription answer go bad, following goes on
        await admin(
            primary.admin_url,
            {"cmd": "faults", "count": 3, "malformed": kind, "methods": ["eth_getBlockByNumber"]},
        )
        await admin(
            primary.admin_url, {"cmd": "faults", "count": 1, "malformed": kind, "transport": "ws"}
        )
        stream, got = await started(a)
        eth.produce(3)
        await got.until(
            stream, lambda: bool(got.chain) and got.chain[-1].number == eth.chain.head.number
        )
        assert [h.hash for h in got.chain] == canonical(eth, got.chain[0].number)
    finally:
        await a.stop()


async def test_jsonrpc_error_is_not_retried(eth: MockL1) -> None:
    a = eth_adapter(eth)
    try:
        with pytest.raises(RpcFailure) as ei:
            await a.rpc.call("eth_getCode", ["0x12", "latest"], lambda r: r)
        assert ei.value.code == -32602
        assert a.health()[0]["failures"] == 0
    finally:
        await a.stop()


async def test_wrong_chain_id_is_refused(eth: MockL1, caplog: pytest.LogCaptureFixture) -> None:
    async with eth_adapter(eth, chain_id=1) as a:
        with caplog.at_level(logging.WARNING, logger="node.adapters"):
            with pytest.raises(TimeoutError):
                await a.wait_ready(0.5)
        assert a.head is None
        assert any(ChainMismatch.__name__ in r.getMessage() for r in caplog.records)


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_backoff_schedule_follows_the_seeded_rng_within_bounds() -> None:
    policy = BackoffPolicy(base_s=0.05, cap_s=0.4, factor=2.0)
    seed = 1234
    hb = HealthBook(
        [
            Endpoint(f"http://127.0.0.1:{dead_port()}/"),
            Endpoint(f"http://127.0.0.1:{dead_port()}/"),
        ],
        cooldown_base_s=0.01,
    )
    client = RpcClient(
        hb, policy=policy, rng=random.Random(seed), attempts=6, request_timeout_s=1.0
    )
    try:
        t0 = time.monotonic()
        with pytest.raises(AllEndpointsFailed):
            await client.call("eth_chainId", [], lambda r: r)
        elapsed = time.monotonic() - t0
    finally:
        await client.close()
    expected = policy.schedule(random.Random(seed), 5)
    assert list(client.retry_delays) == expected
    for i, d in enumerate(client.retry_delays):
        assert 0 <= d <= policy.ceiling(i)
    assert sum(expected) * 0.9 <= elapsed < sum(expected) + 10


async def test_ws_reconnect_backoff_uses_the_seeded_schedule(eth: MockL1) -> None:
    policy = BackoffPolicy(base_s=0.02, cap_s=0.1)
    eps = [Endpoint(eth.endpoints[0].http_url, f"ws://127.0.0.1:{dead_port()}/ws")]
    async with EthereumAdapter(eps, backoff=policy, rng_seed=99, poll_interval_s=0.1) as a:
        await eventually(lambda: len(a.ws_delays) >= 6)
        assert a.ws_delays[:6] == policy.schedule(random.Random("99:ws"), 6)
        await a.wait_ready(5)  # heads still arrive by polling


@pytest.mark.parametrize("batch_size", [1, 4, 50])
async def test_start_from_backfills_history_in_order(eth: MockL1, batch_size: int) -> None:
    eth.produce(30)
    async with eth_adapter(eth, start_from=5, max_fetch=7, batch_size=batch_size) as a:
        stream, got = await started(a)
        await got.until(
            stream, lambda: bool(got.chain) and got.chain[-1].number == eth.chain.head.number
        )
        assert got.chain[0].number == 5
        assert [h.hash for h in got.chain] == canonical(eth, 5)


async def test_malformed_notifications_are_logged_and_ignored(
    eth: MockL1, caplog: pytest.LogCaptureFixture
) -> None:
    a = eth_adapter(eth)
    subs: set[object] = {"0x1"}
    bad = [
        b"{not json",
        b'{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x2","result":{}}}',
        b'{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":{"number":"0x01"}}}',
        b'{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":[1,2]}}',
        b'{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":{"number":"0x1","hash":"0x12"',
    ]
    with caplog.at_level(logging.ERROR, logger="node.adapters"):
        for raw in bad:
            a._ws_message(raw, subs, "ws://x")
    assert a.stats["malformed"] == len(bad)
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == len(bad)
    assert a._inbox.empty()
    await a.stop()


def test_endpoint_list_and_policy_from_config_values() -> None:
    from node.adapters import endpoint_list

    eps = endpoint_list(
        "http://127.0.0.1:1/",
        "ws://127.0.0.1:1/ws",
        [{"rpc_url": "http://127.0.0.1:2/", "ws_url": None}],
    )
    assert [e.rpc_url for e in eps] == ["http://127.0.0.1:1/", "http://127.0.0.1:2/"]
    with pytest.raises(ValueError):
        endpoint_list(None, None, [])
    p = BackoffPolicy.from_ms(50, 2000)
    assert (p.base_s, p.cap_s) == (0.05, 2.0)


async def test_keepalive_pings_detect_a_silent_websocket_peer(eth: MockL1) -> None:
    primary = eth.endpoints[0]
    async with eth_adapter(eth, ping_interval_s=0.2, request_timeout_s=1.0) as a:
        stream, got = await started(a)
        await eventually(lambda: a.ws_connected is not None)
        first = a.ws_connected
        await admin(primary.admin_url, {"cmd": "ws_stall", "on": True})
        # no pong within half a ping interval: the adapter drops the link and moves on
        await eventually(lambda: a.stats["ws_errors"] >= 1 and a.ws_connected not in (None, first))
        assert "No PONG" in str(
            {e["rpc_url"]: e for e in a.health()}[primary.http_url]["last_error"]
        )
        eth.produce(3)
        await got.until(
            stream, lambda: bool(got.chain) and got.chain[-1].number == eth.chain.head.number
        )
        await admin(primary.admin_url, {"cmd": "ws_stall", "on": False})
        assert [h.hash for h in got.chain] == canonical(eth, got.chain[0].number)


def test_endpoint_list_accepts_config_objects() -> None:
    from dataclasses import dataclass

    from node.adapters import endpoint_list

    @dataclass
    class Ep:
        rpc_url: str
        ws_url: str | None = None

    eps = endpoint_list("http://127.0.0.1:1/", None, [Ep("http://127.0.0.1:2/", "ws://127.0.0.1:2/ws")])
    assert eps[1].ws_url == "ws://127.0.0.1:2/ws"


@pytest.mark.parametrize(
    "kind", ["bad_json", "truncated", "wrong_type", "missing_result", "wrong_id"]
)
async def test_malformed_notifications_over_the_socket(
    eth: MockL1, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    primary = eth.endpoints[0]
    async with eth_adapter(eth, poll_interval_s=0.2) as a:
        stream, got = await started(a)
        await eventually(lambda: a.ws_connected is not None)
        await admin(
            primary.admin_url,
            {
                "cmd": "faults",
                "count": 2,
                "malformed": kind,
                "transport": "ws",
                "methods": ["eth_subscription"],
            },
        )
        with caplog.at_level(logging.ERROR, logger="node.adapters"):
            eth.produce(4)
            await got.until(
                stream, lambda: bool(got.chain) and got.chain[-1].number == eth.chain.head.number
            )
        assert a.stats["malformed"] == 2
        assert sum("malformed notification" in r.getMessage() for r in caplog.records) == 2
        assert [h.hash for h in got.chain] == canonical(eth, got.chain[0].number)
