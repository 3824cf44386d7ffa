"""The RISC-V VM executor: :class:`VmExecutor` implements ``TxExecutor`` over unicorn.

Wiring::

    loader = Loader(store)                         # node.loader: resolves code by address
    vm = VmExecutor(loader.load, max_instances=64) # or make_executor(...) in a worker process
    outcome = vm.execute(tx, state, ctx)           # TxOutcome, never raises for guest errors
    result = vm.call(to, method, args, state, ctx, caller=addr)   # dubhe_call (read-only)

Rules (identical to :class:`node.vm.reference.ReferenceExecutor`): a nonce mismatch is INVALID
and writes nothing; otherwise the sender's nonce bump is written for every status, and only
SUCCESS also commits the contract's writes. Storage access goes through
:class:`~node.core.access.TxState` with the transaction's declared sets (an undeclared key ends the
call with UNDECLARED_ACCESS). Gas used = ``GAS_TX_BASE`` + executed instructions + syscall gas
(including logged writes and events; :mod:`node.vm.abi`, docs/vm-abi.md); out-of-gas reports
the whole limit as used. Code is resolved through the injected resolver
(``resolver(address, state) -> Program | None``, which may raise
:class:`~node.vm.elf.ElfRejected`): no code is a REVERT "no contract at 0x..", code that does
not verify a REVERT "invalid contract code at 0x..: <why>". Contract code reads are not part of
``TxOutcome.reads`` (code changes only by deploys, which the loader tracks).

Thread-safety: one ``VmExecutor`` may be shared by many threads; each thread runs on its own
pool of warm instances (``max_instances`` per thread). For processes, build one executor per
process with :func:`make_executor` (everything it needs is picklable or rebuilt there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node.core import keys
from node.core.access import TxState
from node.core.codec import pack_u64, unpack_u64
from node.core.execution import BlockContext, StateReader, TxOutcome, TxStatus
from node.core.tx import Transaction
from node.vm import abi, gasmeter
from node.vm.elf import CodeUnavailable, ElfRejected
from node.vm.pool import WorkerPools
from node.vm.program import Program
from node.vm.syscalls import CallEnv
from node.vm.unicorn_backend import Instance

#: ``resolver(address, state) -> Program | None``: the loader's ``Loader.load`` fits.
Resolver = Callable[[bytes, StateReader], Program | None]

DEFAULT_MAX_INSTANCES = 64
#: Gas limit of read-only calls (``dubhe_call``) when the caller gives none.
DEFAULT_CALL_GAS = 10_000_000


class VmExecutor:
    """Runs transactions as RISC-V contract calls. See the module docstring for the rules.

    ``resolver`` maps a contract address to its prepared program; ``max_instances`` bounds the
    warm instances per worker thread; ``pooled=False`` builds a fresh instance for every call
    (the slow reference path of the differential tests); ``gas_meter`` is ``"auto"``,
    ``"native"`` or ``"python"`` (:mod:`node.vm.gasmeter`; gas is identical for all three).
    """

    def __init__(
        self,
        resolver: Resolver,
        *,
        max_instances: int = DEFAULT_MAX_INSTANCES,
        pooled: bool = True,
        gas_meter: str = "auto",
    ) -> None:
        self.resolver = resolver
        self.pooled = pooled
        self.meter = gasmeter.resolve_mode(gas_meter)
        self.pools = WorkerPools(max_instances, self.meter)

    # -- TxExecutor -------------------------------------------------------------------------
    def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
        sender = tx.sender
        nkey = keys.nonce_key(sender)
        raw_nonce = state.get(nkey)
        current = unpack_u64(raw_nonce)
        if tx.nonce != current:
            return TxOutcome(
                TxStatus.INVALID, 0, reads=(nkey,), reason=f"nonce mismatch: expected {current}"
            )
        nonce_write = {nkey: pack_u64(current + 1)}
        tx_state = TxState(state, tx.declared_reads(), tx.declared_writes())
        tx_state.reads[nkey] = None
        status, gas_used, ret, events, reason = self._run(
            tx.to, tx.method, tx.args, tx_state, state, ctx, sender, tx.gas_limit
        )
        if status is TxStatus.SUCCESS:
            writes = dict(tx_state.writes)
            writes.update(nonce_write)
            return TxOutcome(status, gas_used, ret, events, writes, tuple(tx_state.reads))
        return TxOutcome(
            status, gas_used, writes=nonce_write, reads=tuple(tx_state.reads), reason=reason
        )

    # -- dubhe_call -------------------------------------------------------------------------
    def call(
        self,
        to: bytes,
        method: str,
        args: bytes,
        state: StateReader,
        ctx: BlockContext,
        *,
        caller: bytes = bytes(keys.ADDRESS_LEN),
        gas_limit: int = DEFAULT_CALL_GAS,
    ) -> TxOutcome:
        """Execute ``method`` read-only (like ``eth_call``): no nonce, no declared-set
        enforcement. ``writes`` shows what the call would write; nothing is committed."""
        tx_state = TxState(state, None, None)
        status, gas_used, ret, events, reason = self._run(
            to, method, args, tx_state, state, ctx, caller, gas_limit
        )
        if status is TxStatus.SUCCESS:
            return TxOutcome(
                status, gas_used, ret, events, dict(tx_state.writes), tuple(tx_state.reads)
            )
        return TxOutcome(status, gas_used, reads=tuple(tx_state.reads), reason=reason)

    # -- shared path ------------------------------------------------------------------------
    def _run(
        self,
        to: bytes,
        method: str,
        args: bytes,
        tx_state: TxState,
        state: StateReader,
        ctx: BlockContext,
        caller: bytes,
        gas_limit: int,
    ) -> tuple[TxStatus, int, bytes, tuple[Any, ...], str]:
        if gas_limit < abi.GAS_TX_BASE:
            return TxStatus.OUT_OF_GAS, gas_limit, b"", (), "out of gas"
        try:
            program = self.resolver(to, state)
        except CodeUnavailable as e:  # the resolver could not obtain the code (e.g. a dead L1)
            return (
                TxStatus.REVERT,
                abi.GAS_TX_BASE,
                b"",
                (),
                f"contract 0x{to.hex()} is unavailable: {e}",
            )
        except ElfRejected as e:  # stored code that does not verify: the tx reverts, naming why
            return (
                TxStatus.REVERT,
                abi.GAS_TX_BASE,
                b"",
                (),
                f"invalid contract code at 0x{to.hex()}: {e}",
            )
        if program is None:
            return TxStatus.REVERT, abi.GAS_TX_BASE, b"", (), f"no contract at 0x{to.hex()}"
        entry = program.exports.get(method)
        if entry is None:
            return TxStatus.REVERT, abi.GAS_TX_BASE, b"", (), f"unknown method {method!r}"
        env = CallEnv(tx_state, to, caller, ctx, args)
        budget = gas_limit - abi.GAS_TX_BASE
        if self.pooled:
            r = self.pools.get().acquire(program).run(entry, env, budget)
        else:
            inst = Instance(program, self.meter)
            try:
                r = inst.run(entry, env, budget)
            finally:
                inst.close()
        if r.status is TxStatus.OUT_OF_GAS:
            return TxStatus.OUT_OF_GAS, gas_limit, b"", (), r.reason
        used = min(gas_limit, gas_limit - r.gas_left)
        if r.status is TxStatus.SUCCESS:
            return TxStatus.SUCCESS, used, env.return_data, tuple(env.events), ""
        return r.status, used, b"", (), r.reason

    def stats(self) -> dict[str, int]:
        """Instance-pool counters for metrics: workers, instances, created, evicted."""
        return self.pools.stats()

    def close(self) -> None:
        self.pools.close()

    def __getstate__(self) -> dict[str, Any]:
        # Pools hold unicorn engines: a copy in another process starts with empty pools.
        return {"resolver": self.resolver, "pooled": self.pooled, "meter": self.meter,
                "max_instances": self.pools.max_instances}

    def __setstate__(self, st: dict[str, Any]) -> None:
        self.resolver = st["resolver"]
        self.pooled = st["pooled"]
        self.meter = gasmeter.resolve_mode(st["meter"])
        self.pools = WorkerPools(st["max_instances"], self.meter)


def make_executor(resolver: Resolver, **kwargs: Any) -> VmExecutor:
    """Module-level factory for worker processes (``ProcessPoolExecutor(initializer=...)``)."""
    return VmExecutor(resolver, **kwargs)


def startup_self_test(gas_meter: str = "auto") -> dict[str, object]:
    """Run :func:`node.vm.unicorn_backend.self_test` with the gas meter the executor would use.
    Raises ``SelfTestFailed`` (the node must refuse to start) or ``GasMeterUnavailable``."""
    from node.vm.unicorn_backend import self_test

    return self_test(gasmeter.resolve_mode(gas_meter))
