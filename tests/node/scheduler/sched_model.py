"""Shared model for the scheduler tests: script executors, block generators, the comparison.

Imported by the property tests next to it and by ``scenarios/test_scheduler_determinism.py``.

* :class:`ScriptExecutor` runs a tiny op program carried in ``tx.args`` (reads, writes, counter
  deltas, deletes, events, state-dependent reads, reverts, faults, gas burns) with the same nonce
  and access rules as the reference executor. Stateless and picklable, so worker processes can
  build it (:func:`script_executor` is the factory).
* :class:`AdversarialExecutor` gives each transaction several behaviours and picks one by how
  often that transaction was executed before (aptos-core's ``incarnation_behaviors``), so
  Block-STM's re-executions change read and write sets. :class:`PinnedExecutor` replays a fixed
  behaviour per transaction: the baseline runs each transaction's *final* behaviour.
* Hypothesis strategies: :func:`script_blocks` (structured, shrinks well, up to ~60 txs) and
  :func:`seeded_script_blocks` (up to 500 txs from a drawn seed: large blocks, replayable);
  :func:`transfer_blocks` for the reference executor's native token.
"""

from __future__ import annotations

import random
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from hypothesis import strategies as st

from node.core import keys
from node.core.access import TxState, UndeclaredAccess
from node.core.codec import pack_u64, unpack_u64
from node.core.execution import (
    BlockContext,
    BlockExecution,
    Event,
    Receipt,
    StateReader,
    TxOutcome,
    TxStatus,
)
from node.core.tx import Transaction, address_of
from node.vm.reference import ReferenceExecutor

CTX = BlockContext(number=7, timestamp_ms=1_700_000_000_000, chain_id=1)
CONTRACT = bytes(19) + b"\x07"
TOPIC = bytes(31) + b"\x01"
_OP = struct.Struct(">BHI")  # op code, key index, operand

# Op codes of the script language.
READ, WRITE, ADD, DELETE, EVENT, DYN_READ, REVERT, FAULT, BURN = range(1, 10)
OP_NAMES = {
    READ: "read", WRITE: "write", ADD: "add", DELETE: "delete", EVENT: "event",
    DYN_READ: "dyn_read", REVERT: "revert", FAULT: "fault", BURN: "burn",
}
GAS_BASE, GAS_READ, GAS_WRITE, GAS_EVENT = 1_000, 200, 500, 300

Op = tuple[int, int, int]
Script = tuple[Op, ...]


def key(i: int) -> bytes:
    """Storage key number ``i`` of the test contract."""
    return keys.storage_key(CONTRACT, b"k" + i.to_bytes(2, "big"))


def public_key(sender: int) -> bytes:
    return b"P" + sender.to_bytes(4, "big") + bytes(27)


def sender_address(sender: int) -> bytes:
    return address_of(public_key(sender))


def u64(b: bytes | None) -> int:
    return 0 if b is None else int(unpack_u64(b))


def encode_behaviours(uid: int, behaviours: Sequence[Script]) -> bytes:
    out = bytearray(uid.to_bytes(4, "big"))
    out.append(len(behaviours))
    for ops in behaviours:
        out += len(ops).to_bytes(2, "big")
        for op in ops:
            out += _OP.pack(*op)
    return bytes(out)


def decode_behaviours(args: bytes) -> list[Script]:
    pos, out = 5, []
    for _ in range(args[4]):
        n = int.from_bytes(args[pos : pos + 2], "big")
        pos += 2
        out.append(tuple(_OP.unpack_from(args, pos + 7 * j) for j in range(n)))
        pos += 7 * n
    return out


class _Revert(Exception):
    pass


class _Fault(Exception):
    pass


class _OutOfGas(Exception):
    pass


