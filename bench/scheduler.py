"""``dubhe-bench scheduler``: block execution TPS per strategy x substrate x workers vs Serial.

Workloads (blocks of ``--block-size`` transactions, 10,000 by default):

* ``p2p-N`` for N in 2, 10, 100, 1,000, 10,000 accounts: native-token transfers between random
  accounts (the Block-STM paper's grid), run by the Python reference executor;
* ``hot``: every transaction increments the same counter slot (one hot key, full contention);
* ``compute``: each transaction hashes a 256 KiB buffer (SHA-256 releases the GIL, standing in for
  unicorn emulation of a compute-heavy contract until the VM's compute contract is wired here)
  and then increments its sender's own counter slot;
* ``mixed``: 70% p2p over 1,000 accounts, 20% increments of 10 hot slots, 10% compute.

Each cell is end to end: ``execute_block`` plus applying the block's write set to the state
through a pluggable commit step (``--commit dict``: a dict; ``--commit store``: the node's
``ChainStore`` over the in-memory KV, with its state-root accumulator). Serial is measured in
the same run on the same block, and every cell's result is checked against Serial's. Prints a
table, optionally writes CSV (``--csv PATH``), then the targets as PASS/MISS. ``--max-seconds``
bounds the run: cells that would start after it are skipped (and listed).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gc
import hashlib
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from node.core import keys
from node.core.codec import pack_u64
from node.core.execution import (
    BlockContext,
    BlockExecution,
    BlockExecutor,
    StateReader,
    TxExecutor,
    TxOutcome,
    WriteSet,
)
from node.core.tx import Transaction, address_of
from node.scheduler.registry import PROCESS_CAPABLE, create
from node.scheduler.substrate import SubstrateKind
from node.vm.reference import ReferenceExecutor

CTX = BlockContext(number=1, timestamp_ms=1_700_000_000_000, chain_id=1)
PARALLEL = ("SolanaParallel", "AptosBlockSTM", "SuiObjectDAG")
ALL_WORKLOADS = ("p2p-2", "p2p-10", "p2p-100", "p2p-1000", "p2p-10000", "hot", "compute", "mixed")
LOW_CONTENTION = ("p2p-1000", "p2p-10000", "compute")
NOISY = 0.15  # other processes' CPU share above which a cell's timing is flagged
COMPUTE_BYTES = 256 * 1024
_BUFFER = bytes(range(256)) * (COMPUTE_BYTES // 256)


# -- executors (module-level so worker processes can build them) ---------------------------------
def _pk(i: int) -> bytes:
    return b"B" + i.to_bytes(4, "big") + bytes(27)


MINT = address_of(_pk(0xFFFFFFFF))


def reference_factory() -> ReferenceExecutor:
    """Executor factory for worker processes: the reference executor."""
    return ReferenceExecutor(MINT)


@dataclass
class ComputeExecutor:
    """The reference executor plus, for ``method == "compute"``, SHA-256 over 256 KiB per
    transaction before the counter increment (GIL-free work, like unicorn emulation)."""

    inner: ReferenceExecutor = field(default_factory=reference_factory)

    def execute(self, tx: Transaction, state: StateReader, ctx: BlockContext) -> TxOutcome:
        if tx.method == "compute":
            h = hashlib.sha256(_BUFFER)  # releases the GIL while it hashes
            h.update(tx.args)
            tx = _as_increment(tx, h.digest())
        return self.inner.execute(tx, state, ctx)


def _as_increment(tx: Transaction, digest: bytes) -> Transaction:
    # Same sender, nonce and declarations; the delta depends on the hash so the work counts.
    return Transaction(
        chain_id=tx.chain_id, nonce=tx.nonce, to=tx.to, method="increment",
        args=tx.args[:-8] + digest[:2].rjust(8, b"\x00"), read_set=tx.read_set,
        write_set=tx.write_set, gas_limit=tx.gas_limit, public_key=tx.public_key,
        signature=tx.signature,
    )


def compute_factory() -> ComputeExecutor:
    """Executor factory for worker processes: the compute executor."""
    return ComputeExecutor()


#: Where the benchmark deploys the VM's compute contract (contracts/compute.c).
COMPUTE_CONTRACT = bytes(19) + b"\x13"
#: hash_loop iterations per compute transaction: ~14 instructions each, so ~1M instructions
#: (~250 us on this machine), the "compute 1M insn/tx" case of the VM notes.
HASH_LOOP_ITERATIONS = 70_000
_PROGRAMS: dict[bytes, object] = {}


def vm_resolver(address: bytes, _state: StateReader) -> object:
    """Resolver for the VM: genesis contracts (native token with the bench mint authority,
    counter) and the compute contract, prepared once per process."""
    if not _PROGRAMS:
        from node.vm.elf import prepare
        from node.vm.genesis import contract_elf, genesis_contracts

        for addr, elf in genesis_contracts(MINT):
            _PROGRAMS[addr] = prepare(elf)
        _PROGRAMS[COMPUTE_CONTRACT] = prepare(contract_elf("compute"))
    return _PROGRAMS.get(address)


def vm_factory() -> TxExecutor:
    """Executor factory for worker processes: the RISC-V VM (node.vm.runtime.VmExecutor)."""
    from node.vm.runtime import VmExecutor

    return VmExecutor(vm_resolver)  # type: ignore[arg-type]


def vm_available() -> bool:
    try:
        vm_factory().execute  # noqa: B018 - builds it: unicorn and the ELFs are present
        vm_resolver(keys.NATIVE_TOKEN, {}.get)  # type: ignore[arg-type]
    except Exception:
        return False
    return True


# -- workloads -----------------------------------------------------------------------------------
@dataclass
class Workload:
    name: str
    txs: list[Transaction]
    state: dict[bytes, bytes | None]
    executor: Callable[[], TxExecutor]
    factory: Callable[[], TxExecutor]


def _tx(
    sender: int, nonce: int, to: bytes, method: str, args: bytes, writes: Sequence[bytes]
) -> Transaction:
    return Transaction(
        chain_id=CTX.chain_id, nonce=nonce, to=to, method=method, args=args, read_set=(),
        write_set=tuple(dict.fromkeys(writes)), gas_limit=1_000_000, public_key=_pk(sender),
        signature=bytes(64),
    )


def _addr(i: int) -> bytes:
    return address_of(_pk(i))


def make_workload(name: str, n: int, executor: str = "reference", seed: int = 1) -> Workload:
    """Block ``n`` of workload ``name`` for ``executor`` (``reference`` or ``vm``)."""
    rnd = random.Random(seed)
    nonces: dict[int, int] = {}
    state: dict[bytes, bytes | None] = {}

    def nonce(s: int) -> int:
        v = nonces.get(s, 0)
        nonces[s] = v + 1
        return v

    def transfer(accounts: int) -> Transaction:
        s, t = rnd.randrange(accounts), rnd.randrange(accounts)
        frm, to = _addr(s), _addr(t)
        for a in (frm, to):
            state.setdefault(keys.balance_key(a), pack_u64(10**12))
        return _tx(s, nonce(s), keys.NATIVE_TOKEN, "transfer", to + pack_u64(rnd.randrange(1, 100)),
                   (keys.balance_key(frm), keys.balance_key(to)))

    def increment(sender: int, slot: bytes, method: str = "increment") -> Transaction:
        k = keys.storage_key(keys.COUNTER_DEMO, slot)
        return _tx(sender, nonce(sender), keys.COUNTER_DEMO, method, slot + pack_u64(1), (k,))

    def compute(sender: int, i: int) -> Transaction:
        if executor == "vm":
            return _tx(sender, nonce(sender), COMPUTE_CONTRACT, "hash_loop",
                       pack_u64(HASH_LOOP_ITERATIONS), ())
        return increment(sender, b"c" + i.to_bytes(4, "big"), "compute")

    txs: list[Transaction] = []
    ref: Callable[[], TxExecutor] = vm_factory if executor == "vm" else reference_factory
    heavy: Callable[[], TxExecutor] = vm_factory if executor == "vm" else compute_factory
    if name.startswith("p2p-"):
        accounts = int(name[4:])
        txs = [transfer(accounts) for _ in range(n)]
    elif name == "hot":
        # Distinct senders (no nonce chains): the only conflict is the one hot counter.
        txs = [increment(100_000 + i, b"hot") for i in range(n)]
    elif name == "compute":
        txs = [compute(200_000 + i, i) for i in range(n)]
        ref = heavy
    elif name == "mixed":
        for i in range(n):
            r = rnd.random()
            if r < 0.7:
                txs.append(transfer(1000))
            elif r < 0.9:
                txs.append(increment(300_000 + i, b"h" + bytes([rnd.randrange(10)])))
            else:
                txs.append(compute(400_000 + i, i))
        ref = heavy
    else:
        raise ValueError(f"unknown workload {name!r}; choose from {', '.join(ALL_WORKLOADS)}")
    for tx in txs:  # warm the cached properties outside the timed region (signing/hashing)
        _ = tx.sender, tx.hash
    return Workload(name, txs, state, ref, ref)


# -- commit steps --------------------------------------------------------------------------------
class Commit(Protocol):
    """Applies a block's write set to state; created fresh per measurement from the genesis."""

    def get(self, key: bytes) -> bytes | None: ...

    def commit(self, writes: WriteSet) -> None: ...


