"""Ethereum JSON-RPC result objects (node.rpc.eth), field by field: the standard fields in the
standard formats (what web3.py and ethers parse), then the node's own extra fields."""

from __future__ import annotations

from node.core import keys
from node.core.block import BlockHeader
from node.core.execution import Event, Receipt, TxStatus
from node.core.tx import Signer, sign_tx
from node.rpc import eth

H = BlockHeader(number=26, parent_hash=b"\x01" * 32, timestamp_ms=1_700_000_123_456,
                tx_root=b"\x02" * 32, receipts_root=b"\x03" * 32, state_root=b"\x04" * 32,
                tx_count=2, gas_used=4660)
SIGNER = Signer.from_seed(b"eth-objects")
TX = sign_tx(SIGNER, chain_id=7, nonce=16, to=keys.COUNTER_DEMO, method="increment",
             args=b"\xab\xcd", gas_limit=300)
EV = (Event(b"\x05" * 20, (b"\x06" * 32, b"\x07" * 32), b"\x08"), Event(b"\x09" * 20, (), b""))


def hx(b: bytes) -> str:
    return "0x" + b.hex()


HEADER = {
    "number": "0x1a", "hash": hx(H.hash), "parentHash": "0x" + "01" * 32,
    "nonce": "0x0000000000000000",
    "sha3Uncles": "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347",
    "logsBloom": "0x" + "00" * 256, "transactionsRoot": "0x" + "02" * 32,
    "stateRoot": "0x" + "04" * 32, "receiptsRoot": "0x" + "03" * 32, "miner": "0x" + "00" * 20,
    "difficulty": "0x0", "extraData": "0x", "gasLimit": "0x3b9aca00", "gasUsed": "0x1234",
    "timestamp": "0x6553f17b", "mixHash": "0x" + "00" * 32, "baseFeePerGas": "0x0",
    "timestampMs": "0x18bcfe74a40",
}


def test_header_fields() -> None:
    assert eth.header_obj(H) == HEADER
    assert int(HEADER["timestamp"], 16) == 1_700_000_123  # whole seconds of the ms timestamp


def tx_fields(h: BlockHeader | None, index: int | None) -> dict[str, object]:
    return {
        "hash": hx(TX.hash), "nonce": "0x10",
        "blockHash": hx(h.hash) if h else None, "blockNumber": "0x1a" if h else None,
        "transactionIndex": None if index is None else hex(index),
        "from": hx(SIGNER.address), "to": hx(keys.COUNTER_DEMO), "value": "0x0",
        "gas": "0x12c", "gasPrice": "0x0", "input": "0xabcd", "type": "0x0", "chainId": "0x7",
        "v": "0x0", "r": hx(TX.signature[:32]), "s": hx(TX.signature[32:]),
        "method": "increment",
    }


def test_transaction_fields_in_a_block_and_pending() -> None:
    assert eth.tx_obj(TX, H, 1) == tx_fields(H, 1)
    assert eth.tx_obj(TX, H, 0) == tx_fields(H, 0)  # index 0 is an index, not "pending"
    assert eth.tx_obj(TX, None, None) == tx_fields(None, None)


def test_block_with_hashes_or_full_transactions() -> None:
    size = len(H.encode()) + len(TX.raw)
    full = eth.block_obj(H, [TX], True)
    assert full == {**HEADER, "totalDifficulty": "0x0", "size": hex(size),
                    "transactions": [tx_fields(H, 0)], "uncles": []}
    hashes = eth.block_obj(H, [TX.hash, b"\x0a" * 32], False)
    assert hashes["transactions"] == [hx(TX.hash), "0x" + "0a" * 32]
    assert hashes["size"] == hex(len(H.encode()))  # hashes alone: the header's size
    assert eth.block_obj(H, [TX], False)["transactions"] == [hx(TX.hash)]
    assert eth.block_obj(H, [], True)["transactions"] == []


def receipt(status: TxStatus) -> Receipt:
    return Receipt(TX.hash, 26, 3, status, 250, b"\x0b\x0c", EV, "why" if status != 1 else "")


def test_receipt_fields_and_log_indices() -> None:
    rc = receipt(TxStatus.SUCCESS)
    got = eth.receipt_obj(rc, TX, H, cumulative_gas=900, first_log_index=5)
    logs = [{"address": "0x" + "05" * 20, "topics": ["0x" + "06" * 32, "0x" + "07" * 32],
             "data": "0x08", "blockNumber": "0x1a", "blockHash": hx(H.hash),
             "transactionHash": hx(TX.hash), "transactionIndex": "0x3", "logIndex": "0x5",
             "removed": False},
            {"address": "0x" + "09" * 20, "topics": [], "data": "0x", "blockNumber": "0x1a",
             "blockHash": hx(H.hash), "transactionHash": hx(TX.hash), "transactionIndex": "0x3",
             "logIndex": "0x6", "removed": False}]
    assert got == {
        "transactionHash": hx(TX.hash), "transactionIndex": "0x3", "blockHash": hx(H.hash),
        "blockNumber": "0x1a", "from": hx(SIGNER.address), "to": hx(keys.COUNTER_DEMO),
        "cumulativeGasUsed": "0x384", "gasUsed": "0xfa", "effectiveGasPrice": "0x0",
        "contractAddress": None, "logs": logs, "logsBloom": "0x" + "00" * 256,
        "status": "0x1", "type": "0x0", "dubheStatus": "success", "revertReason": "",
        "returnData": "0x0b0c",
    }
    assert eth.log_obj(EV[1], H, TX.hash, 3, 6) == logs[1]


def test_a_failed_receipt_has_status_0_and_says_why() -> None:
    for status in (TxStatus.REVERT, TxStatus.OUT_OF_GAS, TxStatus.INVALID):
        got = eth.receipt_obj(receipt(status), TX, H, 0, 0)
        assert (got["status"], got["dubheStatus"], got["revertReason"]) == (
            "0x0", status.name.lower(), "why")


def test_the_nodes_own_receipt() -> None:
    assert eth.dubhe_receipt_obj(receipt(TxStatus.REVERT)) == {
        "transactionHash": hx(TX.hash), "blockNumber": "0x1a", "index": 3, "status": "revert",
        "gasUsed": 250, "returnData": "0x0b0c",
        "events": [{"address": "0x" + "05" * 20, "topics": ["0x" + "06" * 32, "0x" + "07" * 32],
                    "data": "0x08"}, {"address": "0x" + "09" * 20, "topics": [], "data": "0x"}],
        "reason": "why",
    }