def run_script(
    tx: Transaction, ops: Script, state: StateReader, pause: Callable[[], None] | None = None
) -> TxOutcome:
    """Execute one behaviour with the reference executor's nonce and access rules. ``pause``
    runs between ops (the adversary yields the GIL there to force thread interleavings)."""
    nkey = keys.nonce_key(tx.sender)
    current = u64(state.get(nkey))
    if tx.nonce != current:
        return TxOutcome(
            TxStatus.INVALID, 0, reads=(nkey,), reason=f"nonce mismatch: expected {current}"
        )
    nonce_write = {nkey: pack_u64(current + 1)}
    ts = TxState(state, tx.declared_reads(), tx.declared_writes())
    ts.reads[nkey] = None
    gas = [0]

    def charge(n: int) -> None:
        if gas[0] + n > tx.gas_limit:
            gas[0] = tx.gas_limit
            raise _OutOfGas()
        gas[0] += n

    acc = 0
    events: list[Event] = []
    try:
        charge(GAS_BASE)
        for code, k, v in ops:
            if pause is not None:
                pause()
            if code == READ:
                charge(GAS_READ)
                acc = (acc + u64(ts.get(key(k)))) % 2**64
            elif code == DYN_READ:  # which key depends on what was read so far
                charge(GAS_READ)
                acc = (acc + u64(ts.get(key((acc + k) % max(1, v))))) % 2**64
            elif code == WRITE:
                charge(GAS_WRITE)
                ts.put(key(k), pack_u64((acc + v) % 2**64))
            elif code == ADD:
                charge(GAS_READ + GAS_WRITE)
                nv = (u64(ts.get(key(k))) + v) % 2**64
                ts.put(key(k), pack_u64(nv))
                acc = (acc + nv) % 2**64
            elif code == DELETE:
                charge(GAS_WRITE)
                ts.delete(key(k))
            elif code == EVENT:
                charge(GAS_EVENT)
                events.append(Event(CONTRACT, (TOPIC,), pack_u64(acc)))
            elif code == REVERT:
                if acc % 3 == v % 3:  # state-dependent revert
                    raise _Revert(f"revert at acc={acc}")
            elif code == FAULT:
                if acc % 5 == v % 5:
                    raise _Fault("fault: illegal instruction")
            elif code == BURN:
                charge(v)
    except _Revert as e:
        return TxOutcome(
            TxStatus.REVERT, gas[0], writes=nonce_write, reads=tuple(ts.reads), reason=str(e)
        )
    except _Fault as e:
        return TxOutcome(
            TxStatus.FAULT, gas[0], writes=nonce_write, reads=tuple(ts.reads), reason=str(e)
        )
    except _OutOfGas:
        return TxOutcome(
            TxStatus.OUT_OF_GAS,
            gas[0],
            writes=nonce_write,
            reads=tuple(ts.reads),
            reason="out of gas",
        )
    except UndeclaredAccess as e:
        return TxOutcome(
            TxStatus.UNDECLARED_ACCESS,
            gas[0],
            writes=nonce_write,
            reads=tuple(ts.reads),
            reason=str(e),
        )
    writes = dict(ts.writes)
    writes.update(nonce_write)
    return TxOutcome(
        TxStatus.SUCCESS, gas[0], pack_u64(acc), tuple(events), writes, tuple(ts.reads)
    )


class ScriptExecutor:
    """Runs each transaction's first behaviour. Stateless, thread-safe, picklable."""

    def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
        return run_script(tx, decode_behaviours(tx.args)[0], state)


def script_executor() -> ScriptExecutor:
    """Executor factory for worker processes."""
    return ScriptExecutor()


def _yield_gil() -> None:
    time.sleep(0)


@dataclass
class AdversarialExecutor:
    """Picks behaviour ``(executions of this tx so far) % len(behaviours)``: a re-executed
    transaction reads and writes different keys, as in aptos-core's dynamic proptests."""

    counts: dict[bytes, int] = field(default_factory=dict)
    interleave: bool = True  # yield the GIL between ops so threads really overlap
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
        behaviours = decode_behaviours(tx.args)
        with self._lock:
            n = self.counts.get(tx.hash, 0)
            self.counts[tx.hash] = n + 1
        pause = _yield_gil if self.interleave else None
        return run_script(tx, behaviours[n % len(behaviours)], state, pause)

    def final_choices(self, txs: Iterable[Transaction]) -> dict[bytes, int]:
        """The behaviour of each transaction's last execution (its committed incarnation)."""
        out = {}
        for tx in txs:
            n = self.counts[tx.hash]
            out[tx.hash] = (n - 1) % len(decode_behaviours(tx.args))
        return out


