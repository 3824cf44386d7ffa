"""Differential tests (hypothesis): random transaction sequences give identical receipts

* on the pooled fast path and on a fresh instance per call (every field, gas included), and
* on the VM and the Python reference executor for the native token and the counter (status,
  return data, events, writes, reads and reason; gas differs by design: the VM also charges
  per instruction).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from vm_helpers import CTX, ERC20, FAULTS, HOTSPOT, OBJECTS, DictState, resolver, u64

from node.core import keys
from node.core.codec import unpack_u64
from node.core.execution import TxOutcome
from node.core.tx import Signer, Transaction, sign_tx
from node.vm.genesis import default_mint_authority
from node.vm.reference import ReferenceExecutor
from node.vm.runtime import VmExecutor

SIGNERS = [Signer.from_seed(b"mint-authority")] + [Signer.from_seed(bytes([i])) for i in range(3)]
ADDRS = [s.address for s in SIGNERS]

POOLED = VmExecutor(resolver, max_instances=4)  # small bound: evictions happen mid-sequence
FRESH = VmExecutor(resolver, pooled=False)
REFERENCE = ReferenceExecutor(default_mint_authority())

amounts = st.one_of(st.integers(0, 1000), st.just(2**64 - 1), st.integers(0, 2**64 - 1))
who = st.integers(0, len(SIGNERS) - 1)


def _bal(i: int) -> bytes:
    return b"b" + ADDRS[i]


@st.composite
def token_op(draw: st.DrawFn) -> tuple[int, bytes, str, bytes, tuple[bytes, ...]]:
    s, t = draw(who), draw(who)
    kind = draw(st.sampled_from(["mint", "transfer", "balance_of", "bad_args", "undeclared"]))
    if kind == "mint":
        return s, keys.NATIVE_TOKEN, "mint", ADDRS[t] + u64(draw(amounts)), (_bal(t),)
    if kind == "transfer":
        return s, keys.NATIVE_TOKEN, "transfer", ADDRS[t] + u64(draw(amounts)), (_bal(s), _bal(t))
    if kind == "balance_of":
        return s, keys.NATIVE_TOKEN, "balance_of", ADDRS[t], (_bal(t),)
    if kind == "bad_args":
        return (
            s,
            keys.NATIVE_TOKEN,
            draw(st.sampled_from(["transfer", "mint", "balance_of"])),
            draw(st.binary(max_size=30)),
            (),
        )
    return s, keys.NATIVE_TOKEN, "transfer", ADDRS[t] + u64(1), (_bal(s),)


@st.composite
def counter_op(draw: st.DrawFn) -> tuple[int, bytes, str, bytes, tuple[bytes, ...]]:
    s = draw(who)
    slot = draw(st.sampled_from([b"a", b"b", b"x" * 32]))
    if draw(st.booleans()):
        args = slot + u64(draw(amounts))
        return s, keys.COUNTER_DEMO, "increment", args, (slot,) if draw(st.integers(0, 9)) else ()
    return s, keys.COUNTER_DEMO, "get", draw(st.sampled_from([slot, b"", b"y" * 33])), (slot,)


@st.composite
def other_op(draw: st.DrawFn) -> tuple[int, bytes, str, bytes, tuple[bytes, ...]]:
    s, t = draw(who), draw(who)
    c = draw(st.sampled_from(["erc20", "objects", "hotspot", "faults", "faults"]))
    if c == "erc20":
        m = draw(st.sampled_from(["init", "transfer", "approve", "transfer_from"]))
        amt = u64(draw(amounts))
        args = {"init": amt, "transfer": ADDRS[t] + amt, "approve": ADDRS[t] + amt,
                "transfer_from": ADDRS[t] + ADDRS[s] + amt}[m]
        slots = (b"T", _bal(s), _bal(t), b"a" + ADDRS[s] + ADDRS[t], b"a" + ADDRS[t] + ADDRS[s])
        return s, ERC20, m, args, slots
    if c == "objects":
        oid = bytes([draw(st.integers(0, 2))]) * 32
        m = draw(st.sampled_from(["create", "transfer", "mutate", "destroy", "shared_add"]))
        args = {
            "create": oid + draw(st.binary(max_size=40)),
            "transfer": oid + ADDRS[t],
            "mutate": oid + draw(st.binary(max_size=40)),
            "destroy": oid,
            "shared_add": u64(draw(amounts)),
        }[m]
        return s, OBJECTS, m, args, (b"o" + oid, b"S")
    if c == "hotspot":
        m = draw(st.sampled_from(["add_liquidity", "swap", "bump"]))
        args = {
            "add_liquidity": u64(draw(amounts)) + u64(draw(amounts)),
            "swap": bytes([draw(st.integers(0, 1))])
            + u64(draw(amounts))
            + u64(draw(st.integers(0, 10))),
            "bump": b"",
        }[m]
        return s, HOTSPOT, m, args, (b"r", b"c")
    # "residue" returns what it finds in writable memory and then dirties it: weighted up so
    # sequences often run it twice on one pooled instance (a missed reset shows up there).
    m = draw(st.sampled_from(["ok", "infinite_loop", "bad_pointer", "illegal", "write_then_revert",
                              "stack_overflow", "echo", "context"] + ["residue"] * 8))
    return s, FAULTS, m, draw(st.binary(max_size=16)), (b"k",)


def _to_tx(
    state: DictState, op: tuple[int, bytes, str, bytes, tuple[bytes, ...]], gas: int, skew: int
) -> Transaction:
    s, to, method, args, slots = op
    raw = state.get(keys.nonce_key(ADDRS[s]))
    nonce = unpack_u64(raw) + skew
    return sign_tx(SIGNERS[s], chain_id=CTX.chain_id, nonce=nonce, to=to, method=method, args=args,
                   write_set=tuple(keys.storage_key(to, x) for x in slots), gas_limit=gas)


gas_limits = st.one_of(st.just(5_000_000), st.integers(1, 5_000))
skews = st.sampled_from([0] * 9 + [1])


@settings(max_examples=60)
@given(
    st.lists(
        st.tuples(st.one_of(token_op(), counter_op(), other_op()), gas_limits, skews), max_size=15
    )
)
def test_pooled_equals_fresh_instances(
    ops: list[tuple[tuple[int, bytes, str, bytes, tuple[bytes, ...]], int, int]],
) -> None:
    a, b = DictState(), DictState()
    for op, gas, skew in ops:
        tx = _to_tx(a, op, gas, skew)
        oa: TxOutcome = POOLED.execute(tx, a, CTX)
        ob: TxOutcome = FRESH.execute(tx, b, CTX)
        assert oa == ob, (op, gas)
        a.apply(oa)
        b.apply(ob)
    assert a.data == b.data


@settings(max_examples=100)
@given(st.lists(st.tuples(st.one_of(token_op(), counter_op()), skews), max_size=25))
def test_vm_matches_reference_for_system_contracts(
    ops: list[tuple[tuple[int, bytes, str, bytes, tuple[bytes, ...]], int]],
) -> None:
    a, b = DictState(), DictState()
    for op, skew in ops:
        tx = _to_tx(a, op, 10_000_000, skew)
        ov = POOLED.execute(tx, a, CTX)
        orf = REFERENCE.execute(tx, b, CTX)
        got = (ov.status, ov.return_data, ov.events, dict(ov.writes), ov.reads, ov.reason)
        want = (orf.status, orf.return_data, orf.events, dict(orf.writes), orf.reads, orf.reason)
        assert got == want, op
        a.apply(ov)
        b.apply(orf)
    assert a.data == b.data