class DictCommit:
    """State as a plain dict (the default)."""

    def __init__(self, genesis: dict[bytes, bytes | None]) -> None:
        self.data = dict(genesis)

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def commit(self, writes: WriteSet) -> None:
        d = self.data
        for k, v in writes.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v


class StoreCommit:
    """The node's ChainStore over the in-memory KV: accumulator (state root) + batch write."""

    def __init__(self, genesis: dict[bytes, bytes | None]) -> None:
        from node.state.chain_store import ChainStore
        from node.state.kv import MemoryKV

        self.store = ChainStore(MemoryKV())
        kv = self.store.kv
        kv.write({b"S" + k: v for k, v in genesis.items() if v is not None})

    def get(self, key: bytes) -> bytes | None:
        return self.store.get(key)

    def commit(self, writes: WriteSet) -> None:
        self.store.next_accumulator(writes)
        self.store.kv.write({b"S" + k: v for k, v in writes.items()})


COMMITS: dict[str, Callable[[dict[bytes, bytes | None]], Commit]] = {
    "dict": DictCommit,
    "store": StoreCommit,
}


# -- measurement ---------------------------------------------------------------------------------
@dataclass
class Cell:
    executor: str
    workload: str
    strategy: str
    substrate: str
    workers: int
    txs: int
    seconds: float
    serial_seconds: float = 0.0
    efficiency: float = 0.0
    conflict_rate: float = 0.0
    re_executions: int = 0
    aborts: int = 0
    deferrals: int = 0
    dag_depth: int = 0
    dag_width: int = 0
    other_load: float = 0.0  # share of the machine's CPUs used by other processes meanwhile
    adaptive: bool = False  # the strategy ran behind its adaptive gate (as the node runs it)
    mode: str = ""  # path of the last timed run: parallel / sequential (gated), "" otherwise
    gain: float = 0.0  # the gate's measured gain of the parallel path (gated cells)

    @property
    def tps(self) -> float:
        return self.txs / self.seconds if self.seconds else 0.0

    @property
    def speedup(self) -> float:
        return self.serial_seconds / self.seconds if self.seconds else 0.0

    def label(self) -> str:
        if self.strategy == "Serial":
            return "Serial"
        return f"{self.strategy}/{self.substrate}{'+gate' if self.adaptive else ''}"


