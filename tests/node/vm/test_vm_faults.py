"""Guest faults end as outcomes (never host errors), and never leak into other calls."""

from __future__ import annotations

import pytest
from vm_helpers import CTX, FAULTS, Accounts, DictState, Run, resolver, u64

from node.core import keys
from node.core.execution import TxStatus
from node.vm.runtime import VmExecutor

FAULT_TABLE = [
    # method, args, status, reason fragment
    ("bad_pointer", b"", TxStatus.FAULT, "bad pointer: read of 4 bytes at 0xdeadbeef000"),
    ("huge_length", b"x", TxStatus.FAULT, "set_return: length 1099511627776 exceeds 4096"),
    ("pointer_wrap", b"", TxStatus.FAULT, "bad pointer: read of 16 bytes at 0xfffffffffffffff8"),
    ("read_into_input", b"12345678", TxStatus.FAULT, "to read-only memory"),
    (
        "read_into_code",
        b"",
        TxStatus.FAULT,
        "guest fault: Invalid memory write (UC_ERR_WRITE_UNMAPPED)",
    ),
    ("bad_store", b"", TxStatus.FAULT, "UC_ERR_WRITE_UNMAPPED"),
    ("write_code", b"", TxStatus.FAULT, "UC_ERR_WRITE_PROT"),
    ("illegal", b"", TxStatus.FAULT, "illegal instruction at pc 0x"),
    ("ebreak", b"", TxStatus.FAULT, "UC_ERR_INSN_INVALID"),
    ("infinite_loop", b"", TxStatus.OUT_OF_GAS, "out of gas"),
    ("jump_to_stub", b"", TxStatus.OUT_OF_GAS, "out of gas"),
    ("stack_overflow", b"", TxStatus.FAULT, "UC_ERR_WRITE_UNMAPPED"),
    ("unknown_syscall", b"", TxStatus.FAULT, "unknown syscall 99"),
    ("bad_slot", b"", TxStatus.FAULT, "storage_write: slot length 97 not in 1..96"),
    ("many_events", b"", TxStatus.FAULT, "more than 64 events"),
    ("corrupt_log", b"", TxStatus.FAULT, "corrupt event log: record 0 (9 topics"),
    ("bad_return_len", b"", TxStatus.FAULT, "set_return: length 5000 exceeds 4096"),
    ("corrupt_wlog", b"", TxStatus.FAULT, "corrupt write log: record 0 (op 1, slot 0"),
    ("write_then_revert", b"v", TxStatus.REVERT, "changed my mind"),
    ("write_then_exit", b"\x03", TxStatus.REVERT, "exit code 3"),
]


@pytest.mark.parametrize(
    ("method", "args", "status", "reason"), FAULT_TABLE, ids=[t[0] for t in FAULT_TABLE]
)
def test_fault_is_an_outcome_and_neighbours_unaffected(
    run: Run, acct: Accounts, method: str, args: bytes, status: TxStatus, reason: str
) -> None:
    before = run(acct.bob, FAULTS, "residue", b"")
    o = run(acct.alice, FAULTS, method, args, (b"k",), gas=200_000)
    assert o.status is status, o.reason
    assert reason in o.reason
    assert list(o.writes) == [keys.nonce_key(acct.alice.address)]  # only the nonce moves
    assert o.events == () and o.return_data == b""
    if status is TxStatus.OUT_OF_GAS:
        assert o.gas_used == 200_000
    else:
        assert 0 < o.gas_used < 200_000
    after = run(acct.bob, FAULTS, "residue", b"")
    assert after.return_data == before.return_data  # the pooled instance was fully reset
    assert run(acct.carol, FAULTS, "ok").return_data == b"ok"


def test_fault_reasons_are_deterministic(vm: VmExecutor, state: DictState) -> None:
    fresh = VmExecutor(resolver, pooled=False)
    for method, args, *_ in FAULT_TABLE:
        a = vm.call(FAULTS, method, args, state, CTX, gas_limit=100_000)
        b = fresh.call(FAULTS, method, args, state, CTX, gas_limit=100_000)
        assert (a.status, a.reason, a.gas_used) == (b.status, b.reason, b.gas_used), method


