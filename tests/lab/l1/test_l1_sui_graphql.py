"""The mock's Sui GraphQL surface (``POST /graphql``) over loopback: paging both ways with opaque
cursors, event filters, checkpoint ranges, BCS summaries, errors that name the problem, faults."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from lab.l1.harness import admin, mock_l1
from lab.l1.server import MockL1
from lab.l1.wire import b58encode

pytestmark = pytest.mark.timeout(60)
REG = "0x" + "00" * 31 + "db::registry"


async def gql(l1: MockL1, query: str, variables: dict[str, Any] | None = None,
              ep: int = 0) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
    async with aiohttp.ClientSession() as s, s.post(
            l1.endpoints[ep].graphql_url, json={"query": query, "variables": variables or {}}
    ) as r:
        body = await r.json(content_type=None) if r.status == 200 else {"text": await r.text()}
        return r.status, body, dict(r.headers)


@pytest.fixture
async def sui() -> AsyncIterator[MockL1]:
    """Checkpoints 1..3 publish a package, upgrade it and publish another; then 2 empty ones."""
    async with mock_l1("sui", seed=9) as l1:
        ep = l1.endpoints[0]
        a = await admin(ep.admin_url, {"cmd": "deploy", "modules": {"m": "0x7f454c4601"}})
        await admin(ep.admin_url, {"cmd": "upgrade", "address": a["address"],
                                   "modules": {"m": "0x7f454c4602"}})
        await admin(ep.admin_url, {"cmd": "deploy", "modules": {"n": "0x7f454c4603"}})
        l1.produce(2)
        yield l1


EVENTS = """query ($first: Int, $after: String, $last: Int, $before: String, $f: EventFilter) {
  events(first: $first, after: $after, last: $last, before: $before, filter: $f) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    nodes { sequenceNumber contents { type { repr } json } transaction { digest } }
  } }"""


def kinds(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(n["contents"]["type"]["repr"].rsplit("::", 1)[1], n["contents"]["json"]["version"])
            for n in data["data"]["events"]["nodes"]]


async def test_events_page_forward_and_backward_with_cursors(sui: MockL1) -> None:
    seen: list[tuple[str, str]] = []
    after = None
    for _ in range(5):
        _, page, headers = await gql(sui, EVENTS, {"first": 1, "after": after,
                                                   "f": {"module": REG}})
        assert headers["x-sui-rpc-version"] == "1.60.0"
        seen += kinds(page)
        info = page["data"]["events"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert seen == [("CodePublished", "1"), ("CodeUpgraded", "2"), ("CodePublished", "1")]
    _, back, _ = await gql(sui, EVENTS, {"last": 2, "f": {"module": REG}})
    assert kinds(back) == seen[1:]
    assert back["data"]["events"]["pageInfo"]["hasPreviousPage"] is True
    before = back["data"]["events"]["pageInfo"]["startCursor"]
    _, older, _ = await gql(sui, EVENTS, {"last": 5, "before": before, "f": {"module": REG}})
    assert kinds(older) == seen[:1]


@pytest.mark.parametrize(("flt", "expect"), [
    ({"type": REG + "::CodeUpgraded"}, [("CodeUpgraded", "2")]),
    ({"type": "0xdb"}, [("CodePublished", "1"), ("CodeUpgraded", "2"), ("CodePublished", "1")]),
    ({"atCheckpoint": 2}, [("CodeUpgraded", "2")]),
    ({"afterCheckpoint": 1, "beforeCheckpoint": 3}, [("CodeUpgraded", "2")]),
    ({"sender": "0x" + "11" * 32}, []),
])
async def test_event_filters(sui: MockL1, flt: dict[str, Any], expect: list[Any]) -> None:
    _, page, _ = await gql(sui, EVENTS, {"f": flt})
    assert kinds(page) == expect


async def test_checkpoints_range_and_bcs_summary(sui: MockL1) -> None:
    q = """{ checkpoints(first: 10, filter: {afterCheckpoint: 1, beforeCheckpoint: 4}) {
      nodes { sequenceNumber digest previousCheckpointDigest summaryBcs
              transactions { nodes { digest } } } } }"""
    _, page, _ = await gql(sui, q)
    nodes = page["data"]["checkpoints"]["nodes"]
    assert [n["sequenceNumber"] for n in nodes] == [2, 3]
    b2 = sui.chain.blocks[2]
    assert nodes[0]["digest"] == b58encode(b2.hash)
    assert nodes[0]["previousCheckpointDigest"] == b58encode(b2.parent_hash)
    assert nodes[0]["transactions"]["nodes"] == [{"digest": b58encode(b2.txs[0].hash)}]
    summary = base64.b64decode(nodes[0]["summaryBcs"])
    # CheckpointSummary: epoch u64, sequence_number u64, network_total_transactions u64 (LE)
    assert int.from_bytes(summary[8:16], "little") == 2
    assert int.from_bytes(summary[16:24], "little") == 2


async def test_errors_name_the_problem(sui: MockL1) -> None:
    _, bad_field, _ = await gql(sui, "{ checkpoint { nope } }")
    assert bad_field.get("data") is None
    assert "Cannot query field 'nope' on type 'Checkpoint'" in bad_field["errors"][0]["message"]
    _, bad_cursor, _ = await gql(sui, EVENTS, {"after": "not-a-cursor"})
    assert "Invalid cursor" in bad_cursor["errors"][0]["message"]
    _, too_many, _ = await gql(sui, EVENTS, {"first": 500})
    assert "'first' must be between 0 and 50" in too_many["errors"][0]["message"]
    _, missing, _ = await gql(sui, '{ package(address: "0x1234") { address } }')
    assert missing["data"] == {"package": None}


async def test_faults_apply_to_graphql(sui: MockL1) -> None:
    ep = sui.endpoints[0]
    await admin(ep.admin_url, {"cmd": "faults", "count": 1, "http_status": 503,
                               "methods": ["graphql"]})
    status, body, _ = await gql(sui, "{ chainIdentifier }")
    assert status == 503 and "mock fault 503" in body["text"]
    status, ok, _ = await gql(sui, "{ chainIdentifier }")
    assert status == 200 and ok["data"]["chainIdentifier"] == sui.chain.blocks[0].hash[:4].hex()
