"""What real Ethereum clients check in the mock's answers: Keccak-256 where Ethereum uses it,
canonical quantities, empty-trie roots, contract-creation shape, and the everyday methods web3
users call (eth_gasPrice, receipts, block filters...)."""

from __future__ import annotations

import re

from lab.l1.eth_rpc import (
    EMPTY_TRIE_ROOT,
    SECP256K1_N,
    SELECTOR_VERSION,
    TOPIC_CODE_DEPLOYED,
    creation_address,
    keccak256,
)
from lab.l1.harness import admin, mock_l1, rpc
from node.adapters.ethereum import TOPIC_CODE_DEPLOYED as NODE_TOPIC

QUANTITY = re.compile(r"^0x(0|[1-9a-f][0-9a-f]*)$")


def test_keccak_and_its_consequences_match_the_known_vectors() -> None:
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
    assert EMPTY_TRIE_ROOT.hex() == (
        "56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
    )
    assert SELECTOR_VERSION.hex() == "54fd4d50"  # what solc gives version()
    assert "0x" + TOPIC_CODE_DEPLOYED.hex() == NODE_TOPIC  # the node's adapter agrees
    # the CREATE address vector every Ethereum library tests
    sender = bytes.fromhex("6ac7ea33f8831ea9dcc53393aaa88b25a785dbf0")
    assert creation_address(sender, 0).hex() == "cd234a471b72ba2f1ccf0a70fcaba648a5eecd8d"
    assert creation_address(sender, 1).hex() == "343c43a37d37dff08ae8c4a11544c718abb4fcf8"


async def test_blocks_transactions_and_receipts_look_like_a_real_node() -> None:
    async with mock_l1("eth", seed=9) as l1:
        url = l1.endpoints[0].http_url
        adm = l1.endpoints[0].admin_url
        l1.produce(1)
        deploys = [await admin(adm, {"cmd": "deploy", "code": "0x7f454c46" + f"{i:04x}"})
                   for i in range(40)]
        for _ in range(80):
            await admin(adm, {"cmd": "transfer", "to": "0x" + "11" * 20, "amount": 1})
        empty = (await rpc(url, "eth_getBlockByNumber", ["0x1", False]))["result"]
        for root in ("transactionsRoot", "receiptsRoot", "withdrawalsRoot"):
            assert empty[root] == "0x" + EMPTY_TRIE_ROOT.hex(), root
        assert empty["logsBloom"] == "0x" + "00" * 256
        head = int((await rpc(url, "eth_blockNumber"))["result"], 16)
        rs = []
        for n in range(2, head + 1):
            b = (await rpc(url, "eth_getBlockByNumber", [hex(n), True]))["result"]
            assert b["transactionsRoot"] != "0x" + EMPTY_TRIE_ROOT.hex()
            for tx in b["transactions"]:
                for k in ("r", "s", "nonce", "gas", "value", "v"):
                    assert QUANTITY.match(tx[k]), (k, tx[k])
                assert int(tx["s"], 16) <= SECP256K1_N // 2
                rs.append(tx)
        assert len(rs) == 120
        # a deploy is a contract creation at the CREATE address of the deployer's nonce
        first = deploys[0]
        tx = (await rpc(url, "eth_getTransactionByHash", [first["tx"]]))["result"]
        assert tx["to"] is None and tx["input"] == "0x7f454c460000"
        sender = bytes.fromhex(tx["from"][2:])
        assert first["address"] == "0x" + creation_address(sender, int(tx["nonce"], 16)).hex()
        rc = (await rpc(url, "eth_getTransactionReceipt", [first["tx"]]))["result"]
        assert rc["contractAddress"] == first["address"] and rc["status"] == "0x1"
        assert rc["logs"][0]["topics"][0] == "0x" + TOPIC_CODE_DEPLOYED.hex()
        # the bloom has the three Keccak bits of the address and of the topic
        bloom = int(rc["logsBloom"], 16)
        for item in (bytes.fromhex(first["address"][2:]), TOPIC_CODE_DEPLOYED):
            h = keccak256(item)
            for i in (0, 2, 4):
                assert bloom >> (int.from_bytes(h[i : i + 2], "big") & 2047) & 1


async def test_methods_web3_users_call_answer() -> None:
    async with mock_l1("eth", seed=10) as l1:
        url = l1.endpoints[0].http_url
        l1.produce(3)
        calls = {
            "eth_gasPrice": [], "eth_maxPriorityFeePerGas": [], "eth_syncing": [],
            "net_listening": [], "eth_accounts": [],
            "eth_feeHistory": ["0x2", "latest", [50]],
            "eth_estimateGas": [{"to": "0x" + "11" * 20, "value": "0x1"}],
            "eth_getBlockTransactionCountByNumber": ["latest"],
            "eth_getTransactionByHash": ["0x" + "00" * 32],
            "eth_getTransactionReceipt": ["0x" + "00" * 32],
        }
        for method, params in calls.items():
            resp = await rpc(url, method, params)
            assert "error" not in resp, (method, resp)
        assert (await rpc(url, "eth_syncing"))["result"] is False
        fee = (await rpc(url, "eth_feeHistory", ["0x2", "latest", [50]]))["result"]
        assert len(fee["baseFeePerGas"]) == 3 and len(fee["reward"]) == 2
        fid = (await rpc(url, "eth_newBlockFilter"))["result"]
        assert (await rpc(url, "eth_getFilterChanges", [fid]))["result"] == []
        blocks = l1.produce(2)
        got = (await rpc(url, "eth_getFilterChanges", [fid]))["result"]
        assert got == ["0x" + b.hash.hex() for b in blocks]
        assert (await rpc(url, "eth_uninstallFilter", [fid]))["result"] is True
        assert (await rpc(url, "eth_getFilterChanges", [fid]))["error"]["code"] == -32000