@dataclass
class PinnedExecutor:
    """Runs a fixed behaviour per transaction (the baseline of the adversarial tests)."""

    choice: dict[bytes, int]

    def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
        return run_script(tx, decode_behaviours(tx.args)[self.choice[tx.hash]], state)


# -- blocks ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TxSpec:
    """A generated transaction before it is built (kept for readable failure reports)."""

    sender: int
    nonce_skew: int  # 0, or a wrong-nonce offset (INVALID)
    behaviours: tuple[Script, ...]
    drop: frozenset[int]  # keys used but left undeclared
    extra: frozenset[int]  # keys declared but not used
    gas_limit: int

    def describe(self) -> str:
        bs = " | ".join(
            ", ".join(f"{OP_NAMES[c]}({k},{v})" for c, k, v in ops) for ops in self.behaviours
        )
        return (
            f"sender={self.sender} skew={self.nonce_skew} gas={self.gas_limit} "
            f"drop={sorted(self.drop)} extra={sorted(self.extra)}: {bs}"
        )


@dataclass(frozen=True)
class Block:
    """A generated block: its state, its specs, and the built transactions."""

    universe: int
    state: dict[bytes, bytes | None]
    specs: tuple[TxSpec, ...]
    txs: tuple[Transaction, ...]

    def __repr__(self) -> str:  # the full block is in the test's note (describe)
        return f"Block(universe={self.universe}, txs={len(self.txs)})"

    def describe(self) -> str:
        lines = [f"universe={self.universe} txs={len(self.txs)} state_keys={len(self.state)}"]
        lines += [f"  [{i}] {s.describe()}" for i, s in enumerate(self.specs)]
        return "\n".join(lines)


class DictState:
    """A plain in-memory StateReader."""

    def __init__(self, data: dict[bytes, bytes | None] | None = None) -> None:
        self.data: dict[bytes, bytes | None] = dict(data or {})

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def apply(
        self, writes: dict[bytes, bytes | None] | Iterable[tuple[bytes, bytes | None]]
    ) -> None:
        items = writes.items() if isinstance(writes, dict) else writes
        for k, v in items:
            if v is None:
                self.data.pop(k, None)
            else:
                self.data[k] = v


def _keys_of(ops: Script) -> tuple[set[int], set[int]]:
    reads, writes = set(), set()
    for code, k, v in ops:
        if code == READ:
            reads.add(k)
        elif code == DYN_READ:
            reads.update(range(max(1, v)))  # everything it could read (may be dropped below)
        elif code in (WRITE, ADD, DELETE):
            writes.add(k)
    return reads, writes


def build_block(
    universe: int,
    state: dict[bytes, bytes | None],
    specs: Sequence[TxSpec],
    start_nonces: dict[int, int] | None = None,
    uid_base: int = 0,
) -> Block:
    """Turn specs into transactions: nonces in order per sender, declared sets from the ops."""
    nonces = dict(start_nonces or {})
    txs = []
    for uid, s in enumerate(specs):
        reads: set[int] = set()
        writes: set[int] = set()
        for ops in s.behaviours:
            r, w = _keys_of(ops)
            reads |= r
            writes |= w
        reads = (reads - writes - s.drop) | (s.extra - writes)
        writes = writes - s.drop
        reads = set(sorted(reads)[:100])
        n = nonces.get(s.sender, 0)
        if s.nonce_skew == 0:
            nonces[s.sender] = n + 1
        txs.append(
            Transaction(
                chain_id=CTX.chain_id, nonce=n + s.nonce_skew if n + s.nonce_skew >= 0 else n + 1,
                to=CONTRACT, method="run",
                args=encode_behaviours(uid_base + uid, s.behaviours),
                read_set=tuple(key(k) for k in sorted(reads)),
                write_set=tuple(key(k) for k in sorted(writes)),
                gas_limit=s.gas_limit, public_key=public_key(s.sender), signature=bytes(64),
            )
        )
    return Block(universe, dict(state), tuple(specs), tuple(txs))


