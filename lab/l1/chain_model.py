"""The mock L1 chain model, free of I/O: blocks (checkpoints), balances, contract code, events,
finality and reorgs.

One model serves both mock chains; the wire modules (:mod:`lab.l1.eth_rpc`, :mod:`lab.l1.sui_rpc`)
only *format* it, so another surface (gRPC, GraphQL) can be added without touching it.

* A block (a Sui *checkpoint*) has a number, a 32-byte hash, its parent's hash, a timestamp and the
  transactions it includes; each transaction carries one :data:`Op`.
* State is a :class:`State` snapshot per block. Blocks without transactions share their parent's
  snapshot, so keeping one per block is cheap.
* Contracts ("code") are named modules of bytes: an Ethereum contract has one module (its RISC-V
  ELF,
  served by ``eth_getCode``); a Sui package has any number. Deploying and upgrading emit events.
* Everything random (genesis accounts, deploy addresses, block hashes) derives from ``seed``:
  the same seed and the same sequence of calls give byte-identical chains.
* Reorgs replace the last ``depth`` blocks with ``new_length`` fresh ones (different hashes). By
  default the dropped transactions are re-included in the first replacement block, as a real
  client would re-mine them; a reorg deeper than the finality depth is refused.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from node.core.codec import Writer, sha3

#: Fixed genesis time (2023-11-14T22:13:20Z); block times derive from it, never from the wall clock.
GENESIS_TIME_MS = 1_700_000_000_000
#: Native balance given to each genesis account (the default; the Sui mock gives less: a Sui coin's
#: balance is a u64).
GENESIS_BALANCE = 10**24

EventKind = Literal["CodeDeployed", "CodeUpgraded", "Transfer"]


class ChainError(ValueError):
    """A request the model cannot honour (unknown contract, reorg too deep...); names the cause."""


@dataclass(frozen=True, slots=True)
class Contract:
    """Code at an address (Ethereum) or a package lineage (Sui, keyed by its original id)."""

    address: bytes
    modules: Mapping[str, bytes]
    version: int
    code_hash: bytes
    #: Number of the block that last deployed or upgraded it.
    block_number: int


@dataclass(frozen=True, slots=True)
class Deploy:
    address: bytes
    modules: Mapping[str, bytes]


@dataclass(frozen=True, slots=True)
class Upgrade:
    address: bytes
    modules: Mapping[str, bytes]


@dataclass(frozen=True, slots=True)
class Transfer:
    sender: bytes
    to: bytes
    amount: int


Op = Deploy | Upgrade | Transfer


@dataclass(frozen=True, slots=True)
class Tx:
    hash: bytes
    sender: bytes
    nonce: int
    op: Op


@dataclass(frozen=True, slots=True)
class Event:
    """An event (Ethereum log / Sui event) emitted by a transaction in a block."""

    kind: EventKind
    emitter: bytes
    tx_hash: bytes
    tx_index: int
    #: Index of the event within its block (Ethereum ``logIndex``).
    index: int
    #: Index of the event within its transaction (Sui ``eventSeq``).
    seq: int
    sender: bytes
    fields: Mapping[str, int | bytes]


@dataclass(frozen=True, slots=True)
class State:
    balances: Mapping[bytes, int]
    nonces: Mapping[bytes, int]
    contracts: Mapping[bytes, Contract]


@dataclass(frozen=True, slots=True)
class Block:
    number: int
    hash: bytes
    parent_hash: bytes
    timestamp_ms: int
    txs: tuple[Tx, ...]
    events: tuple[Event, ...]
    state: State = field(repr=False)
    #: Which fork produced it (0 = never reorged); part of the hash so replacements differ.
    fork: int = 0


@dataclass(frozen=True, slots=True)
class Reorged:
    """Result of :meth:`Chain.reorg`: the blocks that left the canonical chain and their
    replacements."""

    fork_point: Block
    dropped: tuple[Block, ...]
    added: tuple[Block, ...]


def code_hash(modules: Mapping[str, bytes]) -> bytes:
    """SHA3-256 over the modules in name order (name, bytes), canonically encoded."""
    w = Writer().u32(len(modules))
    for name in sorted(modules):
        w.str_(name).bytes_(modules[name])
    return sha3(w.finish())


class Chain:
    """One deterministic chain. Not thread-safe; the server calls it from one event loop."""

    def __init__(
        self,
        *,
        seed: int,
        address_len: int = 20,
        block_time_ms: int = 1000,
        finality_depth: int = 64,
        genesis_accounts: int = 4,
        genesis_balance: int = GENESIS_BALANCE,
    ) -> None:
        if address_len not in (20, 32):
            raise ValueError("address_len must be 20 (Ethereum) or 32 (Sui)")
        if finality_depth < 1:
            raise ValueError("finality_depth must be >= 1")
        self.seed = seed
        self.address_len = address_len
        self.block_time_ms = max(1, block_time_ms)
        self.finality_depth = finality_depth
        self._rng = random.Random(seed)
        self.accounts: tuple[bytes, ...] = tuple(
            self._rng.randbytes(address_len) for _ in range(genesis_accounts)
        )
        genesis_state = State(
            balances={a: genesis_balance for a in self.accounts}, nonces={}, contracts={}
        )
        self._forks = 0
        self._deploys = 0
        self._pending: list[Tx] = []
        genesis = self._make_block(0, bytes(32), (), (), genesis_state, fork=0)
        self.blocks: list[Block] = [genesis]
        #: Every block ever produced, orphans included (Ethereum clients serve side blocks by hash).
        self.by_hash: dict[bytes, Block] = {genesis.hash: genesis}
        self.tx_index: dict[bytes, tuple[Block, int]] = {}

    # ------------------------------------------------------------------ queries

    @property
    def head(self) -> Block:
        return self.blocks[-1]

    @property
    def finalized(self) -> Block:
        return self.blocks[max(0, self.head.number - self.finality_depth)]

    @property
    def safe(self) -> Block:
        return self.blocks[max(0, self.head.number - self.finality_depth // 2)]

    def block_at(self, number: int) -> Block | None:
        return self.blocks[number] if 0 <= number < len(self.blocks) else None

    def is_canonical(self, block: Block) -> bool:
        b = self.block_at(block.number)
        return b is not None and b.hash == block.hash

    def contract(self, address: bytes, state: State | None = None) -> Contract | None:
        return (state or self.head.state).contracts.get(address)

    # ------------------------------------------------------------------ transactions

    def new_address(self) -> bytes:
        """A fresh deterministic contract address (seeded, independent of block timing)."""
        self._deploys += 1
        w = Writer().u64(self.seed & (2**64 - 1)).str_("deploy").u64(self._deploys)
        return sha3(w.finish())[: self.address_len]

    def next_nonce(self, sender: bytes) -> int:
        """The nonce ``sender``'s next transaction gets (pending ones counted)."""
        return sum(1 for t in self._pending if t.sender == sender) + self.head.state.nonces.get(
            sender, 0
        )

    def submit(self, op: Op, sender: bytes | None = None) -> Tx:
        """Queue ``op`` for the next block; raises :class:`ChainError` if it cannot apply there."""
        self._check(op, self._pending_state())
        sender = sender if sender is not None else self.accounts[0]
        nonce = self.next_nonce(sender)
        w = Writer().u64(self.seed & (2**64 - 1)).raw(sender).u64(nonce)
        w.str_(type(op).__name__).raw(getattr(op, "address", b"") or getattr(op, "to", b""))
        tx = Tx(sha3(w.finish()), sender, nonce, op)
        self._pending.append(tx)
        return tx

    def _pending_state(self) -> State:
        state = self.head.state
        for tx in self._pending:
            state, _ = _apply(state, tx, 0, 0, self.head.number + 1)
        return state

    def _check(self, op: Op, state: State) -> None:
        if isinstance(op, Deploy | Upgrade):
            if len(op.address) != self.address_len:
                raise ChainError(f"address must be {self.address_len} bytes")
            if not op.modules:
                raise ChainError("code must have at least one module")
            exists = op.address in state.contracts
            if isinstance(op, Deploy) and exists:
                raise ChainError(f"a contract already exists at 0x{op.address.hex()}")
            if isinstance(op, Upgrade) and not exists:
                raise ChainError(f"no contract at 0x{op.address.hex()} to upgrade")
        elif state.balances.get(op.sender, 0) < op.amount:
            raise ChainError("insufficient balance")

    # ------------------------------------------------------------------ production

    def produce(self, count: int = 1) -> list[Block]:
        """Seal ``count`` blocks on the head; pending transactions go into the first."""
        out: list[Block] = []
        for _ in range(count):
            txs, self._pending = tuple(self._pending), []
            out.append(self._append(txs, self._forks))
        return out

    def _append(self, txs: tuple[Tx, ...], fork: int) -> Block:
        parent = self.head
        number = parent.number + 1
        state = parent.state
        events: list[Event] = []
        kept: list[Tx] = []
        for tx in txs:
            try:
                self._check(tx.op, state)
            except ChainError:
                continue  # no longer valid on this branch (reorg): left out, as a client would
            state, evs = _apply(state, tx, len(kept), len(events), number)
            kept.append(tx)
            events.extend(evs)
        block = self._make_block(number, parent.hash, tuple(kept), tuple(events), state, fork)
        self.blocks.append(block)
        self.by_hash[block.hash] = block
        for i, tx in enumerate(block.txs):
            self.tx_index[tx.hash] = (block, i)
        return block

    def _make_block(
        self,
        number: int,
        parent_hash: bytes,
        txs: tuple[Tx, ...],
        events: tuple[Event, ...],
        state: State,
        fork: int,
    ) -> Block:
        ts = GENESIS_TIME_MS + number * self.block_time_ms
        w = Writer().u64(self.seed & (2**64 - 1)).u64(number).raw(parent_hash).u64(ts).u64(fork)
        w.bytes_list([t.hash for t in txs])
        return Block(number, sha3(w.finish()), parent_hash, ts, txs, events, state, fork)

    def reorg(self, depth: int, new_length: int | None = None, *, keep_txs: bool = True) -> Reorged:
        """Replace the last ``depth`` blocks with ``new_length`` (default ``depth + 1``) new
        ones."""
        new_length = depth + 1 if new_length is None else new_length
        if depth < 1:
            raise ChainError("reorg depth must be >= 1")
        if new_length < 1:
            raise ChainError("new_length must be >= 1")
        if depth > min(self.finality_depth, self.head.number):
            raise ChainError(
                f"reorg depth {depth} exceeds the finality depth {self.finality_depth} "
                f"or the chain height {self.head.number}"
            )
        fork_point = self.blocks[-depth - 1]
        dropped = tuple(self.blocks[-depth:])
        del self.blocks[-depth:]
        for b in dropped:
            for tx in b.txs:
                self.tx_index.pop(tx.hash, None)
        self._forks += 1
        carry = [tx for b in dropped for tx in b.txs] if keep_txs else []
        pending, self._pending = self._pending, []
        added = [self._append(tuple(carry), self._forks)]
        added += [self._append((), self._forks) for _ in range(new_length - 1)]
        self._pending = pending
        return Reorged(fork_point, dropped, tuple(added))

    def events_between(self, first: int, last: int) -> list[tuple[Block, Event]]:
        """Canonical events of blocks ``first..last`` inclusive, in chain order."""
        out: list[tuple[Block, Event]] = []
        for n in range(max(0, first), min(last, self.head.number) + 1):
            b = self.blocks[n]
            out.extend((b, e) for e in b.events)
        return out


