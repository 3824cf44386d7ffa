"""Real Sui SDKs, unmodified, against the mock Sui L1: pysui 0.99's JSON-RPC client (discovery at
start-up, coins and balances, objects with every option, modules, checkpoints, transactions,
events under every filter kind, system state, committee) and pysui 1.5's GraphQL client (start-up
introspection and config query, checkpoints, coin and package objects, events paged by cursor).
Each SDK runs in its own venv (scripts/sdk_venvs.py; built on first use from PyPI) as a
subprocess printing what it read."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from sdk_venvs import sdk_python  # type: ignore[import-not-found]

from lab.l1.harness import admin, mock_l1
from lab.l1.server import MockL1
from lab.l1.sui_rpc import SUI_GENESIS_BALANCE
from lab.l1.wire import b58encode

pytestmark = pytest.mark.timeout(600)
PROBES = Path(__file__).resolve().parent / "sdk"


async def _run(python: Path, script: str, *args: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        str(python), str(PROBES / script), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-4000:]
    result: dict[str, Any] = json.loads(out)
    return result


async def _publish_and_upgrade(l1: MockL1) -> tuple[dict[str, Any], dict[str, Any]]:
    """Publish a package with a "dubhe" module on the mock Sui, upgrade it, then seal two more
    checkpoints; returns the deploy's and the upgrade's answers."""
    ep = l1.endpoints[0]
    d = await admin(ep.admin_url, {"cmd": "deploy", "modules": {"dubhe": "0x7f454c4601"}})
    up = await admin(ep.admin_url, {"cmd": "upgrade", "address": d["address"],
                                    "modules": {"dubhe": "0x7f454c4602"}})
    l1.produce(2)
    return d, up


async def test_pysui_099_jsonrpc_client_reads_the_mock() -> None:
    python = await asyncio.to_thread(sdk_python, "pysui-0.99")
    async with mock_l1("sui", seed=3) as l1:
        ep = l1.endpoints[0]
        d, up = await _publish_and_upgrade(l1)
        owner = l1.chain.accounts[0]
        digest = b58encode(bytes.fromhex(d["tx"][2:]))
        got = await _run(python, "pysui_jsonrpc_probe.py", ep.http_url, "0x" + owner.hex(),
                         d["package_id"], digest)
    wire = l1.wire
    coin = "0x" + wire.coin_id(owner).hex()  # type: ignore[attr-defined]
    # discovery: rpc.discover, suix_getReferenceGasPrice, sui_getProtocolConfig
    assert got["rpc_version"] == "1.60.0" and got["gas_price"] == 1000
    assert got["protocol_version"] == "98" and got["max_tx_gas"] == 50_000_000_000
    # u64 coin balances, with BCS and display requested (every GetObject option on)
    assert got["balance"] == SUI_GENESIS_BALANCE < 2**64
    assert got["coins"] == [[coin, SUI_GENESIS_BALANCE]]
    assert got["all_balances"] == [SUI_GENESIS_BALANCE]
    assert got["coin_object"] == {"type": "0x2::coin::Coin<0x2::sui::SUI>",
                                  "balance": SUI_GENESIS_BALANCE, "has_bcs": True,
                                  "display": {"data": None, "error": None}}
    assert got["owned"] == [coin]
    assert got["module"] == "dubhe"
    head = l1.chain.head
    assert got["latest_checkpoint"] == head.number
    assert got["checkpoint_digest"] == b58encode(head.hash)
    assert got["total_txs"] == 2
    assert got["tx"] == {"digest": digest, "status": "success", "sender": "0x" + owner.hex(),
                         "events": 1, "checkpoint": str(d["block"])}
    registry = "0x" + "00" * 31 + "db"
    assert got["tx_events"] == [f"{registry}::registry::CodePublished"]
    both = sorted([["CodePublished", d["address"]], ["CodeUpgraded", up["address"]]])
    ev = got["events"]
    for name in ("module", "any", "or", "field"):
        assert sorted(ev[name]) == both, name
    assert ev["and"] == [["CodePublished", d["address"]]]
    assert got["system"] == {"epoch": "0", "validators": 1, "gas_price": "1000"}
    assert got["committee"] == 1


async def test_pysui_15_graphql_client_reads_the_mock() -> None:
    python = await asyncio.to_thread(sdk_python, "pysui-1.5")
    async with mock_l1("sui", seed=3) as l1:
        ep = l1.endpoints[0]
        d, up = await _publish_and_upgrade(l1)
        owner = l1.chain.accounts[0]
        coin = "0x" + l1.wire.coin_id(owner).hex()  # type: ignore[attr-defined]
        with tempfile.TemporaryDirectory() as cfg_dir:
            got = await _run(python, "pysui_graphql_probe.py", ep.graphql_url, coin,
                             d["package_id"], b58encode(bytes.fromhex(d["tx"][2:])), cfg_dir)
    chain = l1.chain
    assert got["chain_id"] == chain.blocks[0].hash[:4].hex()
    assert got["gas_price"] == 1000 and got["protocol_version"] == 98
    assert got["schema_version"] == "1.60.0"
    assert got["latest"] == {"sequence": chain.head.number, "digest": b58encode(chain.head.hash)}
    assert got["checkpoint1"] == {"sequence": 1, "digest": b58encode(chain.blocks[1].hash)}
    assert got["coin"] == {"id": coin, "type": "0x2::coin::Coin<0x2::sui::SUI>",
                           "balance": SUI_GENESIS_BALANCE, "version": 3}
    assert got["package"] == {"id": d["package_id"], "version": 1}
    assert got["events"] == [
        ["CodePublished", "1", b58encode(bytes.fromhex(d["tx"][2:]))],
        ["CodeUpgraded", "2", b58encode(bytes.fromhex(up["tx"][2:]))],
    ]
