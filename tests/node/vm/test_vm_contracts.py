"""Each contract's behaviour through the VM: results, reverts, events and gas accounting."""

from __future__ import annotations

from vm_helpers import COMPUTE, CTX, ERC20, HOTSPOT, OBJECTS, Accounts, DictState, Run, u64

from node.core import keys
from node.core.execution import TxStatus
from node.vm import abi
from node.vm.reference import TRANSFER_TOPIC
from node.vm.runtime import VmExecutor

APPROVAL_TOPIC = bytes.fromhex("8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925")


def pad(a: bytes) -> bytes:
    return bytes(12) + a


def bal(a: bytes) -> bytes:
    return b"b" + a


# -- native token -------------------------------------------------------------------------------
def test_native_mint_transfer_balance(
    run: Run, acct: Accounts, vm: VmExecutor, state: DictState
) -> None:
    A, B = acct.alice.address, acct.bob.address
    o = run(acct.authority, keys.NATIVE_TOKEN, "mint", A + u64(1000), (bal(A),))
    assert o.status is TxStatus.SUCCESS, o.reason
    assert o.events[0].topics == (TRANSFER_TOPIC, bytes(32), pad(A))
    assert o.events[0].data == u64(1000)
    o = run(acct.alice, keys.NATIVE_TOKEN, "transfer", B + u64(300), (bal(A), bal(B)))
    assert o.status is TxStatus.SUCCESS, o.reason
    assert o.events[0].address == keys.NATIVE_TOKEN
    assert o.events[0].topics == (TRANSFER_TOPIC, pad(A), pad(B))
    assert state.get(keys.balance_key(A)) == u64(700)
    assert state.get(keys.balance_key(B)) == u64(300)
    r = vm.call(keys.NATIVE_TOKEN, "balance_of", B, state, CTX)
    assert (r.status, r.return_data) == (TxStatus.SUCCESS, u64(300))
    assert r.writes == {}


def test_native_reverts_discard_writes_but_bump_nonce(
    run: Run, acct: Accounts, state: DictState
) -> None:
    A, B = acct.alice.address, acct.bob.address
    o = run(acct.alice, keys.NATIVE_TOKEN, "mint", A + u64(5), (bal(A),))
    assert (o.status, o.reason) == (TxStatus.REVERT, "mint: caller is not the mint authority")
    assert o.writes == {keys.nonce_key(A): u64(1)}
    assert o.events == ()
    o = run(acct.alice, keys.NATIVE_TOKEN, "transfer", B + u64(1), (bal(A), bal(B)))
    assert (o.status, o.reason) == (TxStatus.REVERT, "insufficient balance")
    o = run(acct.alice, keys.NATIVE_TOKEN, "transfer", B, (bal(A), bal(B)))
    assert o.reason == "transfer: args must be to(20) + amount(u64)"
    o = run(acct.alice, keys.NATIVE_TOKEN, "nope")
    assert (o.status, o.reason) == (TxStatus.REVERT, "unknown method 'nope'")
    assert state.get(keys.nonce_key(A)) == u64(4)


def test_native_overflow_and_self_transfer(run: Run, acct: Accounts, state: DictState) -> None:
    A = acct.alice.address
    run(acct.authority, keys.NATIVE_TOKEN, "mint", A + u64(2**64 - 1), (bal(A),))
    o = run(acct.authority, keys.NATIVE_TOKEN, "mint", A + u64(1), (bal(A),))
    assert o.reason == "balance overflow"
    o = run(acct.alice, keys.NATIVE_TOKEN, "transfer", A + u64(10), (bal(A),))
    assert o.status is TxStatus.SUCCESS
    assert state.get(keys.balance_key(A)) == u64(2**64 - 1)


