"""The VM stack built from the config: the transaction executor (CkbVM on unicorn, or the Python
reference), the loader with its persistent compile cache, and the genesis contracts.

The VM is a property of the chain: it is recorded at genesis and a node refuses to start an
existing chain with a different ``[vm] default_vm`` (the system contracts would be missing or
differ), with an error saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from node.config import Config
from node.core import keys
from node.core.codec import pack_u64
from node.core.errors import ConfigError
from node.core.execution import StateReader, TxExecutor
from node.core.tx import Signer
from node.loader.loader import Loader
from node.server.l1 import L1AwareResolver
from node.state.chain_store import ChainStore
from node.vm.program import Program
from node.vm.reference import MINT_AUTHORITY_SEED, ReferenceExecutor

if TYPE_CHECKING:
    from node.vm.runtime import VmExecutor

log = logging.getLogger("node.vm")


class CodeCache:
    """The loader's persistent cache over the chain store's auxiliary (non-consensus) keyspace."""

    def __init__(self, store: ChainStore) -> None:
        self.store = store

    def get(self, key: bytes) -> bytes | None:
        return self.store.aux_get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.store.aux_put(key, value)


def mint_authority(cfg: Config) -> bytes:
    a = cfg.node.mint_authority
    return bytes.fromhex(a[2:]) if a else Signer.from_seed(MINT_AUTHORITY_SEED).address


@dataclass(frozen=True)
class VmWorkerFactory:
    """Builds the RISC-V executor inside a scheduler worker process (picklable).

    A worker sees only the values shipped with each transaction (its declared keys and its
    target's code key). Code the worker cannot find is not guessed at: the resolver raises, and
    the scheduler hands that transaction back to the node's own executor, whose resolver knows
    about L1 loading failures, so receipts are identical whatever the substrate."""

    max_instances: int

    def __call__(self) -> TxExecutor:
        from node.vm.runtime import VmExecutor

        loader = Loader(None)

        def resolve(address: bytes, state: StateReader) -> Program:
            program = loader.load(address, state)
            if program is None:
                raise LookupError("no code shipped to this worker; the coordinator runs it")
            return program

        return VmExecutor(resolve, max_instances=self.max_instances)


@dataclass(frozen=True)
class ReferenceWorkerFactory:
    """Builds the Python reference executor inside a scheduler worker process (picklable)."""

    mint_authority: bytes

    def __call__(self) -> TxExecutor:
        return ReferenceExecutor(self.mint_authority)


@dataclass
class VmStack:
    """``vm_executor`` (read-only calls), ``loader`` and ``resolver`` are None on the Python
    reference; ``self_test`` is the RISC-V VM's start-up self-test report."""

    vm: str
    executor: TxExecutor
    loader: Loader | None
    resolver: L1AwareResolver | None
    worker_factory: Callable[[], TxExecutor]
    genesis: dict[bytes, bytes | None]
    self_test: dict[str, Any]
    vm_executor: VmExecutor | None = None


def build_vm_stack(cfg: Config, store: ChainStore) -> VmStack:
    """Build the executor named by ``[vm] default_vm``; runs the VM self-test (raises
    ``SelfTestFailed`` when unicorn no longer behaves as the runtime relies on)."""
    recorded = store.param("vm")
    if recorded is not None and recorded.decode() != cfg.vm.default_vm:
        raise ConfigError(
            [
                (
                    "vm.default_vm",
                    f"this chain was created with {recorded.decode()!r}; a node cannot switch VMs "
                    f"on an existing chain (use a new [state] path)",
                )
            ],
        )
    authority = mint_authority(cfg)
    genesis: dict[bytes, bytes | None] = {}
    for addr, amount in sorted(cfg.node.genesis_balances.items()):
        genesis[keys.balance_key(bytes.fromhex(addr[2:]))] = pack_u64(amount)
    if cfg.vm.default_vm == "Reference":
        return VmStack("Reference", ReferenceExecutor(authority), None, None,
                       ReferenceWorkerFactory(authority), genesis, {})
    from node.vm.genesis import genesis_contracts
    from node.vm.runtime import VmExecutor, startup_self_test

    report = startup_self_test()
    loader = Loader(CodeCache(store))
    resolver = L1AwareResolver(loader.load)
    executor = VmExecutor(resolver, max_instances=cfg.vm.max_instances)
    for contract, elf in genesis_contracts(authority):
        genesis[keys.code_key(contract)] = elf
    return VmStack(
        "CkbVM",
        executor,
        loader,
        resolver,
        VmWorkerFactory(cfg.vm.max_instances),
        genesis,
        report,
        vm_executor=executor,
    )
