"""Chain-read methods in-process: a real in-memory chain, a fake mempool view."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from inproc import CHAIN_ID, InProcess, MemoryChain, RpcFault  # type: ignore[import-not-found]

from node.core import keys
from node.core.hexutil import data
from node.core.tx import Signer, Transaction
from node.server.methods.chain_reads import CLIENT_VERSION, ChainReadMethods

ALICE, BOB = Signer.from_seed(b"alice"), Signer.from_seed(b"bob")


@dataclass
class FakePending:
    txs: dict[bytes, Transaction] = field(default_factory=dict)
    next: dict[bytes, int] = field(default_factory=dict)
    committed: dict[bytes, int] = field(default_factory=dict)

    def get(self, tx_hash: bytes) -> Transaction | None:
        return self.txs.get(tx_hash)

    def next_nonce(self, sender: bytes) -> int:
        return self.next.get(sender, 0)

    def committed_nonce(self, sender: bytes) -> int:
        return self.committed.get(sender, 0)


@pytest.fixture
def chain() -> MemoryChain:
    c = MemoryChain.new()
    c.block(c.mint(ALICE.address, 100))
    c.block(c.transfer(ALICE, BOB.address, 30), c.transfer(ALICE, BOB.address, 5), now_ms=3_000)
    return c


def reads(chain: MemoryChain, pending: FakePending | None = None) -> InProcess:
    return InProcess(ChainReadMethods(chain.store, pending or FakePending(), chain_id=CHAIN_ID))


async def test_constants(chain: MemoryChain) -> None:
    rpc = reads(chain)
    assert await rpc.call("web3_clientVersion") == CLIENT_VERSION
    assert CLIENT_VERSION.startswith("dubhe-node/v")
    assert await rpc.call("net_version") == str(CHAIN_ID)
    assert await rpc.call("eth_chainId") == hex(CHAIN_ID)
    assert await rpc.call("eth_gasPrice") == "0x0"
    assert await rpc.call("eth_maxPriorityFeePerGas") == "0x0"
    assert await rpc.call("eth_syncing") is False
    with pytest.raises(RpcFault) as e:
        await rpc.call("eth_chainId", 1)
    assert e.value.code == -32602 and "too many parameters" in e.value.message


async def test_blocks_by_number_tag_and_hash(chain: MemoryChain) -> None:
    rpc = reads(chain)
    assert await rpc.call("eth_blockNumber") == "0x2"
    latest = await rpc.call("eth_getBlockByNumber", "latest", False)
    assert latest == await rpc.call("eth_getBlockByNumber", "0x2", False)
    assert latest == await rpc.call("eth_getBlockByHash", latest["hash"], False)
    assert latest["number"] == "0x2" and len(latest["transactions"]) == 2
    assert all(isinstance(t, str) and len(t) == 66 for t in latest["transactions"])
    assert latest["dubheStats"]["txs"] == 2 and latest["dubheStats"]["strategy"] == "Serial"
    full = await rpc.call("eth_getBlockByNumber", "latest", True)
    assert [t["hash"] for t in full["transactions"]] == latest["transactions"]
    assert full["transactions"][0]["from"] == data(ALICE.address)
    genesis = await rpc.call("eth_getBlockByNumber", "earliest", False)
    assert genesis["number"] == "0x0" and genesis["parentHash"] == "0x" + "00" * 32
    assert await rpc.call("eth_getBlockByNumber", "0x9", False) is None
    assert await rpc.call("eth_getBlockByHash", "0x" + "ab" * 32, False) is None
    for bad, name in ((["newest"], "block"), (["latest", "yes"], "fullTransactions")):
        with pytest.raises(RpcFault) as e:
            await rpc.call("eth_getBlockByNumber", *bad)
        assert e.value.code == -32602 and f"({name})" in e.value.message


async def test_balances_and_nonces_only_at_the_latest_state(chain: MemoryChain) -> None:
    pending = FakePending(next={ALICE.address: 7}, committed={ALICE.address: 2})
    rpc = reads(chain, pending)
    assert await rpc.call("eth_getBalance", data(BOB.address)) == hex(35)
    assert await rpc.call("eth_getBalance", data(ALICE.address), "latest") == hex(65)
    assert await rpc.call("eth_getBalance", data(ALICE.address), "0x2") == hex(
        65
    )  # the head by number
    assert await rpc.call("eth_getBalance", "0x" + "77" * 20, "finalized") == "0x0"
    with pytest.raises(RpcFault) as e:
        await rpc.call("eth_getBalance", data(ALICE.address), "0x1")
    assert e.value.code == -32000 and "state at block 1 is not available" in e.value.message
    with pytest.raises(RpcFault) as e:
        await rpc.call("eth_getBalance", "0x1234", "latest")
    assert e.value.code == -32602 and "(address)" in e.value.message
    assert await rpc.call("eth_getTransactionCount", data(ALICE.address), "pending") == "0x7"
    assert await rpc.call("eth_getTransactionCount", data(ALICE.address)) == "0x2"
    with pytest.raises(RpcFault) as e:
        await rpc.call("eth_getTransactionCount", data(ALICE.address), "earliest")
    assert e.value.code == -32000


async def test_receipts_count_gas_and_logs_of_earlier_transactions(chain: MemoryChain) -> None:
    rpc = reads(chain)
    block = await rpc.call("eth_getBlockByNumber", "latest", False)
    first, second = block["transactions"]
    r1 = await rpc.call("eth_getTransactionReceipt", first)
    r2 = await rpc.call("eth_getTransactionReceipt", second)
    assert r1["status"] == r2["status"] == "0x1"
    assert r2["transactionIndex"] == "0x1" and r2["blockHash"] == block["hash"]
    assert int(r2["cumulativeGasUsed"], 16) == int(r1["gasUsed"], 16) + int(r2["gasUsed"], 16)
    assert r1["logs"][0]["logIndex"] == "0x0" and r2["logs"][0]["logIndex"] == hex(len(r1["logs"]))
    assert await rpc.call("eth_getTransactionReceipt", "0x" + "11" * 32) is None
    drc = await rpc.call("dubhe_getReceipt", second)
    assert drc["status"] == "success" and drc["blockNumber"] == "0x2"
    assert "blockStats" not in drc  # lean receipts: the stats are the block's
    with_stats = await rpc.call("dubhe_getReceipt", second, {"blockStats": True})
    assert with_stats == {**drc, "blockStats": block["dubheStats"]}
    assert await rpc.call("dubhe_getReceipt", second, {}) == drc
    with pytest.raises(RpcFault) as e:
        await rpc.call("dubhe_getReceipt", second, {"stats": True})
    assert e.value.code == -32602 and "(options)" in e.value.message
    assert await rpc.call("dubhe_getReceipt", "0x" + "11" * 32) is None
    with pytest.raises(RpcFault) as e:
        await rpc.call("eth_getTransactionReceipt")
    assert e.value.code == -32602 and "missing parameter 0 (transactionHash)" in e.value.message


async def test_transactions_pending_included_or_unknown(chain: MemoryChain) -> None:
    waiting = chain.transfer(BOB, ALICE.address, 1)
    rpc = reads(chain, FakePending(txs={waiting.hash: waiting}))
    p = await rpc.call("dubhe_getTransaction", data(waiting.hash))
    assert p["status"] == "pending" and p["blockNumber"] is None and p["from"] == data(BOB.address)
    included = (await rpc.call("eth_getBlockByNumber", "0x1", False))["transactions"][0]
    t = await rpc.call("dubhe_getTransaction", included)
    assert (
        t["status"] == "included" and t["blockNumber"] == "0x1" and t["transactionIndex"] == "0x0"
    )
    assert await rpc.call("dubhe_getTransaction", "0x" + "22" * 32) is None


async def test_contract_storage(chain: MemoryChain) -> None:
    rpc = reads(chain)
    token = data(keys.NATIVE_TOKEN)
    assert await rpc.call("dubhe_getState", token, data(b"b" + BOB.address)) == data(
        (35).to_bytes(8, "big")
    )
    assert await rpc.call("dubhe_getState", token, data(b"b" + bytes(20))) is None
    with pytest.raises(RpcFault) as e:
        await rpc.call("dubhe_getState", token, "0x")
    assert e.value.code == -32602 and "(key): must not be empty" in e.value.message
