"""Conformance: replay execution-apis-style ``.io`` fixtures against the mock chains, as hive's
rpc-compat simulator does.

Each ``fixtures/<chain>/<method>/<name>.io`` holds ``// comment`` lines, then ``>> request`` /
``<< response`` line pairs. Requests are sent as HTTP POSTs; responses are compared as JSON after
redacting error ``message`` fields (only code and structure must match). A ``// speconly`` header
means only the shape is checked (result vs error, and the result's JSON type). Before replaying,
the mock is built from ``fixtures/<chain>/chain.json`` (seed + admin commands), so every fixture
sees the same chain.

``L1_REGEN_FIXTURES=1 pytest tests/lab/l1/test_l1_conformance.py`` rewrites the generated fixtures
from :data:`CASES` (review the diff: the point of the files is to pin the wire format).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from lab.l1.harness import admin, mock_l1, rpc
from lab.l1.server import MockL1

FIXTURES = Path(__file__).parent / "fixtures"
ETH_CONTRACT = "0x00000000000000000000000000000000000d0b01"
SUI_PACKAGE = "0x" + "00" * 30 + "0d01"


def load(path: Path) -> tuple[list[str], list[tuple[Any, Any]]]:
    comments: list[str] = []
    pairs: list[tuple[Any, Any]] = []
    req: Any = None
    for line in path.read_text().splitlines():
        if line.startswith("//"):
            comments.append(line[2:].strip())
        elif line.startswith(">> "):
            req = orjson.loads(line[3:])
        elif line.startswith("<< "):
            pairs.append((req, orjson.loads(line[3:])))
        elif line.strip():
            raise ValueError(f"{path}: unexpected line {line!r}")
    return comments, pairs


def redact(obj: Any) -> Any:
    """Drop error messages (hive rpc-compat does the same: only code and structure must match)."""
    if isinstance(obj, dict):
        return {
            k: ("<redacted>" if k == "message" and "code" in obj else redact(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def shape(resp: Any) -> tuple[str, str]:
    if "error" in resp:
        return ("error", "")
    return ("result", type(resp["result"]).__name__)


async def build(chain: str) -> AsyncIterator[MockL1]:
    script = orjson.loads((FIXTURES / chain / "chain.json").read_text())
    chain_id = script.get("chain_id", 1337)
    async with mock_l1(chain, seed=script["seed"], chain_id=chain_id) as l1:  # type: ignore[arg-type]
        url = l1.endpoints[0].admin_url
        for cmd in script["commands"]:
            await admin(url, cmd)
        yield l1


def fixture_files(chain: str) -> list[Path]:
    return sorted((FIXTURES / chain).glob("*/*.io"))


@pytest.mark.parametrize("chain", ["eth", "sui"])
async def test_fixtures_replay(chain: str) -> None:
    files = fixture_files(chain)
    assert len(files) >= 15, "fixtures missing"
    failures: list[str] = []
    async for l1 in build(chain):
        url = l1.endpoints[0].http_url
        for path in files:
            comments, pairs = load(path)
            speconly = any(c.startswith("speconly") for c in comments)
            for req, want in pairs:
                got = await rpc_raw(url, req)
                ok = shape(got) == shape(want) if speconly else redact(got) == redact(want)
                if not ok:
                    failures.append(
                        f"{path.relative_to(FIXTURES)}:\n  sent {orjson.dumps(req).decode()}\n  "
                        f"want {orjson.dumps(want).decode()[:400]}\n  "
                        f"got  {orjson.dumps(got).decode()[:400]}"
                    )
    assert not failures, "\n".join(failures)


async def rpc_raw(url: str, req: Any) -> Any:
    async with (
        aiohttp.ClientSession() as s,
        s.post(url, data=orjson.dumps(req), headers={"Content-Type": "application/json"}) as r,
    ):
        return orjson.loads(await r.read())


def test_redaction_keeps_codes_and_structure() -> None:
    a = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "x"}}
    b = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "y"}}
    c = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "x"}}
    assert redact(a) == redact(b) != redact(c)
    assert redact({"result": {"message": "kept"}}) == {"result": {"message": "kept"}}


# ---------------------------------------------------------------------- fixture generation

ETH_CASES: list[tuple[str, str, str, list[Any]]] = [
    # (method dir, name, comment, params) ; method dir doubles as the method unless it has '/'
    ("eth_chainId", "get-chain-id", "returns the configured chain id", []),
    ("net_version", "get-net-version", "net_version is the chain id in decimal", []),
    ("eth_blockNumber", "simple-test", "head after the chain script", []),
    ("eth_getBlockByNumber", "get-genesis", "block 0 with every header field", ["0x0", False]),
    (
        "eth_getBlockByNumber",
        "get-block-with-txs-hydrated",
        "block 3 holds the deploy transaction",
        ["0x3", True],
    ),
    ("eth_getBlockByNumber", "get-latest", "latest block", ["latest", False]),
    (
        "eth_getBlockByNumber",
        "get-finalized",
        "finalized block (finality depth 64: genesis)",
        ["finalized", False],
    ),
    ("eth_getBlockByNumber", "get-block-notfound", "beyond the head: null", ["0x3e8", False]),
    (
        "eth_getBlockByNumber",
        "get-block-invalid-number",
        "leading zeros are invalid",
        ["0x01", False],
    ),
    (
        "eth_getBlockByNumber",
        "get-block-missing-hydrated",
        "the hydrated flag is required",
        ["0x1"],
    ),
    (
        "eth_getBlockByHash",
        "get-block-by-empty-hash",
        "an unknown hash: null",
        ["0x" + "00" * 32, False],
    ),
    ("eth_getBlockByHash", "get-block-bad-hash", "a short hash is invalid", ["0x1234", False]),
    (
        "eth_getBalance",
        "get-balance-after-transfer",
        "received 1000 wei at block 5",
        ["0x" + "11" * 20, "latest"],
    ),
    (
        "eth_getBalance",
        "get-balance-before-transfer",
        "nothing yet at block 4",
        ["0x" + "11" * 20, "0x4"],
    ),
    (
        "eth_getBalance",
        "get-balance-unknown",
        "an account that never received anything",
        ["0x" + "12" * 20, "latest"],
    ),
    (
        "eth_getBalance",
        "get-balance-blockhash-missing",
        "unknown block number",
        ["0x" + "11" * 20, "0x3e8"],
    ),
    (
        "eth_getCode",
        "get-code",
        "the contract's RISC-V ELF after its upgrade",
        [ETH_CONTRACT, "latest"],
    ),
    (
        "eth_getCode",
        "get-code-before-upgrade",
        "the first version at block 3",
        [ETH_CONTRACT, "0x3"],
    ),
    ("eth_getCode", "get-code-before-deploy", "nothing before the deploy", [ETH_CONTRACT, "0x2"]),
    (
        "eth_getCode",
        "get-code-unknown-account",
        "no code at an unknown address",
        ["0x" + "22" * 20, "latest"],
    ),
    (
        "eth_getStorageAt",
        "get-storage-version",
        "slot 0 holds the code version",
        [ETH_CONTRACT, "0x0", "latest"],
    ),
    (
        "eth_getStorageAt",
        "get-storage-invalid-key",
        "slot keys are quantities or 32-byte words",
        [ETH_CONTRACT, "0xzz", "latest"],
    ),
    (
        "eth_getLogs",
        "logs-all",
        "every log of the chain",
        [{"fromBlock": "0x0", "toBlock": "latest"}],
    ),
    (
        "eth_getLogs",
        "logs-by-topic",
        "only upgrades",
        [{"fromBlock": "0x0", "topics": [["UPGRADED"]]}],
    ),
    (
        "eth_getLogs",
        "logs-empty-range",
        "a range without logs",
        [{"fromBlock": "0x5", "toBlock": "0x6"}],
    ),
    (
        "eth_getLogs",
        "logs-hash-and-range",
        "blockHash excludes fromBlock/toBlock",
        [{"blockHash": "0x" + "00" * 32, "fromBlock": "0x0"}],
    ),
    (
        "eth_call",
        "call-version",
        "the Dubhe version() selector",
        [{"to": ETH_CONTRACT, "input": "VERSION"}, "latest"],
    ),
    (
        "eth_call",
        "call-unknown-selector",
        "other calls return empty data",
        [{"to": ETH_CONTRACT, "input": "0x12345678"}, "latest"],
    ),
    ("eth_getTransactionCount", "get-nonce", "the deployer's nonce", ["ACCOUNT0", "latest"]),
    ("web3_clientVersion", "client-version", "speconly: any string", []),
    ("eth_unknownMethod", "unknown-method", "methods the mock does not claim", []),
    ("eth_gasPrice", "gas-price", "base fee plus the suggested tip", []),
    ("eth_maxPriorityFeePerGas", "max-priority-fee", "the suggested tip", []),
    ("eth_feeHistory", "fee-history", "the last 3 blocks, two percentiles", ["0x3", "latest",
                                                                            [25, 75]]),
    ("eth_syncing", "not-syncing", "a mock is never syncing", []),
    ("net_listening", "listening", "always listening", []),
    ("eth_accounts", "no-accounts", "the mock manages no keys", []),
    ("eth_estimateGas", "estimate-transfer", "a plain transfer", [{"to": "0x" + "11" * 20}]),
    ("eth_getBlockTransactionCountByNumber", "count-deploy-block", "block 3 holds the deploy",
     ["0x3"]),
    ("eth_getTransactionByHash", "deploy-tx", "a deploy is a creation: to null, code as input",
     ["DEPLOY_TX"]),
    ("eth_getTransactionReceipt", "deploy-receipt", "contractAddress and the CodeDeployed log",
     ["DEPLOY_TX"]),
    ("eth_getTransactionReceipt", "unknown-tx", "an unknown hash: null", ["0x" + "00" * 32]),
]

_PUBLISHED = "0x" + "00" * 31 + "db::registry::CodePublished"
_UPGRADED = "0x" + "00" * 31 + "db::registry::CodeUpgraded"
SUI_CASES: list[tuple[str, str, str, list[Any]]] = [
    ("sui_getLatestCheckpointSequenceNumber", "latest", "a decimal string", []),
    ("sui_getCheckpoint", "by-sequence", "checkpoint 3 holds the publish transaction", ["3"]),
    ("sui_getCheckpoint", "genesis", "checkpoint 0 has no previous digest", ["0"]),
    ("sui_getCheckpoint", "not-found", "beyond the head", ["1000"]),
    ("sui_getCheckpoints", "ascending-page", "two checkpoints after cursor 1", ["1", 2, False]),
    ("sui_getCheckpoints", "descending-first", "the newest checkpoint", [None, 1, True]),
    ("suix_getBalance", "unknown-owner", "an address without coins", ["0x" + "11" * 32, None]),
    (
        "suix_getBalance",
        "other-coin",
        "coins the mock does not mint",
        ["0x" + "11" * 32, "0x2::coin::FOO"],
    ),
    (
        "sui_getObject",
        "package-bcs",
        "a package's modules in its BCS moduleMap",
        [SUI_PACKAGE, {"showBcs": True, "showType": True, "showOwner": True}],
    ),
    (
        "sui_getObject",
        "package-content",
        "the disassembled view",
        [SUI_PACKAGE, {"showContent": True}],
    ),
    ("sui_getObject", "not-exists", "an unknown object", ["0x" + "33" * 32, {}]),
    ("sui_getObject", "bad-id", "ids are 0x hex", ["hello", {}]),
    (
        "sui_multiGetObjects",
        "two",
        "a package and a missing object",
        [[SUI_PACKAGE, "0x" + "33" * 32], {"showType": True}],
    ),
    (
        "sui_getNormalizedMoveModulesByPackage",
        "package",
        "RISC-V modules as empty Move shells",
        [SUI_PACKAGE],
    ),
    ("sui_getNormalizedMoveModulesByPackage", "missing", "unknown package", ["0x" + "44" * 32]),
    (
        "suix_queryEvents",
        "registry-events",
        "publish and upgrade events of the Dubhe registry",
        [{"MoveEventModule": {"package": "0xdb", "module": "registry"}}, None, 10, False],
    ),
    (
        "suix_queryEvents",
        "by-type-descending",
        "upgrades only, newest first",
        [{"MoveEventType": "0x" + "00" * 31 + "db::registry::CodeUpgraded"}, None, 10, True],
    ),
    ("suix_queryEvents", "bad-filter", "an unknown filter kind", [{"Nope": 1}, None, 10, False]),
    (
        "suix_queryEvents",
        "any",
        "either event type",
        [{"Any": [{"MoveEventType": _PUBLISHED}, {"MoveEventType": _UPGRADED}]}, None, 10, False],
    ),
    (
        "suix_queryEvents",
        "and-sender",
        "publishes by genesis account 0",
        [{"And": [{"MoveEventType": _PUBLISHED}, {"Sender": "ACCOUNT0"}]}, None, 10, False],
    ),
    (
        "suix_queryEvents",
        "or",
        "publishes or upgrades",
        [{"Or": [{"MoveEventType": _PUBLISHED}, {"MoveEventType": _UPGRADED}]}, None, 10, False],
    ),
    (
        "suix_queryEvents",
        "move-event-field",
        "events whose parsedJson /version is 2",
        [{"MoveEventField": {"path": "/version", "value": "2"}}, None, 10, False],
    ),
    (
        "suix_queryEvents",
        "bad-and",
        "And takes two filters",
        [{"And": [{"MoveEventType": _PUBLISHED}]}, None, 10, False],
    ),
    ("rpc.discover", "document", "the OpenRPC document of exactly the served methods", []),
    ("suix_getReferenceGasPrice", "price", "a decimal string", []),
    ("sui_getProtocolConfig", "latest", "limits SDKs check transactions against", [None]),
    ("suix_getCoins", "genesis-coin", "one gas coin with a u64 balance", ["ACCOUNT0", None, None,
                                                                            None]),
    ("suix_getAllBalances", "genesis", "the SUI balance only", ["ACCOUNT0"]),
    (
        "sui_getObject",
        "coin-every-option",
        "the gas coin: 8-byte BCS balance, no Display object",
        ["COIN0", {"showType": True, "showOwner": True, "showPreviousTransaction": True,
                   "showDisplay": True, "showContent": True, "showBcs": True,
                   "showStorageRebate": True}],
    ),
    (
        "suix_getOwnedObjects",
        "coins",
        "objects of a struct type",
        ["ACCOUNT0", {"filter": {"StructType": "0x2::coin::Coin<0x2::sui::SUI>"},
                      "options": {"showType": True}}, None, None],
    ),
    (
        "sui_getTransactionBlock",
        "publish",
        "the publish transaction, every option",
        ["PUBLISH_TX", {"showInput": True, "showEffects": True, "showEvents": True,
                        "showObjectChanges": True, "showBalanceChanges": True}],
    ),
    ("sui_getTransactionBlock", "unknown", "a digest not on the chain", ["1" * 32, {}]),
    ("sui_getTotalTransactionBlocks", "total", "publish and upgrade", []),
    ("sui_getEvents", "publish", "the publish transaction's event", ["PUBLISH_TX"]),
    ("sui_getNormalizedMoveModule", "counter", "one module", [SUI_PACKAGE, "counter"]),
    ("sui_getNormalizedMoveModule", "missing", "no such module", [SUI_PACKAGE, "nope"]),
    ("suix_getLatestSuiSystemState", "epoch-0", "one validator, epoch 0 for ever", []),
    ("suix_getCommitteeInfo", "epoch-0", "the validator's key and stake", [None]),
    ("sui_unknownMethod", "unknown-method", "methods the mock does not claim", []),
]


def _subst(v: Any, env: dict[str, str]) -> Any:
    if isinstance(v, str):
        return env.get(v, v)
    if isinstance(v, list):
        return [_subst(x, env) for x in v]
    if isinstance(v, dict):
        return {k: _subst(x, env) for k, x in v.items()}
    return v


@pytest.mark.skipif(
    not os.environ.get("L1_REGEN_FIXTURES"), reason="set L1_REGEN_FIXTURES=1 to regenerate"
)
@pytest.mark.parametrize("chain", ["eth", "sui"])
async def test_regenerate_fixtures(chain: str) -> None:
    from lab.l1.eth_rpc import SELECTOR_VERSION, TOPIC_CODE_UPGRADED

    cases = ETH_CASES if chain == "eth" else SUI_CASES
    async for l1 in build(chain):
        env = {
            "UPGRADED": "0x" + TOPIC_CODE_UPGRADED.hex(),
            "VERSION": "0x" + SELECTOR_VERSION.hex(),
            "ACCOUNT0": "0x" + l1.chain.accounts[0].hex(),
            "DEPLOY_TX": "0x" + (l1.chain.blocks[3].txs[0].hash.hex() if chain == "eth" else ""),
        }
        if chain == "sui":
            from lab.l1.sui_rpc import SuiWire
            from lab.l1.wire import b58encode

            assert isinstance(l1.wire, SuiWire)
            env["COIN0"] = "0x" + l1.wire.coin_id(l1.chain.accounts[0]).hex()
            env["PUBLISH_TX"] = b58encode(l1.chain.blocks[3].txs[0].hash)
        for method, name, comment, params in cases:
            req = {"jsonrpc": "2.0", "id": 1, "method": method, "params": _subst(params, env)}
            resp = await rpc(l1.endpoints[0].http_url, method, req["params"])
            d = FIXTURES / chain / method
            d.mkdir(parents=True, exist_ok=True)
            lines = [f"// {comment}"]
            lines += [">> " + orjson.dumps(req).decode(), "<< " + orjson.dumps(resp).decode()]
            (d / f"{name}.io").write_text("\n".join(lines) + "\n")
