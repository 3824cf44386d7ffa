"""The Python reference executor: the system contracts implemented in plain Python.

Slow and obviously correct. It implements :class:`~node.core.execution.TxExecutor` for the
native token (``keys.NATIVE_TOKEN``) and the counter demo (``keys.COUNTER_DEMO``), with the same
nonce rule, access rules and outcome type as the RISC-V runtime, and serves as the oracle in
differential tests.

Native token (balances are u64 big-endian under ``balance_key(owner)``; methods take packed args):

* ``transfer(to: 20 bytes, amount: u64)`` - reverts "insufficient balance";
* ``mint(to: 20 bytes, amount: u64)`` - only the mint authority (``MINT_AUTHORITY``) may call it;
* ``balance_of(owner: 20 bytes) -> u64``.

Counter demo: ``increment(slot: 1..32 bytes, delta: u64)`` adds to a u64 counter and returns it;
``get(slot) -> u64``.
"""

from __future__ import annotations

from node.core import keys
from node.core.access import TxState, UndeclaredAccess
from node.core.codec import pack_u64, unpack_u64
from node.core.execution import BlockContext, Event, StateReader, TxOutcome, TxStatus
from node.core.tx import Transaction

# Gas schedule (documented constants; the RISC-V runtime charges the same syscall costs).
GAS_TX_BASE = 1_000
GAS_STORAGE_READ = 200
GAS_STORAGE_WRITE = 500
GAS_EVENT = 300

#: Address allowed to mint the native token (derived from the well-known dev seed, see
#: :func:`node.core.tx.Signer.from_seed` with ``b"mint-authority"``).
MINT_AUTHORITY_SEED = b"mint-authority"

TRANSFER_TOPIC = bytes.fromhex("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")


class _Revert(Exception):
    pass


class _OutOfGas(Exception):
    pass


class _Meter:
    __slots__ = ("left", "used")

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.used = 0

    def charge(self, n: int) -> None:
        if n > self.left:
            self.used += self.left
            self.left = 0
            raise _OutOfGas()
        self.left -= n
        self.used += n


class ReferenceExecutor:
    """Executes transactions against the Python system contracts. Thread-safe (no shared state)."""

    def __init__(self, mint_authority: bytes) -> None:
        self.mint_authority = mint_authority

    def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
        # NONCE: checked and bumped outside the transaction's own writes; INVALID moves nothing.
        nkey = keys.nonce_key(tx.sender)
        current = unpack_u64(state.get(nkey))
        if tx.nonce != current:
            return TxOutcome(
                TxStatus.INVALID, 0, reads=(nkey,), reason=f"nonce mismatch: expected {current}"
            )
        nonce_write = {nkey: pack_u64(current + 1)}
        tx_state = TxState(state, tx.declared_reads(), tx.declared_writes())
        tx_state.reads[nkey] = None
        meter = _Meter(tx.gas_limit)
        events: list[Event] = []
        try:
            meter.charge(GAS_TX_BASE)
            ret = self._dispatch(tx, tx_state, meter, events)
        except _Revert as e:
            return TxOutcome(
                TxStatus.REVERT,
                meter.used,
                writes=nonce_write,
                reads=tuple(tx_state.reads),
                reason=str(e),
            )
        except _OutOfGas:
            return TxOutcome(
                TxStatus.OUT_OF_GAS,
                meter.used,
                writes=nonce_write,
                reads=tuple(tx_state.reads),
                reason="out of gas",
            )
        except UndeclaredAccess as e:
            return TxOutcome(
                TxStatus.UNDECLARED_ACCESS,
                meter.used,
                writes=nonce_write,
                reads=tuple(tx_state.reads),
                reason=str(e),
            )
        writes = dict(tx_state.writes)
        writes.update(nonce_write)
        return TxOutcome(
            TxStatus.SUCCESS, meter.used, ret, tuple(events), writes, tuple(tx_state.reads)
        )

    # -- contracts ------------------------------------------------------------------------
    def _dispatch(
        self, tx: Transaction, tx_state: TxState, meter: _Meter, events: list[Event]
    ) -> bytes:
        if tx.to == keys.NATIVE_TOKEN:
            return self._token(tx, tx_state, meter, events)
        if tx.to == keys.COUNTER_DEMO:
            return self._counter(tx, tx_state, meter)
        raise _Revert(f"no contract at 0x{tx.to.hex()}")

    def _read(self, tx_state: TxState, meter: _Meter, key: bytes) -> bytes | None:
        meter.charge(GAS_STORAGE_READ)
        return tx_state.get(key)

    def _write(self, tx_state: TxState, meter: _Meter, key: bytes, value: bytes) -> None:
        meter.charge(GAS_STORAGE_WRITE)
        tx_state.put(key, value)

    def _token(
        self, tx: Transaction, tx_state: TxState, meter: _Meter, events: list[Event]
    ) -> bytes:
        a = tx.args
        if tx.method in ("transfer", "mint"):
            if len(a) != 28:
                raise _Revert(f"{tx.method}: args must be to(20) + amount(u64)")
            to, amount = a[:20], unpack_u64(a[20:])
            if tx.method == "mint":
                if tx.sender != self.mint_authority:
                    raise _Revert("mint: caller is not the mint authority")
                frm = bytes(20)
            else:
                frm = tx.sender
                fkey = keys.balance_key(frm)
                fbal = unpack_u64(self._read(tx_state, meter, fkey))
                if fbal < amount:
                    raise _Revert("insufficient balance")
                self._write(tx_state, meter, fkey, pack_u64(fbal - amount))
            tkey = keys.balance_key(to)
            tbal = unpack_u64(self._read(tx_state, meter, tkey))
            if tbal + amount >= 2**64:
                raise _Revert("balance overflow")
            self._write(tx_state, meter, tkey, pack_u64(tbal + amount))
            meter.charge(GAS_EVENT)
            events.append(
                Event(
                    keys.NATIVE_TOKEN,
                    (TRANSFER_TOPIC, bytes(12) + frm, bytes(12) + to),
                    pack_u64(amount),
                )
            )
            return b""
        if tx.method == "balance_of":
            if len(a) != 20:
                raise _Revert("balance_of: args must be owner(20)")
            return pack_u64(unpack_u64(self._read(tx_state, meter, keys.balance_key(a))))
        raise _Revert(f"unknown method {tx.method!r}")

    def _counter(self, tx: Transaction, tx_state: TxState, meter: _Meter) -> bytes:
        a = tx.args
        if tx.method == "increment":
            if not 9 <= len(a) <= 40:
                raise _Revert("increment: args must be slot(1..32) + delta(u64)")
            key = keys.storage_key(keys.COUNTER_DEMO, a[:-8])
            v = (unpack_u64(self._read(tx_state, meter, key)) + unpack_u64(a[-8:])) % 2**64
            self._write(tx_state, meter, key, pack_u64(v))
            return pack_u64(v)
        if tx.method == "get":
            if not 1 <= len(a) <= 32:
                raise _Revert("get: args must be slot(1..32)")
            return pack_u64(
                unpack_u64(self._read(tx_state, meter, keys.storage_key(keys.COUNTER_DEMO, a)))
            )
        raise _Revert(f"unknown method {tx.method!r}")