def test_gas_accounting(run: Run, acct: Accounts) -> None:
    A, B = acct.alice.address, acct.bob.address
    run(acct.authority, keys.NATIVE_TOKEN, "mint", A + u64(10), (bal(A),))
    run(acct.alice, keys.NATIVE_TOKEN, "transfer", B + u64(1), (bal(A), bal(B)))  # B now exists
    o = run(acct.alice, keys.NATIVE_TOKEN, "transfer", B + u64(1), (bal(A), bal(B)))
    syscall_gas = (
        abi.GAS_TX_BASE + 2 * abi.GAS_STORAGE_READ + 2 * abi.GAS_STORAGE_WRITE + abi.GAS_EVENT
    )
    insns = o.gas_used - syscall_gas
    assert 50 < insns < 5_000  # instruction gas on top of the reference's syscall schedule
    o2 = run(acct.alice, keys.NATIVE_TOKEN, "transfer", B + u64(1), (bal(A), bal(B)))
    assert o2.gas_used == o.gas_used  # deterministic
    # Exactly enough gas succeeds; one less runs out and reports the whole limit.
    o3 = run(
        acct.alice, keys.NATIVE_TOKEN, "transfer", B + u64(1), (bal(A), bal(B)), gas=o.gas_used
    )
    assert o3.status is TxStatus.SUCCESS
    o4 = run(
        acct.alice, keys.NATIVE_TOKEN, "transfer", B + u64(1), (bal(A), bal(B)), gas=o.gas_used - 1
    )
    assert (o4.status, o4.gas_used) == (TxStatus.OUT_OF_GAS, o.gas_used - 1)
    assert len(o4.writes) == 1  # only the nonce
    o5 = run(acct.alice, keys.NATIVE_TOKEN, "transfer", B + u64(1), (bal(A), bal(B)), gas=999)
    assert (o5.status, o5.gas_used) == (TxStatus.OUT_OF_GAS, 999)


# -- counter ------------------------------------------------------------------------------------
def test_counter(run: Run, acct: Accounts, vm: VmExecutor, state: DictState) -> None:
    o = run(acct.alice, keys.COUNTER_DEMO, "increment", b"hits" + u64(2), (b"hits",))
    assert (o.status, o.return_data) == (TxStatus.SUCCESS, u64(2))
    o = run(acct.bob, keys.COUNTER_DEMO, "increment", b"hits" + u64(2**64 - 1), (b"hits",))
    assert o.return_data == u64(1)  # wraps mod 2**64
    assert vm.call(keys.COUNTER_DEMO, "get", b"hits", state, CTX).return_data == u64(1)
    o = run(acct.alice, keys.COUNTER_DEMO, "increment", u64(1), (b"x",))
    assert o.reason == "increment: args must be slot(1..32) + delta(u64)"
    o = run(acct.alice, keys.COUNTER_DEMO, "get", b"")
    assert o.reason == "get: args must be slot(1..32)"


def test_undeclared_access(run: Run, acct: Accounts) -> None:
    o = run(acct.alice, keys.COUNTER_DEMO, "increment", b"hits" + u64(1), (b"other",))
    assert o.status is TxStatus.UNDECLARED_ACCESS
    assert "undeclared read" in o.reason
    assert o.gas_used > abi.GAS_TX_BASE
    assert list(o.writes) == [keys.nonce_key(acct.alice.address)]


# -- erc20 --------------------------------------------------------------------------------------
def test_erc20_allowances_and_events(
    run: Run, acct: Accounts, vm: VmExecutor, state: DictState
) -> None:
    A, B, C = acct.alice.address, acct.bob.address, acct.carol.address
    o = run(acct.alice, ERC20, "init", u64(1000), (b"T", bal(A)))
    assert o.status is TxStatus.SUCCESS, o.reason
    assert o.events[0].topics == (TRANSFER_TOPIC, bytes(32), pad(A))
    assert (
        run(acct.bob, ERC20, "init", u64(1), (b"T", bal(B))).reason == "init: already initialized"
    )
    o = run(acct.alice, ERC20, "approve", B + u64(300), (b"a" + A + B,))
    assert o.events[0].topics == (APPROVAL_TOPIC, pad(A), pad(B))
    assert o.events[0].data == u64(300)
    o = run(acct.bob, ERC20, "transfer_from", A + C + u64(200), (b"a" + A + B, bal(A), bal(C)))
    assert o.status is TxStatus.SUCCESS, o.reason
    assert o.events[0].topics == (TRANSFER_TOPIC, pad(A), pad(C))
    o = run(acct.bob, ERC20, "transfer_from", A + C + u64(101), (b"a" + A + B, bal(A), bal(C)))
    assert o.reason == "insufficient allowance"
    o = run(acct.carol, ERC20, "transfer", B + u64(201), (bal(C), bal(B)))
    assert o.reason == "insufficient balance"
    call = lambda m, a: vm.call(ERC20, m, a, state, CTX).return_data  # noqa: E731
    assert call("balance_of", A) == u64(800)
    assert call("balance_of", C) == u64(200)
    assert call("allowance", A + B) == u64(100)
    assert call("total_supply", b"") == u64(1000)