@st.composite
def _op(draw: st.DrawFn, universe: int, hot: int) -> Op:
    code = draw(
        st.sampled_from([READ, READ, WRITE, ADD, ADD, DELETE, EVENT, DYN_READ, REVERT, FAULT, BURN])
    )
    # Hot keys: most accesses land on the first `hot` keys.
    if hot and draw(st.integers(0, 3)) > 0:
        k = draw(st.integers(0, hot - 1))
    else:
        k = draw(st.integers(0, universe - 1))
    if code == DYN_READ:
        return (code, k, min(universe, 8))
    if code == BURN:
        return (code, k, draw(st.integers(0, 3000)))
    return (code, k, draw(st.integers(0, 2**32 - 1)))


@st.composite
def _spec(draw: st.DrawFn, universe: int, hot: int, senders: int, max_behaviours: int) -> TxSpec:
    nb = draw(st.integers(1, max_behaviours))
    behaviours = tuple(
        tuple(draw(st.lists(_op(universe, hot), min_size=0, max_size=5))) for _ in range(nb)
    )
    used = set().union(*(_keys_of(b)[0] | _keys_of(b)[1] for b in behaviours))
    drop = frozenset(k for k in sorted(used) if draw(st.integers(0, 19)) == 0)
    extra = frozenset(draw(st.lists(st.integers(0, universe - 1), max_size=2)))
    return TxSpec(
        sender=draw(st.integers(0, senders - 1)),
        nonce_skew=draw(st.sampled_from([0] * 30 + [1, -1])),
        behaviours=behaviours, drop=drop, extra=extra,
        gas_limit=draw(st.sampled_from([100_000] * 8 + [1_000, 2_500, 4_000])),
    )


def _initial_state(rnd: random.Random, universe: int) -> dict[bytes, bytes | None]:
    return {key(k): pack_u64(rnd.randrange(2**64)) for k in range(universe) if rnd.random() < 0.7}


@st.composite
def script_blocks(draw: st.DrawFn, max_txs: int = 60, max_behaviours: int = 1) -> Block:
    """Structured blocks that shrink to a minimal failing block."""
    universe = draw(st.integers(2, 200))
    hot = draw(st.sampled_from([0, 0, 1, 2]))
    senders = draw(st.integers(1, 40))
    specs = draw(
        st.lists(_spec(universe, hot, senders, max_behaviours), min_size=1, max_size=max_txs)
    )
    state = _initial_state(random.Random(draw(st.integers(0, 2**32))), universe)
    return build_block(universe, state, specs)


def random_specs(
    rnd: random.Random, n: int, universe: int, hot: int, senders: int, max_behaviours: int
) -> list[TxSpec]:
    specs = []
    codes = [READ, READ, WRITE, ADD, ADD, DELETE, EVENT, DYN_READ, REVERT, FAULT, BURN]
    for _ in range(n):
        behaviours = []
        for _b in range(rnd.randint(1, max_behaviours)):
            ops = []
            for _o in range(rnd.randint(0, 5)):
                c = rnd.choice(codes)
                k = rnd.randrange(hot) if hot and rnd.random() < 0.75 else rnd.randrange(universe)
                v = (
                    min(universe, 8)
                    if c == DYN_READ
                    else rnd.randrange(3000 if c == BURN else 2**32)
                )
                ops.append((c, k, v))
            behaviours.append(tuple(ops))
        used = set().union(*(_keys_of(b)[0] | _keys_of(b)[1] for b in behaviours))
        specs.append(
            TxSpec(
                sender=rnd.randrange(senders),
                nonce_skew=0 if rnd.random() < 0.97 else rnd.choice([1, -1]),
                behaviours=tuple(behaviours),
                drop=frozenset(k for k in sorted(used) if rnd.random() < 0.03),
                extra=frozenset(rnd.randrange(universe) for _ in range(rnd.randint(0, 2))),
                gas_limit=100_000 if rnd.random() < 0.9 else rnd.choice([1_000, 2_500, 4_000]),
            )
        )
    return specs


