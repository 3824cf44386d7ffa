"""What executing a transaction produces, and the interfaces executors and schedulers implement.

Two seams:

* :class:`TxExecutor` runs **one** transaction against a :class:`StateReader` and returns a
  :class:`TxOutcome` (data, never an exception: reverts, faults and out-of-gas are outcomes).
  The Python reference executor and the RISC-V VM implement it.
* :class:`BlockExecutor` (a scheduler strategy) runs an ordered block of transactions through a
  ``TxExecutor`` and returns a :class:`BlockExecution`: receipts in block order, the block's net
  write set, and stats. Every strategy must produce byte-identical receipts and writes to the
  Serial reference.

Access rules shared by all executors: a transaction may read only ``tx.declared_reads()`` and
write only ``tx.declared_writes()``; touching any other key ends it with status
``UNDECLARED_ACCESS`` (writes discarded, gas as charged so far), identically under every strategy.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from node.core.codec import Reader, Writer
from node.core.tx import Transaction


class TxStatus(enum.IntEnum):
    """Receipt status. Only SUCCESS commits the transaction's writes (the nonce always moves)."""

    SUCCESS = 1
    REVERT = 2  # the contract reverted (reason in the receipt)
    OUT_OF_GAS = 3
    FAULT = 4  # guest fault: bad pointer, illegal instruction, ...
    UNDECLARED_ACCESS = 5  # touched a key outside its declared read/write sets
    INVALID = 6  # nonce mismatch or unknown contract at execution time; nonce does not move


@dataclass(frozen=True, slots=True)
class Event:
    """A contract event (an Ethereum log): emitting contract, up to 4 32-byte topics, data."""

    address: bytes
    topics: tuple[bytes, ...]
    data: bytes

    def write(self, w: Writer) -> None:
        w.raw(self.address).bytes_list(self.topics).bytes_(self.data)

    @staticmethod
    def read(r: Reader) -> Event:
        return Event(
            r.raw(20, "event.address"), r.bytes_list("event.topics", 4, 32), r.bytes_("event.data")
        )


@dataclass(frozen=True, slots=True)
class BlockContext:
    """Facts about the block being executed, visible to contracts."""

    number: int
    timestamp_ms: int
    chain_id: int


#: A write set: key -> new value, or ``None`` for a delete.
WriteSet = Mapping[bytes, bytes | None]


@dataclass(frozen=True, slots=True)
class TxOutcome:
    """The result of executing one transaction, as data.

    ``writes`` holds the writes to commit (empty unless SUCCESS, except the nonce bump, which the
    executor includes for every status but INVALID). ``reads`` lists every key the execution read
    (in first-read order), which optimistic schedulers use to validate.
    """

    status: TxStatus
    gas_used: int
    return_data: bytes = b""
    events: tuple[Event, ...] = ()
    writes: WriteSet = field(default_factory=dict)
    reads: tuple[bytes, ...] = ()
    reason: str = ""


class StateReader(Protocol):
    """Read access to state: returns the value, or ``None`` when absent."""

    def get(self, key: bytes) -> bytes | None: ...


class TxExecutor(Protocol):
    """Runs one transaction. Must be deterministic: same tx, same state, same context, same outcome.

    Implementations must be safe to call from several threads on distinct transactions, or say
    otherwise in their docstring.
    """

    def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome: ...


@dataclass(frozen=True, slots=True)
class Receipt:
    """A transaction's receipt as stored and served; canonical encoding for the receipts root."""

    tx_hash: bytes
    block_number: int
    index: int
    status: TxStatus
    gas_used: int
    return_data: bytes
    events: tuple[Event, ...]
    reason: str

    def encode(self) -> bytes:
        """The canonical encoding (what ``receipts_root`` commits to): tx hash, block number,
        index, then the body (:meth:`encode_body`)."""
        w = Writer().raw(self.tx_hash).u64(self.block_number).u32(self.index)
        return w.finish() + self.encode_body()

    def encode_body(self) -> bytes:
        """What the execution produced, without where it sits in the chain: status, gas used,
        return data, events, reason. Equal on every node that executed the transaction the same
        way, whatever block number or position it got (the execution digest hashes it)."""
        w = Writer().u8(self.status).u64(self.gas_used).bytes_(self.return_data)
        w.u32(len(self.events))
        for ev in self.events:
            ev.write(w)
        return w.str_(self.reason).finish()

    @staticmethod
    def decode(raw: bytes) -> Receipt:
        r = Reader(raw)
        tx_hash = r.raw(32, "tx_hash")
        number = r.u64("block_number")
        index = r.u32("index")
        status = TxStatus(r.u8("status"))
        gas = r.u64("gas_used")
        ret = r.bytes_("return_data")
        events = tuple(Event.read(r) for _ in range(r.u32("events")))
        reason = r.str_("reason")
        r.end()
        return Receipt(tx_hash, number, index, status, gas, ret, events, reason)

    @staticmethod
    def from_outcome(tx_hash: bytes, number: int, index: int, o: TxOutcome) -> Receipt:
        return Receipt(
            tx_hash, number, index, o.status, o.gas_used, o.return_data, o.events, o.reason
        )


