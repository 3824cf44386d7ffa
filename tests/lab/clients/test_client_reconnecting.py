"""The reconnecting client on a virtual clock over an in-memory node (``fakenode.py``): backoff
after drops and refusals, Retry-After, fatal TLS, keepalive, heads exactly once and in order."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from fakenode import ONE_WAY_S, FakeNode, Script
from timing import wait_until
from vclock import virtual_time

from lab.clients.backoff import BackoffPolicy
from lab.clients.reconnecting import ClientFatal, ClientOptions, NotConnected, ReconnectingClient
from lab.clients.transport import Closed, HandshakeFailed

URL = "ws://node/ws"
HANDSHAKE_S = 2 * ONE_WAY_S


def client(node: FakeNode, **kw: Any) -> ReconnectingClient:
    opts = {"seed": 3, "ping_interval_s": None, **kw}
    return ReconnectingClient(URL, connector=node.connector, options=ClientOptions(**opts))


async def consume(c: ReconnectingClient, into: list[int]) -> None:
    async for head in c.heads():
        into.append(int(head["number"], 16))


def expected_delays(seed: int, policy: BackoffPolicy, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(0.0, policy.ceiling(i)) for i in range(n)]


@virtual_time
async def test_a_handshake_that_succeeds_and_drops_at_once_is_retried_ever_more_slowly() -> None:
    # websockets' own reconnect loop retries this at once, forever; ours backs off.
    policy = BackoffPolicy(base_s=0.1, cap_s=1.6, stable_s=5.0)
    node = FakeNode(default=Script(drop_after_s=0.0))
    c = client(node, backoff=policy)
    async with c:
        await wait_until(lambda: len(node.attempts) >= 8)
    gaps = [b - a for a, b in zip(node.attempts, node.attempts[1:], strict=False)]
    delays = expected_delays(3, policy, 7)
    # each gap = handshake + the (immediate) drop + that retry's delay, to the microsecond
    for gap, delay in zip(gaps, delays, strict=True):
        assert gap == pytest.approx(HANDSHAKE_S + delay, abs=1e-6)
    backoffs = c.history.of("backoff")
    assert [b["attempt"] for b in backoffs[:7]] == list(range(7))
    assert all(b["seed"] == 3 for b in backoffs)
    closes = c.history.of("close")
    assert {(e["code"], e["by"]) for e in closes} == {(1006, "none")}


@virtual_time
async def test_a_stable_connection_resets_the_backoff() -> None:
    policy = BackoffPolicy(base_s=0.1, cap_s=1.6, stable_s=1.0)
    node = FakeNode(scripts=[Script(drop_after_s=0.0)] * 3 + [Script(drop_after_s=2.0)],
                    default=Script(drop_after_s=0.0))
    c = client(node, backoff=policy)
    async with c:
        await wait_until(lambda: len(node.attempts) >= 6)
    assert [b["attempt"] for b in c.history.of("backoff")[:5]] == [0, 1, 2, 0, 1]


@virtual_time
async def test_503_is_retried_and_429_waits_for_retry_after() -> None:
    node = FakeNode(scripts=[
        Script(refuse=HandshakeFailed("http", "HTTP 503", status=503)),
        Script(refuse=HandshakeFailed("http", "HTTP 429", status=429, retry_after_s=7.0)),
    ])
    c = client(node, backoff=BackoffPolicy(base_s=0.1, cap_s=0.2))
    async with c:
        await c.wait_open(30)
    assert len(node.attempts) == 3
    assert node.attempts[2] - node.attempts[1] == pytest.approx(HANDSHAKE_S + 7.0, abs=1e-6)
    hs = c.history.of("handshake")
    assert [(h["ok"], h["status"]) for h in hs] == [(False, 503), (False, 429), (True, 101)]


@pytest.mark.parametrize("failure", [
    HandshakeFailed("tls", "TLS certificate verification failed: certificate has expired",
                    exception="SSLCertVerificationError"),
    HandshakeFailed("http", "HTTP 400 Bad Request", status=400),
])
@virtual_time
async def test_tls_errors_and_plain_4xx_are_fatal_with_a_clear_message(
    failure: HandshakeFailed,
) -> None:
    node = FakeNode(scripts=[Script(refuse=failure)])
    c = client(node)
    c.start()
    with pytest.raises(ClientFatal) as info:
        async for _ in c.heads():
            pass
    assert str(info.value) == f"{URL}: {failure.message}"
    with pytest.raises(ClientFatal):
        await c.call("eth_chainId")
    await c.stop()
    assert len(node.attempts) == 1
    assert c.history.of("fatal")[0]["message"] == failure.message


@virtual_time
async def test_max_attempts_gives_up() -> None:
    node = FakeNode(default=Script(refuse=HandshakeFailed("connect", "ConnectionRefusedError")))
    c = client(node, max_attempts=4)
    c.start()
    with pytest.raises(ClientFatal, match="gave up after 4 failed attempts"):
        await c.wait_open(60)
    await c.stop()
    assert len(node.attempts) == 4


@virtual_time
async def test_keepalive_drops_a_connection_whose_pongs_stop() -> None:
    node = FakeNode(scripts=[Script(swallow_pongs=True)])
    c = client(node, ping_interval_s=1.0, ping_timeout_s=0.5)
    async with c:
        await c.wait_open(5)
        opened = c.history.of("open")[0]["t"]
        await wait_until(lambda: len(c.history.of("open")) >= 2)
    timeout = c.history.of("keepalive_timeout")[0]
    # first ping at open + 1.0 s, no pong, given up 0.5 s later: exact on the virtual clock
    assert timeout["t"] - opened == pytest.approx(1.5, abs=1e-6)
    close = c.history.of("close")[0]
    assert (close["code"], close["by"], close["reason"]) == (
        1006,
        "client",
        "keepalive ping timeout",
    )
    assert len(c.history.of("keepalive_timeout")) == 1  # the second connection answers pings


@virtual_time
async def test_heads_exactly_once_and_in_order_across_drops_and_duplicates() -> None:
    # connections die every 0.45 s (abnormally, or with a server close), some send duplicates
    scripts = [Script(drop_after_s=0.45, code=None if i % 2 else 1012, duplicate=i % 3 == 0)
               for i in range(12)]
    node = FakeNode(block_time_s=0.2, scripts=scripts)
    c = client(node, backoff=BackoffPolicy(base_s=0.05, cap_s=0.4, stable_s=10))
    seen: list[int] = []
    async with c:
        c.follow_heads()
        task = asyncio.create_task(consume(c, seen))
        await node.run(40)
        await wait_until(lambda: c.delivered == 40)
    await task
    first = seen[0]
    assert seen == list(range(first, 41))
    assert first <= 2
    assert c.stats["backfilled"] > 0, "drops while blocks were made must have been backfilled"
    assert any(d["why"] == "duplicate" for d in c.history.of("drop"))
    delivered = c.history.of("deliver")
    assert [d["n"] for d in delivered] == seen
    assert {d["src"] for d in delivered} == {"notify", "backfill"}
    # the emit time is the node's params.emittedMs, not the block's timestampMs
    assert all(e["emit_ms"] == 2_000_000 + e["n"] for e in c.history.of("notify"))


@virtual_time
async def test_start_from_fetches_the_blocks_before_the_first_notification() -> None:
    node = FakeNode(block_time_s=0.2, height=10)
    c = client(node)
    seen: list[int] = []
    async with c:
        c.follow_heads(start_from=3)
        task = asyncio.create_task(consume(c, seen))
        await node.run(3)
        await wait_until(lambda: c.delivered == 13)
    await task
    assert seen == list(range(3, 14))
    assert node.fetched[:8] == list(range(3, 11))


@virtual_time
async def test_the_naive_client_misses_heads_across_a_drop() -> None:
    node = FakeNode(block_time_s=0.2, scripts=[Script(drop_after_s=0.5)])
    c = client(node, backfill=False, backoff=BackoffPolicy(base_s=1.0, cap_s=1.0))
    seen: list[int] = []
    async with c:
        c.follow_heads()
        task = asyncio.create_task(consume(c, seen))
        await node.run(15)
        await asyncio.sleep(0.1)
    await task
    assert seen[0] == 1 and seen[-1] == 15
    assert len(seen) < 15  # the blocks made while it was away are gone for it


@virtual_time
async def test_the_buffer_toward_a_slow_consumer_stays_bounded() -> None:
    node = FakeNode(block_time_s=0.01)
    c = client(node, buffer=4, pending_limit=8)
    seen: list[int] = []
    peak = {"out": 0, "ahead": 0}

    async def slow() -> None:
        async for head in c.heads():
            peak["out"] = max(peak["out"], c._out.qsize())
            peak["ahead"] = max(peak["ahead"], len(c._ahead))
            seen.append(int(head["number"], 16))
            await asyncio.sleep(0.05)  # 5x slower than the chain

    async with c:
        c.follow_heads()
        task = asyncio.create_task(slow())
        await node.run(100)
        await wait_until(lambda: c.delivered == 100)
        await wait_until(lambda: len(seen) >= 100 - seen[0] + 1)
    await task
    assert seen == list(range(seen[0], 101))
    assert peak["out"] <= 4 and peak["ahead"] <= 8
    assert c.stats["dropped"] > 0 and c.stats["backfilled"] > 0


@virtual_time
async def test_calls_wait_for_a_connection_and_retry_across_a_drop_when_asked() -> None:
    node = FakeNode(scripts=[Script(refuse=HandshakeFailed("connect", "refused")),
                             Script(ignore_requests=True, drop_after_s=1.0),
                             Script(ignore_requests=True, drop_after_s=1.0)])
    c = client(node, backoff=BackoffPolicy(base_s=0.5, cap_s=0.5))
    async with c:
        with pytest.raises(NotConnected):
            await c.call("eth_chainId", timeout_s=0.001)  # still backing off from the refusal
        with pytest.raises(Closed):  # conn 2 never answers and drops: no retry asked
            await c.call("eth_chainId", timeout_s=5)
        t0 = asyncio.get_running_loop().time()
        # conn 3 never answers either; conn 4 does
        assert await c.call("eth_chainId", timeout_s=10, retry=True) == "0x1"
        took = asyncio.get_running_loop().time() - t0
    assert 1.0 < took < 1.0 + 0.5 + 0.01
    ok = [r for r in c.history.of("request") if r["ok"]]
    assert len(ok) == 1 and ok[0]["ms"] == pytest.approx(2 * ONE_WAY_S * 1000, abs=1e-3)


@virtual_time
async def test_a_retried_call_on_a_connection_that_just_died_waits_for_the_next_one() -> None:
    # The send fails at once (the server closed) while the reader has not yet seen the close:
    # the retry must yield to it instead of spinning on the dead connection forever.
    node = FakeNode(scripts=[Script(ignore_requests=True)])
    c = client(node, backoff=BackoffPolicy(base_s=0.5, cap_s=0.5))
    async with c:
        await wait_until(lambda: bool(node.conns), 5, what="the first connection")
        [first] = list(node.conns)
        first.closed = Closed()  # dead for send(), its Closed not yet delivered to the reader
        call = asyncio.create_task(c.call("eth_chainId", timeout_s=10, retry=True))
        await asyncio.sleep(0.05)
        first.inbox.put_nowait(first.closed)  # the reader learns of it now
        assert await asyncio.wait_for(call, 5) == "0x1"
    assert sum(1 for r in c.history.of("request") if not r["ok"]) <= 20


@virtual_time
async def test_a_drop_before_the_first_notification_loses_nothing() -> None:
    # subscribed at head 5, dropped before block 6 is made, back after blocks 6..8: the client
    # still delivers from the head it subscribed at
    node = FakeNode(block_time_s=0.2, height=5,
                    scripts=[Script(drop_after_s=0.1)])
    c = client(node, backoff=BackoffPolicy(base_s=0.6, cap_s=0.6))
    seen: list[int] = []
    async with c:
        c.follow_heads()
        task = asyncio.create_task(consume(c, seen))
        await node.run(6)
        await wait_until(lambda: c.delivered == 11)
    await task
    assert seen == list(range(5, 12))
    assert c.history.of("close")[0]["conn"] == 1
    assert not [e for e in c.history.of("notify") if e["conn"] == 1]
