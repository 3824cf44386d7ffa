"""Helpers and fixtures for the VM tests: prepared contracts, a dict-backed state, signed-tx
helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from node.core import keys
from node.core.codec import pack_u64
from node.core.execution import BlockContext, TxOutcome
from node.core.tx import Signer, Transaction, sign_tx
from node.vm.elf import prepare
from node.vm.genesis import contract_elf, default_mint_authority, genesis_contracts
from node.vm.program import Program
from node.vm.runtime import VmExecutor

CHAIN = 7
CTX = BlockContext(number=5, timestamp_ms=1_700_000_000_000, chain_id=CHAIN)

ERC20 = bytes(19) + b"\x10"
OBJECTS = bytes(19) + b"\x11"
HOTSPOT = bytes(19) + b"\x12"
COMPUTE = bytes(19) + b"\x13"
FAULTS = bytes(19) + b"\x14"

EXTRA = {
    ERC20: "erc20",
    OBJECTS: "objects",
    HOTSPOT: "hotspot",
    COMPUTE: "compute",
    FAULTS: "faults",
}


def u64(v: int) -> bytes:
    return pack_u64(v)


class DictState:
    """A StateReader over a dict, with ``apply`` for committing outcomes."""

    def __init__(self, data: dict[bytes, bytes] | None = None) -> None:
        self.data: dict[bytes, bytes] = dict(data or {})

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def apply(self, o: TxOutcome) -> None:
        for k, v in o.writes.items():
            if v is None:
                self.data.pop(k, None)
            else:
                self.data[k] = v


_PROGRAMS: dict[bytes, Program] = {}


def programs() -> dict[bytes, Program]:
    if not _PROGRAMS:
        for addr, elf in genesis_contracts():
            _PROGRAMS[addr] = prepare(elf)
        for addr, name in EXTRA.items():
            _PROGRAMS[addr] = prepare(contract_elf(name))
    return _PROGRAMS


def resolver(addr: bytes, _state: object) -> Program | None:
    return programs().get(addr)


@pytest.fixture(scope="session")
def vm() -> Iterator[VmExecutor]:
    ex = VmExecutor(resolver, max_instances=16)
    yield ex
    ex.close()


@pytest.fixture
def state() -> DictState:
    return DictState()


class Accounts:
    def __init__(self) -> None:
        self.authority = Signer.from_seed(b"mint-authority")
        assert self.authority.address == default_mint_authority()
        self.alice = Signer.from_seed(b"alice")
        self.bob = Signer.from_seed(b"bob")
        self.carol = Signer.from_seed(b"carol")
        self._nonces: dict[bytes, int] = {}

    def tx(
        self,
        who: Signer,
        to: bytes,
        method: str,
        args: bytes = b"",
        slots: tuple[bytes, ...] = (),
        gas: int = 1_000_000,
        nonce: int | None = None,
    ) -> Transaction:
        """A signed tx declaring ``slots`` (storage slots of ``to``) as its write set."""
        n = self._nonces.get(who.address, 0) if nonce is None else nonce
        if nonce is None:
            self._nonces[who.address] = n + 1
        return sign_tx(
            who, chain_id=CHAIN, nonce=n, to=to, method=method, args=args,
            write_set=tuple(keys.storage_key(to, s) for s in slots), gas_limit=gas,
        )


@pytest.fixture
def acct() -> Accounts:
    return Accounts()


Run = Callable[..., TxOutcome]


@pytest.fixture
def run(vm: VmExecutor, state: DictState, acct: Accounts) -> Run:
    """``run(who, to, method, args, slots, gas=...)``: sign, execute, commit, return the outcome."""

    def _run(
        who: Signer,
        to: bytes,
        method: str,
        args: bytes = b"",
        slots: tuple[bytes, ...] = (),
        **kw: int,
    ) -> TxOutcome:
        o = vm.execute(acct.tx(who, to, method, args, slots, **kw), state, CTX)
        state.apply(o)
        return o

    return _run