@st.composite
def seeded_script_blocks(draw: st.DrawFn, max_txs: int = 500, max_behaviours: int = 1) -> Block:
    """Large blocks (up to ``max_txs``) generated from drawn parameters and a drawn seed."""
    universe = draw(st.integers(2, 200))
    hot = draw(st.sampled_from([0, 0, 1, 2]))
    senders = draw(st.integers(1, 200))
    n = draw(st.integers(1, max_txs))
    seed = draw(st.integers(0, 2**32))
    rnd = random.Random(seed)
    specs = random_specs(rnd, n, universe, hot, senders, max_behaviours)
    return build_block(universe, _initial_state(rnd, universe), specs)


# -- native-token transfers (reference executor) -------------------------------------------------
MINT_AUTHORITY = 0  # sender index whose public key is the mint authority's


def reference_executor() -> ReferenceExecutor:
    """Executor factory: the reference executor with the test mint authority."""
    return ReferenceExecutor(sender_address(MINT_AUTHORITY))


def transfer_tx(
    sender: int, nonce: int, to: int, amount: int, declare_to: bool, method: str = "transfer"
) -> Transaction:
    frm, dst = sender_address(sender), sender_address(to)
    ws = [keys.balance_key(dst)] if declare_to else []
    if method == "transfer":
        ws.append(keys.balance_key(frm))
    return Transaction(
        chain_id=CTX.chain_id, nonce=nonce, to=keys.NATIVE_TOKEN, method=method,
        args=dst + pack_u64(amount), read_set=(), write_set=tuple(dict.fromkeys(ws)),
        gas_limit=100_000, public_key=public_key(sender), signature=bytes(64),
    )


@st.composite
def transfer_blocks(
    draw: st.DrawFn, max_txs: int = 500
) -> tuple[dict[bytes, bytes | None], list[Transaction]]:
    """Transfers and mints over 2..200 accounts: reverts (insufficient balance, unauthorised
    mint), undeclared receivers, hot accounts. Large blocks come from a drawn seed."""
    accounts = draw(st.integers(2, 200))
    n = draw(st.integers(1, max_txs))
    rnd = random.Random(draw(st.integers(0, 2**32)))
    hot = draw(st.booleans())
    state: dict[bytes, bytes | None] = {
        keys.balance_key(sender_address(a)): pack_u64(rnd.randrange(0, 1000))
        for a in range(accounts)
    }
    nonces = [0] * accounts
    txs = []
    for _ in range(n):
        s = rnd.randrange(accounts)
        t = 1 if hot and rnd.random() < 0.7 else rnd.randrange(accounts)
        method = "mint" if rnd.random() < 0.05 else "transfer"
        txs.append(transfer_tx(s, nonces[s], t, rnd.randrange(0, 400), rnd.random() > 0.03, method))
        nonces[s] += 1
    return state, txs


# -- comparison ----------------------------------------------------------------------------------
def assert_same(expected: BlockExecution, got: BlockExecution, label: str) -> None:
    """Outcomes (status, return data, events, gas, writes, reads, reason), receipts' bytes and
    the net write set must equal the baseline's."""
    assert len(got.outcomes) == len(expected.outcomes), f"{label}: outcome count differs"
    for i, (a, b) in enumerate(zip(expected.outcomes, got.outcomes, strict=True)):
        if a != b:
            raise AssertionError(f"{label}: tx {i} differs\n  serial: {a}\n  got:    {b}")
        ra = Receipt.from_outcome(b"\x00" * 32, CTX.number, i, a).encode()
        rb = Receipt.from_outcome(b"\x00" * 32, CTX.number, i, b).encode()
        assert ra == rb, f"{label}: receipt {i} bytes differ"
    assert dict(got.writes) == dict(expected.writes), f"{label}: net write set differs"
    assert got.stats.txs == len(got.outcomes)
    assert got.stats.executions >= got.stats.txs
