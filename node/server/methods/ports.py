"""What each method group needs from the rest of the node, as narrow ``Protocol`` types.

The node passes its real parts (the chain store, the mempool, the block-production loop, the L1
service, the VM); tests pass small fakes. A group never sees the node itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Mapping, Sequence
from typing import Any, Protocol

from node.core.block import BlockHeader
from node.core.errors import NodeError
from node.core.execution import BlockContext, Receipt, StateReader, TxOutcome
from node.core.tx import Transaction
from node.state.chain_store import StoredReceipt, TxLocation
from node.vm.program import Program


class LatestState(Protocol):
    """The head block and the latest committed state."""

    @property
    def head(self) -> BlockHeader | None: ...

    def get(self, key: bytes) -> bytes | None:
        """A committed state value, or None."""
        ...


class ChainReads(LatestState, Protocol):
    """Committed chain data (``node.state.chain_store.ChainStore``)."""

    def header(self, number: int) -> BlockHeader | None: ...

    def number_of(self, block_hash: bytes) -> int | None: ...

    def block_tx_hashes(self, number: int) -> list[bytes]: ...

    def block_stats(self, number: int) -> bytes | None:
        """The block's execution stats as stored (JSON bytes), or None."""
        ...

    def tx_location(self, tx_hash: bytes) -> TxLocation | None: ...

    def receipt(self, tx_hash: bytes) -> Receipt | None: ...

    def stored_receipt(self, tx_hash: bytes) -> StoredReceipt | None:
        """A receipt with its transaction, cumulative gas and first log index (constant cost)."""
        ...

    def block_receipts(self, number: int) -> list[StoredReceipt] | None:
        """Every receipt of a block in order (cost linear in its size); None: no such block."""
        ...

    def execution_digest(self, number: int) -> bytes | None:
        """The block's execution digest (``node.core.block.execution_digest``)."""
        ...


class PendingView(Protocol):
    """What read methods need of the mempool: pending transactions and nonces."""

    def get(self, tx_hash: bytes) -> Transaction | None: ...

    def next_nonce(self, sender: bytes) -> int:
        """The nonce the sender's next transaction must carry (pending ones counted)."""
        ...

    def committed_nonce(self, sender: bytes) -> int: ...


class Admission(Protocol):
    """Mempool admission (``node.chain.mempool.Mempool``)."""

    async def asubmit_tx(self, tx: Transaction) -> bytes:
        """Admit ``tx``; returns its hash once durable. Raises ``InvalidTransaction`` (-32003,
        with its cause), ``LimitExceeded`` (-32005) or ``StorageError`` (-32020)."""
        ...

    async def asubmit_many(
        self, txs: Sequence[Transaction | NodeError], *, signatures_checked: bool = False
    ) -> list[bytes | NodeError]:
        """Admit ``txs`` in order, all accepted ones durable in one write before returning;
        per item the hash or the error that refused it."""
        ...

    def __len__(self) -> int: ...


class ProductionControl(Protocol):
    """Pausing and resuming block production (``node.server.production.BlockProduction``)."""

    @property
    def paused(self) -> bool: ...

    async def pause(self) -> BlockHeader | None:
        """Returns the last committed block once no block is being built: none appears until
        :meth:`resume`."""
        ...

    def queued_deploys(self) -> list[dict[str, Any]]:
        """Scheduled system writes (deploys) that no block has taken yet."""
        ...

    def resume(self) -> None: ...


class StatusSource(Protocol):
    """The node's status document (``node.server.status.NodeStatus``)."""

    def status(self) -> dict[str, Any]: ...


class CodeLoader(Protocol):
    """Contract verification and its cache (``node.loader.loader.Loader``)."""

    def deploy_check(self, code: bytes) -> Program:
        """Verify ``code``; raises ``CodeRejected`` (-32602) naming the problem."""
        ...

    def invalidate(self, address: bytes | None = None) -> None: ...


class ReadOnlyCalls(Protocol):
    """Read-only contract execution (``node.vm.runtime.VmExecutor.call``)."""

    def call(
        self,
        to: bytes,
        method: str,
        args: bytes,
        state: StateReader,
        ctx: BlockContext,
        *,
        caller: bytes,
        gas_limit: int,
    ) -> TxOutcome: ...


class SystemWrites(Protocol):
    """State writes applied by the node itself at the start of the next block."""

    def schedule_system_write(
        self, writes: Mapping[bytes, bytes | None], info: Mapping[str, Any] | None = None
    ) -> Awaitable[int | None]:
        """Apply ``writes`` at the start of the next block; resolves to that block's number once
        it is committed, or to None at once when production is paused (the writes stay queued,
        described by ``info``, and land in the first block after the resume)."""
        ...


class L1Heads(Protocol):
    """The followed L1 chains (``node.server.l1.L1Service``)."""

    @property
    def chains(self) -> Collection[str]:
        """Names of the followed chains (``ethereum``, ``sui``)."""
        ...

    def heads(self) -> dict[str, dict[str, object] | None]:
        """Per followed chain: ``{number, hash, timestampMs}`` of its head, or None."""
        ...
