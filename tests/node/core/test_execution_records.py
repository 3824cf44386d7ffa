"""Execution records (node.core.execution) and the error tree (node.core.errors): a receipt's
canonical encoding field by field, its decode errors naming the field, the statistics derived
from a block's counts, and each error's wire code and message."""

from __future__ import annotations

import re

import pytest

from node.core import errors
from node.core.codec import DecodeError, Writer
from node.core.execution import BlockStats, Event, Receipt, TxOutcome, TxStatus

EV = Event(b"\x05" * 20, (b"\x06" * 32,), b"\x07\x08")


def test_receipt_encoding_field_by_field() -> None:
    rc = Receipt(b"\x01" * 32, 9, 2, TxStatus.REVERT, 300, b"\xaa", (EV,), "no")
    body = (bytes([2]) + (300).to_bytes(8, "big") + (1).to_bytes(4, "big") + b"\xaa"
            + (1).to_bytes(4, "big")  # one event
            + b"\x05" * 20 + (1).to_bytes(4, "big") + (32).to_bytes(4, "big") + b"\x06" * 32
            + (2).to_bytes(4, "big") + b"\x07\x08"
            + (2).to_bytes(4, "big") + b"no")
    assert rc.encode_body() == body
    assert rc.encode() == b"\x01" * 32 + (9).to_bytes(8, "big") + (2).to_bytes(4, "big") + body
    assert Receipt.decode(rc.encode()) == rc


def test_a_receipt_from_an_outcome_keeps_what_the_execution_produced() -> None:
    o = TxOutcome(TxStatus.SUCCESS, 21, b"r", (EV,), {b"k": b"v"}, (b"k",), "")
    assert Receipt.from_outcome(b"\x02" * 32, 4, 1, o) == Receipt(
        b"\x02" * 32, 4, 1, TxStatus.SUCCESS, 21, b"r", (EV,), "")


@pytest.mark.parametrize(("cut", "field"), [
    (31, "tx_hash"), (32 + 7, "block_number"), (32 + 8 + 3, "index"),
    (32 + 8 + 4, "status"), (32 + 8 + 4 + 1 + 3, "gas_used"),
    (32 + 8 + 4 + 1 + 8 + 2, "return_data"), (32 + 8 + 4 + 1 + 8 + 4 + 1 + 1, "events"),
    (32 + 8 + 4 + 1 + 8 + 4 + 1 + 4 + 10, "event.address"),
    (32 + 8 + 4 + 1 + 8 + 4 + 1 + 4 + 20 + 4 + 4 + 5, "event.topics[0]"),
    (32 + 8 + 4 + 1 + 8 + 4 + 1 + 4 + 20 + 4 + 4 + 32 + 4 + 1, "event.data"),
    (32 + 8 + 4 + 1 + 8 + 4 + 1 + 4 + 20 + 4 + 4 + 32 + 4 + 2 + 3, "reason"),
])
def test_a_truncated_receipt_names_the_field(cut: int, field: str) -> None:
    raw = Receipt(b"\x01" * 32, 9, 2, TxStatus.REVERT, 300, b"\xaa", (EV,), "no").encode()
    with pytest.raises(DecodeError, match=rf"^{re.escape(field)}: truncated"):
        Receipt.decode(raw[:cut])


def test_event_limits() -> None:
    five = Writer().raw(b"\x05" * 20).bytes_list([b"\x06" * 32] * 5).bytes_(b"").finish()
    raw = b"\x01" * 32 + bytes(12) + bytes([1]) + bytes(8) + bytes(4) + (1).to_bytes(4, "big")
    with pytest.raises(DecodeError, match=r"^event\.topics: 5 items exceed the maximum 4$"):
        Receipt.decode(raw + five)
    long_topic = Writer().raw(b"\x05" * 20).bytes_list([bytes(33)]).bytes_(b"").finish()
    with pytest.raises(DecodeError, match=r"^event\.topics\[0\]: length 33 exceeds the maximum 32"):
        Receipt.decode(raw + long_topic)