def test_writable_memory_is_reset_between_calls(vm: VmExecutor, state: DictState) -> None:
    first = vm.call(FAULTS, "residue", b"", state, CTX)
    assert first.status is TxStatus.SUCCESS
    # bss 0, data 7 (pristine), stack zeroed, syscall page zeroed: every time.
    assert first.return_data == u64(0) + u64(7) + u64(0) + u64(0)
    for _ in range(3):
        assert vm.call(FAULTS, "residue", b"", state, CTX).return_data == first.return_data


def test_input_region_reset(vm: VmExecutor, state: DictState) -> None:
    assert vm.call(FAULTS, "echo", b"A" * 200, state, CTX).return_data == b"A" * 200
    assert vm.call(FAULTS, "echo", b"B" * 3, state, CTX).return_data == b"B" * 3


def test_context_syscalls_and_block(vm: VmExecutor, state: DictState, acct: Accounts) -> None:
    caller = acct.carol.address
    o = vm.call(FAULTS, "context", b"", state, CTX, caller=caller)
    assert o.status is TxStatus.SUCCESS, o.reason
    r = o.return_data
    assert r[:20] == caller and r[20:40] == FAULTS
    assert r[40:48] == u64(CTX.number) and r[48:56] == u64(CTX.timestamp_ms)
    assert r[56:76] == caller and r[76:84] == u64(CTX.number) and r[84:92] == u64(CTX.timestamp_ms)


def test_storage_delete_and_put(run: Run, acct: Accounts, state: DictState) -> None:
    o = run(acct.alice, FAULTS, "put", b"\x01kvalue", (b"k",))
    assert o.status is TxStatus.SUCCESS
    assert state.get(keys.storage_key(FAULTS, b"k")) == b"value"
    o = run(acct.alice, FAULTS, "del", b"k", (b"k",))
    assert o.writes[keys.storage_key(FAULTS, b"k")] is None
    assert state.get(keys.storage_key(FAULTS, b"k")) is None


def test_oversize_args_revert(vm: VmExecutor, state: DictState) -> None:
    o = vm.call(FAULTS, "ok", b"x" * 70_000, state, CTX)
    assert o.status is TxStatus.REVERT and "exceed" in o.reason


def test_events_overflowing_the_log_keep_their_order(vm: VmExecutor, state: DictState) -> None:
    topic = bytes(range(32))
    o = vm.call(FAULTS, "big_events", topic, state, CTX)
    assert o.status is TxStatus.SUCCESS, o.reason
    assert [e.data[:1] for e in o.events[:3]] == [b"\x00", b"\x01", b"\x02"]
    assert all(len(e.data) == 4000 and e.topics == (topic,) for e in o.events[:3])
    assert (o.events[3].topics, o.events[3].data) == ((), b"tail")
    small = vm.call(FAULTS, "ok", b"", state, CTX)
    assert o.gas_used - small.gas_used > 4 * 300  # every event paid, logged or syscall


def test_writes_overflowing_the_log_keep_their_order(
    run: Run, acct: Accounts, state: DictState
) -> None:
    o = run(acct.alice, FAULTS, "big_writes", b"", (b"k",))
    assert o.status is TxStatus.SUCCESS, o.reason
    assert o.return_data == b"\x02"  # the read after the writes saw the last one
    assert state.get(keys.storage_key(FAULTS, b"k"))[:1] == b"\x02"


def test_logged_undeclared_write_wins_over_a_later_revert(run: Run, acct: Accounts) -> None:
    o = run(acct.alice, FAULTS, "write_then_revert", b"v", ())  # slot "k" not declared
    assert o.status is TxStatus.UNDECLARED_ACCESS
    assert o.reason.startswith("undeclared write of key 0x")
