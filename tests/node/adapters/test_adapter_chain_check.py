"""Which chain each endpoint serves is part of its health: an endpoint of another chain shows as
``wrong_chain`` (state and last error), is logged once and not used while another endpoint can
be; the node follows on the right one. Failing endpoints that answer again are logged as
recovered, and a sync error that repeats at every poll is logged once."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

import pytest
from timing import wait_until  # type: ignore[import-not-found]

from lab.l1.harness import mock_l1
from node.adapters import BackoffPolicy, Endpoint, EthereumAdapter
from node.adapters.health import EndpointState, HealthBook

pytestmark = pytest.mark.timeout(60)
FAST = BackoffPolicy(base_s=0.02, cap_s=0.2, max_retry_after_s=1.0)


def _adapter(eps: list[Endpoint], chain_id: int) -> EthereumAdapter:
    return EthereumAdapter(eps, chain_id=chain_id, backoff=FAST, rng_seed=7, poll_interval_s=0.1,
                           request_timeout_s=2.0, ping_interval_s=1.0)


async def test_an_endpoint_of_another_chain_is_marked_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with AsyncExitStack() as stack:
        other = await stack.enter_async_context(mock_l1("eth", seed=1, block_time_ms=50,
                                                        chain_id=1))
        right = await stack.enter_async_context(mock_l1("eth", seed=2, block_time_ms=50))
        eps = [Endpoint(other.endpoints[0].http_url, other.endpoints[0].ws_url),
               Endpoint(right.endpoints[0].http_url, right.endpoints[0].ws_url)]
        with caplog.at_level(logging.INFO, logger="node.adapters"):
            async with _adapter(eps, 1337) as a:
                await wait_until(lambda: a.head is not None and a.head.number >= 5, 20)
                primary, fallback = a.status()["endpoints"]  # type: ignore[misc]
        assert primary["state"] == "wrong_chain"
        assert primary["last_error"] == primary["wrong_chain"] == (
            "serves chain id 1, but adapters.ethereum.chain_id is 1337")
        assert fallback["state"] == "up" and fallback["wrong_chain"] is None
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "serves chain id 1" in errors[0], errors
        assert not any("ChainMismatch" in r.getMessage() for r in caplog.records)


async def test_every_endpoint_wrong_fails_the_sync_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with mock_l1("eth", seed=1, block_time_ms=50) as l1:
        eps = [Endpoint(ep.http_url, ep.ws_url) for ep in l1.endpoints]
        with caplog.at_level(logging.DEBUG, logger="node.adapters"):
            async with _adapter(eps, 1) as a:
                await wait_until(lambda: a.stats["sync_errors"] >= 5, 20)
                assert a.head is None
                assert a.status()["endpoints"][0]["state"] == "wrong_chain"  # type: ignore[index]
    warned = [r for r in caplog.records if r.levelno == logging.WARNING
              and "ChainMismatch" in r.getMessage()]
    assert len(warned) == 1, [r.getMessage() for r in warned]
    assert "every endpoint serves another chain" in warned[0].getMessage()


def test_wrong_chain_is_ordered_last_until_fixed() -> None:
    book = HealthBook([Endpoint("http://a/"), Endpoint("http://b/")])
    a, b = book.entries
    book.wrong_chain(a, "serves chain id 1")
    assert book.order() == [b, a] and book.ready() == [b]
    assert a.state(0.0, 0.5, 5.0) is EndpointState.WRONG_CHAIN
    book.chain_ok(a)
    assert book.order() == [a, b] and a.last_error is None


def test_an_endpoint_answering_again_is_reported_recovered() -> None:
    now = [100.0]
    seen: list[tuple[str, int, float]] = []
    book = HealthBook([Endpoint("http://a/")], clock=lambda: now[0],
                      on_recovered=lambda e, n, s: seen.append((e.endpoint.rpc_url, n, s)))
    e = book.entries[0]
    for _ in range(3):
        book.failure(e, "timeout")
        now[0] += 4.0
    book.success(e, 0.01)
    book.success(e, 0.01)  # already up: nothing more
    assert seen == [("http://a/", 3, 12.0)]