def _same(a: BlockExecution, b: BlockExecution) -> bool:
    return a.outcomes == b.outcomes and dict(a.writes) == dict(b.writes)


class LoadProbe:
    """How much of the machine *other* processes used between ``start()`` and ``stop()``: the
    host's busy CPU time minus this process tree's, over wall time x CPUs. Speedups measured
    while others load the 2 cores are not the strategy's: the table flags them."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self._t = self._host = self._ours = 0.0

    def _host_busy(self) -> float:
        t = self._psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    def _ours_busy(self) -> float:
        total = 0.0
        for p in [self._me, *self._me.children(recursive=True)]:
            try:
                c = p.cpu_times()
            except self._psutil.Error:
                continue
            total += c.user + c.system
        return total

    def start(self) -> None:
        self._t, self._host, self._ours = time.monotonic(), self._host_busy(), self._ours_busy()

    def stop(self) -> float:
        wall = time.monotonic() - self._t
        others = (self._host_busy() - self._host) - (self._ours_busy() - self._ours)
        cpus = self._psutil.cpu_count() or 1
        return max(0.0, others / (wall * cpus)) if wall > 0 else 0.0


def _run_once(
    wl: Workload, strategy: BlockExecutor, commit_kind: str
) -> tuple[float, BlockExecution]:
    state = COMMITS[commit_kind](wl.state)
    # Every run starts from the same heap: a full collection pending from the previous run (its
    # 10,000 outcomes) would otherwise land in whichever run comes next.
    gc.collect()
    t0 = time.perf_counter()
    result = strategy.execute_block(wl.txs, state, CTX)
    state.commit(result.writes)
    return time.perf_counter() - t0, result


def measure_pair(
    wl: Workload, serial: BlockExecutor, strategy: BlockExecutor, commit_kind: str, repeat: int,
    reference: BlockExecution,
) -> tuple[float, float, BlockExecution]:
    """Best-of-``repeat`` end-to-end seconds of Serial and of ``strategy``, runs alternating
    (after one warm-up each) so both see the same machine; checks the result against Serial's.

    Best-of rather than median: other work on the machine only ever adds time."""
    _run_once(wl, strategy, commit_kind)
    s_times, p_times = [], []
    result: BlockExecution | None = None
    for _ in range(repeat):
        s_times.append(_run_once(wl, serial, commit_kind)[0])
        dt, result = _run_once(wl, strategy, commit_kind)
        p_times.append(dt)
    assert result is not None
    if not _same(reference, result):
        bad = [
            i
            for i, (a, b) in enumerate(zip(reference.outcomes, result.outcomes, strict=True))
            if a != b
        ]
        detail = (f"tx {bad[0]} of {len(bad)} differing:\n  serial: {reference.outcomes[bad[0]]}\n"
                  f"  got:    {result.outcomes[bad[0]]}" if bad else "net write sets differ")
        raise AssertionError(f"{wl.name}: {strategy.name} differs from Serial: {detail}")
    return min(s_times), min(p_times), result


#: Cells whose result differed from Serial's in the last :func:`run` (main exits 1 if any).
mismatches: list[str] = []


def run(args: argparse.Namespace, out: Callable[[str], None]) -> list[Cell]:
    cells: list[Cell] = []
    deadline = time.monotonic() + args.max_seconds
    skipped: list[str] = []
    probe = LoadProbe()
    mismatches.clear()
    for ex_kind in args.executors:
        for wname in args.workloads:
            t_gen = time.perf_counter()
            wl = make_workload(wname, args.block_size, ex_kind)
            out(
                f"== {ex_kind} / {wname}: {len(wl.txs)} txs (generated in "
                f"{time.perf_counter() - t_gen:.1f}s)"
            )
            executor = wl.executor()
            serial = create("Serial", executor, 1)
            _run_once(wl, serial, args.commit)  # warm-up (VM instance pools, caches)
            s_best, s_res = _run_once(wl, serial, args.commit)
            base = Cell(ex_kind, wname, "Serial", "-", 1, len(wl.txs), s_best, s_best, 1.0)
            cells.append(base)
            out(
                f"   {'Serial':<36} {base.tps:>10,.0f} tps (first run; best of all paired runs in "
                "the table)"
            )
            for name in args.strategies:
                for substrate in args.substrates:
                    if substrate == "processes" and name not in PROCESS_CAPABLE:
                        continue
                    for w in args.workers:
                        if substrate == "processes" and w == 1:
                            continue  # one worker runs inline: identical to the threads row
                        label = f"{name}/{substrate} w={w}"
                        if time.monotonic() > deadline:
                            skipped.append(f"{ex_kind} {wname} {label}")
                            continue
                        for adaptive in args.adaptive:
                            cell = _measure_cell(
                                args,
                                wl,
                                ex_kind,
                                executor,
                                serial,
                                s_res,
                                name,
                                substrate,
                                w,
                                adaptive,
                                probe,
                                out,
                            )
                            if cell is not None:
                                base.seconds = min(base.seconds, cell.serial_seconds)
                                base.serial_seconds = base.seconds
                                cells.append(cell)
            executor_close = getattr(executor, "close", None)
            if callable(executor_close):
                executor_close()
    if skipped:
        out(
            f"-- time budget (--max-seconds {args.max_seconds:g}) reached; skipped {len(skipped)} "
            "cells:"
        )
        for s in skipped:
            out(f"   {s}")
    return cells


def _measure_cell(
    args: argparse.Namespace,
    wl: Workload,
    ex_kind: str,
    executor: TxExecutor,
    serial: BlockExecutor,
    s_res: BlockExecution,
    name: str,
    substrate: SubstrateKind,
    w: int,
    adaptive: bool,
    probe: LoadProbe,
    out: Callable[[str], None],
) -> Cell | None:
    """One cell: the strategy (behind its adaptive gate or not) paired with Serial runs."""
    strat = create(name, executor, w, executor_factory=wl.factory, substrate=substrate,
                   mp_context=args.mp_context, adaptive=adaptive)
    label = f"{name}/{substrate}{'+gate' if adaptive else ''} w={w}"
    gate = getattr(strat, "gate", None)
    probe.start()
    try:
        # A node runs thousands of blocks: measure the gate's steady state, not its first probe.
        for _ in range(4):
            if gate is None or gate.settled:
                break
            _run_once(wl, strat, args.commit)
        s_sec, sec, res = measure_pair(wl, serial, strat, args.commit, args.repeat, s_res)
        load = probe.stop()  # before close(): its workers' CPU time is ours
    except AssertionError as e:  # a result differing from Serial's
        mismatches.append(f"{ex_kind} {label}: {e}")
        out(f"   {label:<36} MISMATCH: {e}")
        return None
    finally:
        strat.close()
    st = res.stats
    c = Cell(ex_kind, wl.name, name, substrate, w, len(wl.txs), sec, s_sec,
             st.parallel_efficiency, st.conflict_rate, st.re_executions, st.aborts,
             st.deferrals, st.dag_depth, st.dag_width, load, adaptive, st.mode,
             (gate.gain or 0.0) if gate is not None else 0.0)
    gated = f"  {st.mode} (gain {c.gain:.2f})" if adaptive else ""
    out(f"   {label:<36} {c.tps:>10,.0f} tps  {c.speedup:5.2f}x Serial ({len(wl.txs) / s_sec:,.0f})"
        f"  eff {c.efficiency:4.2f}  conflicts {c.conflict_rate:5.3f}  re-exec {c.re_executions}"
        f"  other load {load:4.0%}{gated}")
    return c


def table(cells: list[Cell]) -> str:
    head = (
        f"{'executor':<9} {'workload':<10} {'strategy':<33} {'w':>2} {'tps':>10} {'vs Serial':>9} "
        f"{'eff':>5} {'conflict':>8} {'re-exec':>7} {'depth':>6} {'width':>6} {'others':>6} "
        f"{'path (gain)':>17}"
    )
    lines = [head, "-" * len(head)]
    for c in cells:
        lines.append(
            f"{c.executor:<9} {c.workload:<10} {c.label():<33} {c.workers:>2} {c.tps:>10,.0f} "
            f"{c.speedup:>8.2f}x {c.efficiency:>5.2f} {c.conflict_rate:>8.3f} {c.re_executions:>7} "
            f"{c.dag_depth:>6} {c.dag_width:>6} "
            f"{c.other_load:>5.0%}{' !' if c.other_load > NOISY else '  '}"
            f"{f'{c.mode} ({c.gain:.2f})' if c.adaptive else '':>16}"
        )
    lines.append(f"(others: CPU share of other processes during the cell; '!' above {NOISY:.0%}: "
                 "the speedup is not the strategy's alone)")
    lines.append(
        "(+gate: behind the adaptive gate, as the node runs it by default; path = what the last "
        "timed block ran, gain = measured parallel speed vs block order; no suffix: the algorithm "
        "always runs)"
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class Check:
    """One target judged on a run's cells: ``ok`` is None when it was not measured."""

    name: str
    ok: bool | None
    text: str
    target: float
    value: float | None
    direction: Literal["lower", "higher"]
    unit: str


