"""Property tests on the RISC-V VM: blocks calling the real contracts, every strategy vs Serial.

Contracts (contracts/build): the native token (transfers, mints, insufficient balance), the
counter (increments on hot or spread slots), ``faults`` (arbitrary slot writes and deletes,
write-then-revert, a guest fault) and ``compute`` (hash loops; a low gas limit runs out of gas).
Some transactions leave a key undeclared. Skipped when unicorn or the ELFs are unavailable.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sched_model import CTX, DictState, assert_same, public_key, sender_address

from node.core import keys
from node.core.codec import pack_u64
from node.core.execution import BlockExecutor, StateReader, TxExecutor
from node.core.tx import Transaction
from node.scheduler.objectdag import SuiObjectDAG
from node.scheduler.registry import create
from node.scheduler.sealevel import SolanaParallel
from node.scheduler.serial import Serial

pytest.importorskip("unicorn")

COMPUTE = bytes(19) + b"\x13"
FAULTS = bytes(19) + b"\x14"
_PROGRAMS: dict[bytes, object] = {}


def resolver(address: bytes, _state: StateReader) -> object:
    if not _PROGRAMS:
        from node.vm.elf import prepare
        from node.vm.genesis import contract_elf, genesis_contracts

        for addr, elf in genesis_contracts(sender_address(0)):
            _PROGRAMS[addr] = prepare(elf)
        _PROGRAMS[COMPUTE] = prepare(contract_elf("compute"))
        _PROGRAMS[FAULTS] = prepare(contract_elf("faults"))
    return _PROGRAMS.get(address)


def vm_factory() -> TxExecutor:
    from node.vm.runtime import VmExecutor

    return VmExecutor(resolver, max_instances=8)  # type: ignore[arg-type]


try:
    resolver(keys.NATIVE_TOKEN, DictState())
    VM: TxExecutor = vm_factory()
except Exception as e:  # no ELFs, or unicorn cannot start here
    pytest.skip(f"VM unavailable: {e}", allow_module_level=True)


def _tx(
    sender: int,
    nonce: int,
    to: bytes,
    method: str,
    args: bytes,
    writes: list[bytes],
    gas: int = 1_000_000,
) -> Transaction:
    return Transaction(
        chain_id=CTX.chain_id, nonce=nonce, to=to, method=method, args=args, read_set=(),
        write_set=tuple(dict.fromkeys(writes)), gas_limit=gas, public_key=public_key(sender),
        signature=bytes(64),
    )


@st.composite
def vm_blocks(
    draw: st.DrawFn, max_txs: int = 300
) -> tuple[dict[bytes, bytes | None], list[Transaction]]:
    accounts = draw(st.integers(2, 200))
    n = draw(st.integers(1, max_txs))
    slots = draw(st.integers(2, 200))
    rnd = random.Random(draw(st.integers(0, 2**32)))
    state: dict[bytes, bytes | None] = {
        keys.balance_key(sender_address(a)): pack_u64(rnd.randrange(0, 1000))
        for a in range(accounts)
    }
    nonces = [0] * accounts
    txs: list[Transaction] = []
    for _ in range(n):
        s = rnd.randrange(accounts)
        declare = rnd.random() > 0.04  # else one key is left undeclared
        slot = b"s" + bytes(
            [rnd.randrange(min(slots, 4))] if rnd.random() < 0.4 else [rnd.randrange(slots)]
        )
        kind = rnd.random()
        if kind < 0.35:
            t = rnd.randrange(accounts)
            method = "mint" if rnd.random() < 0.05 else "transfer"
            ws = [keys.balance_key(sender_address(t))] if declare else []
            if method == "transfer":
                ws.append(keys.balance_key(sender_address(s)))
            tx = _tx(
                s,
                nonces[s],
                keys.NATIVE_TOKEN,
                method,
                sender_address(t) + pack_u64(rnd.randrange(400)),
                ws,
            )
        elif kind < 0.6:
            ws = [keys.storage_key(keys.COUNTER_DEMO, slot)] if declare else []
            tx = _tx(
                s,
                nonces[s],
                keys.COUNTER_DEMO,
                "increment",
                slot + pack_u64(rnd.randrange(1, 9)),
                ws,
            )
        elif kind < 0.75:
            ws = [keys.storage_key(FAULTS, slot)] if declare else []
            value = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 9)))
            tx = _tx(s, nonces[s], FAULTS, "put", bytes([len(slot)]) + slot + value, ws)
        elif kind < 0.82:
            ws = [keys.storage_key(FAULTS, slot)] if declare else []
            tx = _tx(s, nonces[s], FAULTS, "del", slot, ws)
        elif kind < 0.87:
            tx = _tx(
                s, nonces[s], FAULTS, "write_then_revert", b"v", [keys.storage_key(FAULTS, b"k")]
            )
        elif kind < 0.9:
            tx = _tx(s, nonces[s], FAULTS, "bad_pointer", b"", [])
        else:
            gas = rnd.choice([1_000_000, 1_000_000, 5_000])
            tx = _tx(s, nonces[s], COMPUTE, "hash_loop", pack_u64(rnd.randrange(1, 3000)), [], gas)
        nonces[s] += 1
        txs.append(tx)
    return state, txs


@pytest.fixture(scope="module")
def vm_fleet() -> Iterator[list[tuple[str, int, BlockExecutor]]]:
    fleet: list[tuple[str, int, BlockExecutor]] = [
        (name, w, create(name, VM, w))
        for name in ("SolanaParallel", "AptosBlockSTM", "SuiObjectDAG")
        for w in (1, 2, 4, 8)
    ]
    fleet += [
        (f"{cls.name}(min_chunk=1)", 2, cls(VM, 2, min_chunk=1))
        for cls in (SolanaParallel, SuiObjectDAG)
    ]
    fleet += [
        (
            f"{cls.name}/processes",
            2,
            cls(
                VM,
                2,
                executor_factory=vm_factory,
                substrate="processes",
                mp_context="fork",
                min_chunk=4,
            ),
        )
        for cls in (SolanaParallel, SuiObjectDAG)
    ]
    yield fleet
    for _, _, s in fleet:
        s.close()


@settings(
    max_examples=max(5, settings().max_examples // 5), suppress_health_check=[HealthCheck.too_slow]
)
@given(data=vm_blocks())
def test_vm_blocks_match_serial(
    data: tuple[dict[bytes, bytes | None], list[Transaction]],
    vm_fleet: list[tuple[str, int, BlockExecutor]],
) -> None:
    state_data, txs = data
    note(f"{len(txs)} txs: " + ", ".join(f"{tx.to[-1]:02x}.{tx.method}" for tx in txs[:60]))
    state = DictState(state_data)
    serial = Serial(VM).execute_block(txs, state, CTX)
    statuses = {o.status for o in serial.outcomes}
    note(f"statuses: {sorted(s.name for s in statuses)}")
    for name, w, strategy in vm_fleet:
        assert_same(serial, strategy.execute_block(txs, state, CTX), f"VM {name} workers={w}")