def _apply(
    state: State, tx: Tx, tx_index: int, first_index: int, number: int
) -> tuple[State, list[Event]]:
    """Apply one transaction; returns the new snapshot and the events it emitted."""
    op = tx.op
    nonces = dict(state.nonces)
    nonces[tx.sender] = nonces.get(tx.sender, 0) + 1
    if isinstance(op, Transfer):
        balances = dict(state.balances)
        balances[op.sender] = balances.get(op.sender, 0) - op.amount
        balances[op.to] = balances.get(op.to, 0) + op.amount
        ev = Event(
            "Transfer", op.sender, tx.hash, tx_index, first_index, 0, tx.sender,
            {"to": op.to, "amount": op.amount},
        )
        return State(balances, nonces, state.contracts), [ev]
    prev = state.contracts.get(op.address)
    version = 1 if prev is None else prev.version + 1
    h = code_hash(op.modules)
    contracts = dict(state.contracts)
    contracts[op.address] = Contract(op.address, dict(op.modules), version, h, number)
    kind: EventKind = "CodeDeployed" if isinstance(op, Deploy) else "CodeUpgraded"
    ev = Event(
        kind, op.address, tx.hash, tx_index, first_index, 0, tx.sender,
        {"version": version, "code_hash": h},
    )
    return State(state.balances, nonces, contracts), [ev]