def targets(cells: list[Cell]) -> list[tuple[bool | None, str]]:
    """The issue's targets, per executor, on this run's cells (None: not measured in this run)."""
    return [(c.ok, c.text) for c in checks(cells)]


def checks(cells: list[Cell]) -> list[Check]:
    """:func:`targets` with names, thresholds and values (what ``--json`` writes)."""
    res: list[Check] = []
    for ex_kind in dict.fromkeys(c.executor for c in cells):
        res += [dataclasses.replace(c, name=f"{ex_kind}.{c.name}", text=f"[{ex_kind}] {c.text}")
                for c in _targets([c for c in cells if c.executor == ex_kind])]
    return res


def _targets(cells: list[Cell]) -> list[Check]:
    """Throughput, compute speed-up and the hot key are judged on the algorithms themselves
    (cells without the gate, when measured); "not slower than Serial" is judged as the node runs
    the strategies, behind the gate (when measured), with the ungated ratio shown beside it."""
    res: list[Check] = []
    par = [c for c in cells if c.strategy != "Serial"]
    raw = [c for c in par if not c.adaptive] or par
    gated = [c for c in par if c.adaptive] or par

    p1k = [c for c in raw if c.workload == "p2p-1000"]
    if p1k:
        best = max(p1k, key=lambda c: c.tps)
        res.append(Check("p2p-1000.best_tps", best.tps >= 20_000,
                         f"best parallel strategy on p2p-1000 >= 20,000 tps: {best.label()} "
                         f"w={best.workers} {best.tps:,.0f} tps", 20_000, best.tps, "higher",
                         "tx/s"))
    else:
        res.append(Check("p2p-1000.best_tps", None, "p2p-1000 not measured", 20_000, None,
                         "higher", "tx/s"))

    comp = [c for c in raw if c.workload == "compute" and c.workers == 2]
    if comp:
        best = max(comp, key=lambda c: c.speedup)
        res.append(Check("compute.speedup_w2", best.speedup >= 1.8,
                         f"compute-heavy >= 1.8x Serial with 2 workers: {best.label()} "
                         f"{best.speedup:.2f}x", 1.8, best.speedup, "higher", "x"))
    else:
        res.append(Check("compute.speedup_w2", None, "compute with 2 workers not measured", 1.8,
                         None, "higher", "x"))

    kind = "gated" if gated is not par else "always parallel"
    for wname in LOW_CONTENTION:
        for name in PARALLEL:
            mine = [
                c for c in gated if c.workload == wname and c.strategy == name and c.workers == 2
            ]
            if not mine:
                continue
            best = max(mine, key=lambda c: c.speedup)
            text = (
                f"{wname}: {name} ({kind}, best substrate, 2 workers) not >10% slower than Serial: "
                f"{best.label()} {best.speedup:.2f}x"
            )
            alone = [c for c in par if not c.adaptive and c.workload == wname and c.strategy == name
                     and c.workers == 2]
            if kind == "gated" and alone:
                b = max(alone, key=lambda c: c.speedup)
                text += f" (always parallel: {b.label()} {b.speedup:.2f}x)"
            res.append(Check(f"{wname}.{name}.vs_serial_w2", best.speedup >= 1 / 1.1, text,
                             round(1 / 1.1, 4), best.speedup, "higher", "x"))

    hot = [
        c for c in raw if c.workload == "hot" and c.strategy == "AptosBlockSTM" and c.workers == 2
    ]
    if hot:
        c = hot[0]
        ratio = c.seconds / c.serial_seconds
        res.append(Check("hot.blockstm_time_vs_serial_w2", ratio <= 1.3,
                         f"Block-STM at one hot key (2 workers) <= 1.3x Serial's time: {c.label()} "
                         f"{ratio:.2f}x", 1.3, ratio, "lower", "x"))
    else:
        res.append(Check("hot.blockstm_time_vs_serial_w2", None,
                         "hot with Block-STM/2 not measured", 1.3, None, "lower", "x"))
    return res