def test_statistics_derived_from_a_blocks_counts() -> None:
    s = BlockStats(strategy="AptosBlockSTM", workers=2, txs=10, exec_seconds=2.0,
                   serial_equivalent_seconds=3.0, executions=13, aborts=2, deferrals=1,
                   gain=1.23456, path="strategy", worker_txs=[1, 6, 6], chunks=2)
    assert s.parallel_efficiency == 0.75  # 3 s of work over 2 s x 2 workers
    assert s.conflict_rate == 0.3 and s.re_executions == 3
    d = s.as_dict()
    assert d == {"strategy": "AptosBlockSTM", "workers": 2, "txs": 10, "execSeconds": 2.0,
                 "parallelEfficiency": 0.75, "conflictRate": 0.3, "reExecutions": 3,
                 "aborts": 2, "deferrals": 1, "dagDepth": 0, "dagWidth": 0,
                 "sequentialFallback": False, "mode": "", "gain": 1.2346, "path": "strategy",
                 "workerTxs": [1, 6, 6], "chunks": 2, "handedBack": 0}
    third = BlockStats(workers=3, txs=3, exec_seconds=1.23456789,
                       serial_equivalent_seconds=1.23456789, executions=3, aborts=1,
                       gain=2 / 3).as_dict()
    assert (third["execSeconds"], third["parallelEfficiency"], third["conflictRate"],
            third["gain"]) == (1.234568, 0.3333, 0.3333, 0.6667)  # rounded: 6, 4, 4, 4 places
    empty = BlockStats(executions=4)
    assert (empty.parallel_efficiency, empty.conflict_rate, empty.re_executions) == (0.0, 0.0, 4)
    assert empty.as_dict()["workerTxs"] == [4]  # no per-worker counts: all on the coordinator
    one = BlockStats(workers=0, txs=2, exec_seconds=1.0, serial_equivalent_seconds=0.5,
                     executions=1)
    assert one.parallel_efficiency == 0.5 and one.re_executions == 0  # never negative


@pytest.mark.parametrize(("error", "code"), [
    (errors.InvalidParams("p"), -32602), (errors.MethodNotFound("m"), -32601),
    (errors.MethodUnavailable("m"), -32601), (errors.NotFound("n"), -32001),
    (errors.StateUnavailable("s"), -32000), (errors.LimitExceeded("l"), -32005),
    (errors.Unauthorized("u"), -32010), (errors.StorageError("disk"), -32020),
    (errors.StorageCorruption("crc"), -32020), (errors.StorageDamage("wal"), -32020),
    (errors.LocalError("bug"), -32603), (errors.InvalidTransaction("nonce_gap", "gap"), -32003),
])
def test_each_error_carries_its_wire_code(error: errors.NodeError, code: int) -> None:
    assert error.rpc_code == code


def test_error_messages_and_data() -> None:
    e = errors.InvalidTransaction("nonce_gap", "nonce 4 leaves a gap")
    assert (str(e), e.message, e.cause, e.data) == (
        "nonce_gap: nonce 4 leaves a gap", "nonce_gap: nonce 4 leaves a gap", "nonce_gap",
        {"cause": "nonce_gap"})
    assert isinstance(e, errors.RemoteError)
    n = errors.NodeError("plain", data=[1])
    assert (str(n), n.message, n.data) == ("plain", "plain", [1])
    c = errors.ConfigError([("node.port", "must be 1..65535"), ("store.path", "missing")],
                           source="node.toml")
    assert str(c) == "node.toml: node.port: must be 1..65535\nnode.toml: store.path: missing"
    assert c.errors == [("node.port", "must be 1..65535"), ("store.path", "missing")]
    assert c.source == "node.toml" and c.rpc_code == -32602
    assert str(errors.ConfigError([("k", "bad")])) == "config: k: bad"