# -- objects ------------------------------------------------------------------------------------
def test_objects_owned_and_shared(
    run: Run, acct: Accounts, vm: VmExecutor, state: DictState
) -> None:
    A, B = acct.alice.address, acct.bob.address
    oid = bytes(range(32))
    slot = b"o" + oid
    o = run(acct.alice, OBJECTS, "create", oid + b"hello", (slot,))
    assert (o.status, o.return_data) == (TxStatus.SUCCESS, u64(1)), o.reason
    assert o.events[0].topics[1] == oid
    assert run(acct.bob, OBJECTS, "create", oid, (slot,)).reason == "object exists"
    assert run(acct.bob, OBJECTS, "mutate", oid + b"mine", (slot,)).reason == "not the owner"
    o = run(acct.alice, OBJECTS, "transfer", oid + B, (slot,))
    assert o.return_data == u64(2)
    o = run(acct.bob, OBJECTS, "mutate", oid + b"bye", (slot,))
    assert o.return_data == u64(3)
    rec = vm.call(OBJECTS, "get", oid, state, CTX).return_data
    assert rec == B + u64(3) + b"bye"
    o = run(acct.bob, OBJECTS, "destroy", oid, (slot,))
    assert o.status is TxStatus.SUCCESS and o.writes[keys.storage_key(OBJECTS, slot)] is None
    assert vm.call(OBJECTS, "get", oid, state, CTX).reason == "no such object"
    for who in (acct.alice, acct.bob):
        o = run(who, OBJECTS, "shared_add", u64(5), (b"S",))
    assert o.return_data == u64(10)
    assert A != B


# -- hotspot ------------------------------------------------------------------------------------
def test_hotspot_amm(run: Run, acct: Accounts, vm: VmExecutor, state: DictState) -> None:
    assert (
        run(acct.alice, HOTSPOT, "swap", b"\x01" + u64(10) + u64(0), (b"r",)).reason == "empty pool"
    )
    o = run(acct.alice, HOTSPOT, "add_liquidity", u64(1_000_000) + u64(2_000_000), (b"r",))
    assert o.return_data == u64(1_000_000) + u64(2_000_000)
    o = run(acct.bob, HOTSPOT, "swap", b"\x01" + u64(10_000) + u64(0), (b"r",))
    expected = 10_000 * 997 * 2_000_000 // (1_000_000 * 1000 + 10_000 * 997)
    assert (o.status, o.return_data) == (TxStatus.SUCCESS, u64(expected)), o.reason
    assert o.events[0].data == u64(10_000) + u64(expected)
    o = run(acct.bob, HOTSPOT, "swap", b"\x00" + u64(10_000) + u64(10**9), (b"r",))
    assert o.reason == "slippage"
    r = vm.call(HOTSPOT, "reserves", b"", state, CTX).return_data
    assert r == u64(1_010_000) + u64(2_000_000 - expected)
    # Huge amounts exercise the 128-bit path.
    run(acct.alice, HOTSPOT, "add_liquidity", u64(2**62) + u64(2**62), (b"r",))
    o = run(acct.bob, HOTSPOT, "swap", b"\x01" + u64(2**61) + u64(1), (b"r",))
    assert o.status is TxStatus.SUCCESS, o.reason
    for _ in range(3):
        o = run(acct.carol, HOTSPOT, "bump", b"", (b"c",))
    assert o.return_data == u64(3)


# -- compute ------------------------------------------------------------------------------------
def test_compute_hash_loop_scales_gas(
    run: Run, acct: Accounts, vm: VmExecutor, state: DictState
) -> None:
    small = vm.call(COMPUTE, "hash_loop", u64(1_000), state, CTX)
    big = vm.call(COMPUTE, "hash_loop", u64(10_000), state, CTX)
    assert small.status is big.status is TxStatus.SUCCESS
    assert len(big.return_data) == 32 and big.return_data != small.return_data
    per_iter = (big.gas_used - small.gas_used) / 9_000
    assert 5 <= per_iter <= 30
    seeded = vm.call(COMPUTE, "hash_loop", u64(1_000) + bytes(range(32)), state, CTX)
    assert seeded.return_data not in (small.return_data, b"")
    m = vm.call(COMPUTE, "hash_memory", u64(20), state, CTX)
    assert m.status is TxStatus.SUCCESS and len(m.return_data) == 32
    assert vm.call(COMPUTE, "hash_memory", u64(20), state, CTX).return_data == m.return_data
    o = run(acct.alice, COMPUTE, "hash_loop", u64(10**9), gas=200_000)
    assert (o.status, o.gas_used) == (TxStatus.OUT_OF_GAS, 200_000)