def write_csv(path: str | Path, cells: list[Cell]) -> None:
    cols = [
        "executor",
        "workload",
        "strategy",
        "substrate",
        "workers",
        "txs",
        "seconds",
        "tps",
        "serial_seconds",
        "speedup_vs_serial",
        "efficiency",
        "conflict_rate",
        "re_executions",
        "aborts",
        "deferrals",
        "dag_depth",
        "dag_width",
        "other_load",
        "adaptive",
        "mode",
        "gain",
    ]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for c in cells:
            w.writerow(
                [
                    c.executor,
                    c.workload,
                    c.strategy,
                    c.substrate,
                    c.workers,
                    c.txs,
                    f"{c.seconds:.6f}",
                    f"{c.tps:.1f}",
                    f"{c.serial_seconds:.6f}",
                    f"{c.speedup:.4f}",
                    f"{c.efficiency:.4f}",
                    f"{c.conflict_rate:.4f}",
                    c.re_executions,
                    c.aborts,
                    c.deferrals,
                    c.dag_depth,
                    c.dag_width,
                    f"{c.other_load:.3f}",
                    int(c.adaptive),
                    c.mode,
                    f"{c.gain:.4f}",
                ]
            )


def parse(argv: list[str]) -> argparse.Namespace:
    # bench.common imports the lab's process helpers: imported here, not at module level, so the
    # worker processes that import this module for its executor factories stay light.
    from bench.common import add_json_option, bench_parser, output_file

    p = bench_parser("scheduler", __doc__)
    p.add_argument(
        "--block-size", type=int, default=10_000, help="transactions per block (default 10000)"
    )
    p.add_argument("--workloads", default=",".join(ALL_WORKLOADS), help="comma-separated subset")
    p.add_argument("--strategies", default=",".join(PARALLEL), help="parallel strategies to run")
    p.add_argument("--workers", default="1,2,4", help="worker counts (default 1,2,4)")
    p.add_argument("--substrates", default="threads,processes", help="threads and/or processes")
    p.add_argument("--executors", default="auto",
                   help="vm and/or reference (default auto: both when the VM is available)")
    p.add_argument(
        "--commit", choices=sorted(COMMITS), default="dict", help="commit step (default dict)"
    )
    p.add_argument("--repeat", type=int, default=3,
                   help="timed runs per cell, each paired with a Serial run; best kept (default 3)")
    p.add_argument(
        "--mp-context",
        default="forkserver",
        help="multiprocessing start method (default forkserver, as the node; fork starts "
        "faster but the parent then pays copy-on-write faults during the run)",
    )
    p.add_argument(
        "--max-seconds", type=float, default=900, help="skip cells after this (default 900)"
    )
    p.add_argument(
        "--adaptive",
        default="on,off",
        help="on: strategies behind the adaptive gate (the node's default); off: the algorithm "
        "always runs; on,off (default): both, as separate cells",
    )
    p.add_argument("--csv", metavar="FILE", type=output_file, help="also write the cells as CSV")
    add_json_option(p)
    p.add_argument("--quick", action="store_true",
                   help="short run: 2,000-tx blocks, workers 1,2, one timed run per cell")
    a = p.parse_args(argv)
    a.workloads = [w for w in a.workloads.split(",") if w]
    a.strategies = [s for s in a.strategies.split(",") if s]
    a.workers = [int(w) for w in a.workers.split(",") if w]
    modes = [m for m in a.adaptive.split(",") if m]
    if not modes or any(m not in ("on", "off") for m in modes):
        p.error(f"--adaptive takes on, off or on,off, not {a.adaptive!r}")
    a.adaptive = [m == "on" for m in dict.fromkeys(modes)]
    subs: list[SubstrateKind] = []
    for s in a.substrates.split(","):
        if s not in ("threads", "processes"):
            p.error(f"unknown substrate {s!r}")
        subs.append("threads" if s == "threads" else "processes")
    a.substrates = subs
    if a.executors == "auto":
        a.executors = ["vm", "reference"] if vm_available() else ["reference"]
    else:
        a.executors = [e for e in a.executors.split(",") if e]
        for e in a.executors:
            if e not in ("vm", "reference"):
                p.error(f"unknown executor {e!r}; choose vm and/or reference")
    if a.quick:
        a.block_size = min(a.block_size, 2_000)
        a.workers = [w for w in a.workers if w <= 2] or [2]
        a.repeat = 1
    for w in a.workloads:
        if w not in ALL_WORKLOADS:
            p.error(f"unknown workload {w!r}; choose from {', '.join(ALL_WORKLOADS)}")
    return a