#: Values of :attr:`BlockStats.path`.
PATH_IN_ORDER = "in-order"
PATH_STRATEGY = "strategy"
PATH_CONTENTION_FALLBACK = "contention-fallback"
PATH_GUARD_RERUN = "guard-rerun"
PATHS = (PATH_IN_ORDER, PATH_STRATEGY, PATH_CONTENTION_FALLBACK, PATH_GUARD_RERUN)


@dataclass(slots=True)
class BlockStats:
    """How a block was executed. Timing fields are measurements (not part of consensus data)."""

    strategy: str = "Serial"
    workers: int = 1
    txs: int = 0
    exec_seconds: float = 0.0  # wall time of execute_block
    serial_equivalent_seconds: float = 0.0  # sum of per-transaction execution times
    executions: int = 0  # transaction executions incl. re-executions
    aborts: int = 0  # Block-STM aborted incarnations
    deferrals: int = 0  # Sealevel transactions deferred to a later batch
    dag_depth: int = 0
    dag_width: int = 0
    sequential_fallback: bool = False  # Block-STM gave up under full contention and ran in order
    #: The adaptive gate's choice for this block (node.scheduler.adaptive): "parallel" or
    #: "sequential"; "" when the strategy is not gated (Serial, or adaptive = false).
    mode: str = ""
    gain: float = (
        0.0  # measured speed of the parallel path vs block order in this block (0: not measured)
    )
    #: The code path that produced the outcomes: ``in-order`` (Serial, or the gate chose block
    #: order), ``strategy`` (the strategy's algorithm; where it ran is in ``worker_txs``),
    #: ``contention-fallback`` (Block-STM abandoned speculation and re-ran the block in order),
    #: ``guard-rerun`` (Sealevel/DAG re-ran the block in order after an undeclared access).
    path: str = PATH_IN_ORDER
    #: Transaction executions (re-executions included) per worker: index 0 is the coordinator
    #: (the thread that called ``execute_block``), 1.. the strategy's worker threads or
    #: processes. Sums to ``executions``. An entry beyond 0 is non-zero exactly when a worker ran
    #: transactions in this block.
    worker_txs: list[int] = field(default_factory=list)
    #: Units of work handed to workers other than the coordinator (Sealevel/DAG: chunks started
    #: on a worker thread or process; Block-STM: worker-thread runs that executed at least one
    #: incarnation). 0 when everything ran on the coordinator.
    chunks: int = 0
    #: Transactions a worker process handed back to the coordinator (it read a key it was not
    #: shipped, or the executor raised); the coordinator ran them itself.
    handed_back: int = 0

    @property
    def parallel_efficiency(self) -> float:
        denom = self.exec_seconds * max(1, self.workers)
        return self.serial_equivalent_seconds / denom if denom > 0 else 0.0

    @property
    def conflict_rate(self) -> float:
        return (self.aborts + self.deferrals) / self.txs if self.txs else 0.0

    @property
    def re_executions(self) -> int:
        return max(0, self.executions - self.txs)

    def as_dict(self) -> dict[str, object]:
        return {
            "strategy": self.strategy,
            "workers": self.workers,
            "txs": self.txs,
            "execSeconds": round(self.exec_seconds, 6),
            "parallelEfficiency": round(self.parallel_efficiency, 4),
            "conflictRate": round(self.conflict_rate, 4),
            "reExecutions": self.re_executions,
            "aborts": self.aborts,
            "deferrals": self.deferrals,
            "dagDepth": self.dag_depth,
            "dagWidth": self.dag_width,
            "sequentialFallback": self.sequential_fallback,
            "mode": self.mode,
            "gain": round(self.gain, 4),
            "path": self.path,
            "workerTxs": list(self.worker_txs) or [self.executions],
            "chunks": self.chunks,
            "handedBack": self.handed_back,
        }


@dataclass(frozen=True, slots=True)
class BlockExecution:
    """Output of a :class:`BlockExecutor`: one outcome per transaction in block order, the net
    write set of the whole block (later writes win), and stats."""

    outcomes: tuple[TxOutcome, ...]
    writes: WriteSet
    stats: BlockStats


class BlockExecutor(Protocol):
    """A scheduler strategy. ``execute_block`` must equal Serial's result byte for byte."""

    name: str

    def execute_block(
        self, txs: Sequence[Transaction], state: StateReader, ctx: BlockContext
    ) -> BlockExecution: ...

    def close(self) -> None:
        """Release workers (threads, processes)."""
        ...

