"""Chain-read methods in-process: a real in-memory chain, a fake mempool view."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from inproc import (  # type: ignore[import-not-found]
    AUTHORITY,
    CHAIN_ID,
    InProcess,
    MemoryChain,
    RpcFault,
)

from node.chain.mempool import Mempool
from node.chain.producer import BlockProducer
from node.core import keys
from node.core.hexutil import data
from node.core.tx import Signer, Transaction
from node.scheduler.serial import Serial
from node.server.methods.chain_reads import CLIENT_VERSION, ChainReadMethods
from node.state.chain_store import NS_DIGEST, NS_RECEIPT_POS, ChainStore
from node.state.kv import MemoryKV
from node.vm.reference import ReferenceExecutor

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


class CountingKV(MemoryKV):
    """MemoryKV counting the keys read (``get`` and every key of ``get_many``)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: bytes) -> bytes | None:
        self.reads += 1
        return super().get(key)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        self.reads += len(keys)
        return super().get_many(keys)


def counted_chain(*sizes: int) -> tuple[MemoryChain, CountingKV]:
    """A chain whose blocks 1.. hold ``sizes`` mints each (every mint emits an event)."""
    kv = CountingKV()
    store = ChainStore(kv)
    producer = BlockProducer(store, Serial(ReferenceExecutor(AUTHORITY.address)), chain_id=CHAIN_ID)
    producer.genesis({}, 1_000)
    c = MemoryChain(store, Mempool(store, chain_id=CHAIN_ID, max_txs=10_000), producer, {})
    for b, n in enumerate(sizes):
        c.block(*(c.mint(Signer.from_seed(b"r%d-%d" % (b, i)).address, 1 + i) for i in range(n)),
                now_ms=2_000 + b)
    return c, kv


async def reads_of(kv: CountingKV, rpc: InProcess, method: str, *args: object) -> tuple[int, Any]:
    before = kv.reads
    out = await rpc.call(method, *args)
    return kv.reads - before, out


async def test_a_receipt_costs_constant_reads_and_a_block_linear() -> None:
    sizes = (10, 200)
    chain, kv = counted_chain(*sizes)
    rpc = reads(chain)
    one, whole = {}, {}
    for number, n in enumerate(sizes, start=1):
        last = chain.store.block_tx_hashes(number)[-1]
        one[n], rc = await reads_of(kv, rpc, "eth_getTransactionReceipt", data(last))
        assert rc["transactionIndex"] == hex(n - 1)
        whole[n], receipts = await reads_of(kv, rpc, "eth_getBlockReceipts", hex(number))
        assert len(receipts) == n and receipts[-1] == rc
        dub, d = await reads_of(kv, rpc, "dubhe_getBlockReceipts", hex(number))
        assert len(d["receipts"]) == n
        assert dub <= 2 * n + 6, (n, dub)
    print(f"store reads: one receipt {one}, a block's receipts {whole}")
    # the last receipt of a 200-transaction block costs what the last of a 10-transaction one
    # does (before the positions were stored it read every earlier receipt of its block)
    assert one[10] == one[200] <= 5
    assert all(whole[n] <= 2 * n + 3 for n in sizes), whole


async def test_block_receipts_in_the_execution_apis_format() -> None:
    chain, _ = counted_chain(5)
    rpc = reads(chain)
    block = await rpc.call("eth_getBlockByNumber", "0x1", False)
    receipts = await rpc.call("eth_getBlockReceipts", "0x1")
    singles = [await rpc.call("eth_getTransactionReceipt", h) for h in block["transactions"]]
    assert receipts == singles
    cumulative = 0
    log_index = 0
    for i, r in enumerate(receipts):
        cumulative += int(r["gasUsed"], 16)
        assert r["transactionIndex"] == hex(i) and r["blockHash"] == block["hash"]
        assert int(r["cumulativeGasUsed"], 16) == cumulative
        for lg in r["logs"]:
            assert lg["logIndex"] == hex(log_index)
            log_index += 1
    assert log_index == 5  # one event per mint, numbered across the block
    # the same block by every form of BlockNumberOrTagOrHash (and EIP-1898 objects)
    for ref in ("latest", block["hash"], {"blockHash": block["hash"]},
                {"blockHash": block["hash"], "requireCanonical": True}, {"blockNumber": "0x1"}):
        assert await rpc.call("eth_getBlockReceipts", ref) == receipts
    assert await rpc.call("eth_getBlockReceipts", "earliest") == []
    assert await rpc.call("eth_getBlockReceipts", "0x9") is None
    assert await rpc.call("eth_getBlockReceipts", "0x" + "ee" * 32) is None
    for bad in ("newest", "0x" + "ee" * 31, {"blockHash": "0x12"}, {"number": "0x1"}, 5):
        with pytest.raises(RpcFault) as e:
            await rpc.call("eth_getBlockReceipts", bad)
        assert e.value.code == -32602 and "(block)" in e.value.message
    d = await rpc.call("dubhe_getBlockReceipts", "0x1")
    assert d["blockNumber"] == "0x1" and d["blockHash"] == block["hash"]
    assert d["blockStats"] == block["dubheStats"] and d["blockStats"]["txs"] == 5
    assert d["executionDigest"] == block["executionDigest"]
    assert d["receipts"] == [await rpc.call("dubhe_getReceipt", h) for h in block["transactions"]]
    assert await rpc.call("dubhe_getBlockReceipts", "0x9") is None


async def test_blocks_committed_before_positions_and_digests_were_stored() -> None:
    chain, kv = counted_chain(4)
    rpc = reads(chain)
    block = await rpc.call("eth_getBlockByNumber", "0x1", False)
    receipts = await rpc.call("eth_getBlockReceipts", "0x1")
    singles = [await rpc.call("eth_getTransactionReceipt", h) for h in block["transactions"]]
    # an older node wrote neither the positions (G) nor the digest (E): drop them
    kv.write({k: None for k, _ in [*kv.iter_prefix(NS_RECEIPT_POS), *kv.iter_prefix(NS_DIGEST)]})
    again = [await rpc.call("eth_getTransactionReceipt", h) for h in block["transactions"]]
    assert again == singles
    assert await rpc.call("eth_getBlockReceipts", "0x1") == receipts
    assert (await rpc.call("eth_getBlockByNumber", "0x1", False)) == block