#: Targets are stated for blocks of this many transactions (smaller blocks: not judged).
TARGET_BLOCK_SIZE = 10_000


def cell_dict(c: Cell) -> dict[str, object]:
    """A cell as JSON (``--json``'s ``cells``): every column of the table and the CSV."""
    return {**dataclasses.asdict(c), "label": c.label(), "tps": c.tps, "speedup": c.speedup}


def main(argv: list[str]) -> int:
    from bench.common import BenchResult

    args = parse(argv)
    res = BenchResult("scheduler", argv)
    print(
        f"dubhe-bench scheduler: executors {args.executors}, block {args.block_size} txs, "
        f"workers {args.workers}, substrates {args.substrates}, gate "
        f"{['on' if g else 'off' for g in args.adaptive]}, commit {args.commit}, {args.repeat} "
        "paired timed run(s) per cell (best of)",
        flush=True,
    )
    cells = run(args, lambda s: print(s, flush=True))
    print()
    print(table(cells))
    if args.csv:
        write_csv(args.csv, cells)
        print(f"\nCSV: {args.csv}")
    small = args.block_size < TARGET_BLOCK_SIZE
    note = f"targets are stated for {TARGET_BLOCK_SIZE:,}-transaction blocks" if small else ""
    print("\ntargets (this 2-core machine, ratios vs Serial measured in this run):")
    for chk in checks(cells):
        ok = res.target(chk.name, target=chk.target, value=chk.value, direction=chk.direction,
                        unit=chk.unit, passed=chk.ok, judged=chk.ok is not None and not small,
                        note=note if chk.ok is not None else "not measured in this run")
        mark = ("n/a " if chk.ok is None else "PASS" if ok else "MISS" if ok is False
                else "not judged")
        print(f"  {mark}  {chk.text}")
    if note:
        print(f"  (not judged: {note}; this run used {args.block_size:,})")
    for c in cells:
        key = f"{c.executor}.{c.workload}.{c.label()}.w{c.workers}"
        res.figure(f"{key}.tps", c.tps)
        res.figure(f"{key}.speedup", c.speedup)
    res.extra(cells=[cell_dict(c) for c in cells], mismatches=list(mismatches),
              block_size=args.block_size, executors=args.executors, workloads=args.workloads,
              strategies=args.strategies, workers=args.workers, substrates=args.substrates,
              commit=args.commit, repeat=args.repeat)
    rc = 1 if mismatches else res.exit_code()
    res.write(args.json, exit_code=rc)
    if mismatches:
        print(
            f"\n{len(mismatches)} cell(s) differed from Serial (if the tree changed during the "
            "run, worker processes may have loaded other code or contracts than this process):"
        )
        for m in mismatches:
            print(f"  {m}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
