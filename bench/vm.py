"""``dubhe-bench vm``: the RISC-V VM (unicorn) on one core, each figure against a baseline
measured in the same run.

1. pooled native-token transfers/s through ``VmExecutor.execute`` (baseline: the Python
   ``ReferenceExecutor`` on the same transactions); target >= 40,000/s;
2. cold vs warm instance: a new instance plus its first call vs a pooled call;
3. guest instructions/s on the compute contract (``hash_loop``: ALU-bound, ``hash_memory``:
   loads and stores) with the native C gas meter (baseline: the Python gas meter);
4. RSS per live instance with the 1 MiB translation buffer (baseline: unicorn's default).

Every phase is bounded by ``--seconds``; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable

from bench.common import BenchResult, add_json_option, bench_parser, progress, table, verdict
from node.core import keys
from node.core.execution import BlockContext, StateReader
from node.core.tx import Signer, Transaction, sign_tx
from node.vm.elf import prepare
from node.vm.genesis import contract_elf, genesis_contracts
from node.vm.program import Program
from node.vm.reference import ReferenceExecutor
from node.vm.runtime import VmExecutor

TARGET_TPS = 40_000
#: What the targets assume: 3 s per phase (the default) and 50 live instances.
TARGET_SECONDS, TARGET_INSTANCES = 3.0, 50
CTX = BlockContext(1, 1_700_000_000_000, 7)
MINT = Signer.from_seed(b"bench-vm-mint").address
COMPUTE = bytes(19) + b"\x13"


class _State:
    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.data = data

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)


def _programs() -> dict[bytes, Program]:
    progs = {addr: prepare(elf) for addr, elf in genesis_contracts(MINT)}
    progs[COMPUTE] = prepare(contract_elf("compute"))
    return progs


def _transfers(n_senders: int) -> tuple[list[Transaction], _State]:
    signers = [Signer.from_seed(b"bench-vm-%d" % i) for i in range(n_senders)]
    data = {keys.balance_key(s.address): struct.pack(">Q", 10**15) for s in signers}
    txs = []
    for i, s in enumerate(signers):
        to = signers[(i + 1) % n_senders].address
        txs.append(
            sign_tx(
                s,
                chain_id=CTX.chain_id,
                nonce=0,
                to=keys.NATIVE_TOKEN,
                method="transfer",
                args=to + struct.pack(">Q", 1),
                write_set=(keys.balance_key(s.address), keys.balance_key(to)),
                gas_limit=100_000,
            )
        )
    return txs, _State(data)


def _rate(fn: Callable[[], int], seconds: float, windows: int = 10) -> tuple[float, float]:
    """(best, median) of ``windows`` windows of ``fn`` calls/s; ``fn`` returns units done. Many
    short windows and the best one: on a shared machine other jobs come and go within a second,
    and the best window is the closest to the capacity of one free core."""
    end = time.perf_counter() + 0.2
    while time.perf_counter() < end:  # warm-up
        fn()
    rates = []
    for _ in range(windows):
        done, t0 = 0, time.perf_counter()
        stop = t0 + seconds / windows
        while (now := time.perf_counter()) < stop:
            done += fn()
        rates.append(done / (now - t0))
    return max(rates), statistics.median(rates)


def _tx_loop(
    execute: Callable[[Transaction, StateReader, BlockContext], object],
    txs: list[Transaction],
    state: _State,
) -> Callable[[], int]:
    def batch() -> int:
        for tx in txs:
            execute(tx, state, CTX)
        return len(txs)

    return batch


def bench_transfers(seconds: float) -> tuple[list[list[object]], bool, dict[str, float]]:
    progs = _programs()
    vm = VmExecutor(lambda a, _s: progs.get(a))
    ref = ReferenceExecutor(MINT)
    txs, state = _transfers(64)
    o = vm.execute(txs[0], state, CTX)
    assert o.status.name == "SUCCESS", o.reason
    progress(f"transfers: VmExecutor ({vm.meter} gas meter), {seconds:.1f}s")
    vm_best, vm_med = _rate(_tx_loop(vm.execute, txs, state), seconds)
    progress(f"transfers: ReferenceExecutor, {seconds:.1f}s")
    ref_best, ref_med = _rate(_tx_loop(ref.execute, txs, state), seconds)
    rows = [["VmExecutor.execute (pooled)", vm_best, vm_med, 1e6 / vm_best],
            ["ReferenceExecutor (Python)", ref_best, ref_med, 1e6 / ref_best]]
    return rows, vm_best >= TARGET_TPS, {"vm": vm_best, "ref": ref_best, "gas": float(o.gas_used)}


def bench_cold_warm(seconds: float) -> tuple[float, float]:
    from node.core.access import TxState
    from node.vm.syscalls import CallEnv
    from node.vm.unicorn_backend import Instance

    progs = _programs()
    p = progs[keys.NATIVE_TOKEN]
    entry = p.exports["balance_of"]
    state = _State({})

    def call(inst: Instance) -> None:
        env = CallEnv(TxState(state, None, None), keys.NATIVE_TOKEN, bytes(20), CTX, bytes(20))
        inst.run(entry, env, 100_000)

    progress("cold vs warm instance")
    cold: list[float] = []
    end = time.perf_counter() + seconds / 2
    while time.perf_counter() < end or len(cold) < 20:
        t0 = time.perf_counter()
        inst = Instance(p)
        call(inst)
        cold.append(time.perf_counter() - t0)
        inst.close()
        if len(cold) >= 2000:
            break
    warm_inst = Instance(p)
    call(warm_inst)
    warm: list[float] = []
    end = time.perf_counter() + seconds / 2
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        call(warm_inst)
        warm.append(time.perf_counter() - t0)
    return statistics.median(cold) * 1e6, statistics.median(warm) * 1e6


def bench_insns(seconds: float) -> list[list[object]]:
    from node.core.access import TxState
    from node.vm.syscalls import CallEnv
    from node.vm.unicorn_backend import Instance

    p = prepare(contract_elf("compute"))
    rows: list[list[object]] = []
    for method, arg in (("hash_loop", 200_000), ("hash_memory", 200)):
        rates = {}
        for meter in ("native", "python"):
            inst = Instance(p, meter)
            env = CallEnv(
                TxState(_State({}), None, None), COMPUTE, bytes(20), CTX, struct.pack(">Q", arg)
            )
            progress(f"instructions/s: {method} with the {meter} gas meter")
            insns, t0 = 0, time.perf_counter()
            stop = t0 + seconds / 4
            while (now := time.perf_counter()) < stop:
                r = inst.run(p.exports[method], env, 10**9)
                insns += r.insns
            rates[meter] = insns / (now - t0)
            inst.close()
        rows.append(
            [
                method,
                rates["native"] / 1e6,
                rates["python"] / 1e6,
                rates["native"] / rates["python"],
            ]
        )
    return rows


def _rss_child(mode: str, count: int) -> None:
    import psutil

    from node.core.access import TxState
    from node.vm.syscalls import CallEnv
    from node.vm.unicorn_backend import Instance

    p = prepare(contract_elf("native_token"))
    proc = psutil.Process()
    before = proc.memory_info().rss
    keep = []
    for _ in range(count):
        inst = Instance(p, tcg_buffer_bytes=None if mode == "default" else 1 << 20)
        env = CallEnv(TxState(_State({}), None, None), keys.NATIVE_TOKEN, bytes(20), CTX, bytes(20))
        inst.run(p.exports["balance_of"], env, 100_000)
        keep.append(inst)
    print((proc.memory_info().rss - before) / count)


def bench_rss(count: int) -> tuple[float, float]:
    out = {}
    for mode in ("1mib", "default"):
        progress(f"RSS: {count} live instances, {mode} translation buffer (subprocess)")
        res = subprocess.run(
            [sys.executable, "-m", "bench.vm", "--rss-child", mode, "--instances", str(count)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        out[mode] = float(res.stdout.strip().splitlines()[-1]) / 2**20
    return out["1mib"], out["default"]


def parse(argv: list[str]) -> argparse.Namespace:
    p = bench_parser("vm", __doc__)
    p.add_argument("--seconds", type=float, default=3.0, help="time budget per phase (default 3)")
    p.add_argument("--instances", type=int, default=50, help="live instances for the RSS phase")
    p.add_argument("--rss-child", choices=["1mib", "default"], help=argparse.SUPPRESS)
    add_json_option(p)
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.rss_child:
        _rss_child(args.rss_child, args.instances)
        return 0
    from node.vm.runtime import startup_self_test

    facts = startup_self_test()
    res = BenchResult("vm", argv)
    print(f"dubhe-bench vm: unicorn {facts['unicorn']}, gas meter {facts['gas_meter']}, "
          f"{args.seconds:.1f}s per phase, one core")
    rows, _, t = bench_transfers(args.seconds)
    print(
        "\n1. native-token transfers (2 storage_read syscalls; 2 writes + 1 event via the memory "
        "logs), pooled instance"
    )
    print(table(["executor", "best tx/s", "median tx/s", "us/tx"], rows))
    print(f"   VM / reference = {t['vm'] / t['ref']:.2f}x; VM gas per transfer {t['gas']:.0f}")
    cold, warm = bench_cold_warm(args.seconds)
    print("\n2. cold vs warm instance (native_token.balance_of)")
    print(
        table(
            ["path", "median us"],
            [["cold: new instance + first call", cold], ["warm: pooled call", warm]],
        )
    )
    print(f"   cold / warm = {cold / warm:.1f}x (pooling pays off after one call)")
    rows_i = bench_insns(args.seconds)
    print("\n3. guest instructions/s on the compute contract")
    print(
        table(["kernel", "native gas M insn/s", "python gas M insn/s", "native / python"], rows_i)
    )
    print("   M insn/s: millions of guest RV64IM instructions retired per second, as the gas meter "
          "counts them (per translated block).\n   unicorn's JIT runs the guest as host machine "
          "code, so an ALU-bound loop retires about one guest\n   instruction per host cycle: "
          "billions per second are the JIT's speed, not a counting error.")
    rss, rss_default = bench_rss(args.instances)
    print(f"\n4. RSS per live instance ({args.instances} instances)")
    print(
        table(
            ["translation buffer", "MiB / instance"],
            [["1 MiB (runtime)", rss], ["unicorn default", rss_default]],
        )
    )
    print(f"   default / 1 MiB = {rss_default / rss:.1f}x")
    res.figure("vm_tps_median", float(rows[0][2]))  # type: ignore[arg-type]
    res.figure("ref_tps", t["ref"])
    res.figure("vm_vs_ref", t["vm"] / t["ref"])
    res.figure("gas_per_transfer", t["gas"])
    res.figure("cold_us", cold)
    res.figure("warm_us", warm)
    for kernel, native, python, ratio in rows_i:
        res.figure(f"{kernel}_native_minsn_per_s", float(native))  # type: ignore[arg-type]
        res.figure(f"{kernel}_python_minsn_per_s", float(python))  # type: ignore[arg-type]
        res.figure(f"{kernel}_native_vs_python", float(ratio))  # type: ignore[arg-type]
    res.figure("rss_default_mib_per_instance", rss_default)
    short = args.seconds < TARGET_SECONDS
    ok_tps = res.target("transfers_per_s", target=TARGET_TPS, value=t["vm"], direction="higher",
                        unit="tx/s", judged=not short,
                        note=f"the target assumes >= {TARGET_SECONDS:g} s per phase (a shorter "
                        "run measures a colder VM)" if short else "")
    ok_warm = res.target("cold_vs_warm", target=1.0, value=cold / warm, direction="higher",
                         unit="x", passed=cold > warm)
    few = args.instances < TARGET_INSTANCES
    ok_rss = res.target("rss_mib_per_instance", target=2.0, value=rss, direction="lower",
                        unit="MiB", judged=not few,
                        note=f"the target assumes >= {TARGET_INSTANCES} live instances (fewer "
                        "spread the process's fixed memory over too few)" if few else "")
    print("\ntargets:")
    why_tps = f"; {res.targets['transfers_per_s'].note}" if short else ""
    print(f"  {verdict(ok_tps)}  pooled transfers >= {TARGET_TPS:,}/s on one core (measured "
          f"{t['vm']:,.0f}/s{why_tps})")
    print(f"  {verdict(ok_warm)}  a warm pooled call is cheaper than a cold instance "
          f"({cold / warm:.1f}x)")
    why_rss = f"; {res.targets['rss_mib_per_instance'].note}" if few else ""
    print(f"  {verdict(ok_rss)}  <= 2 MiB RSS per live instance (measured {rss:.2f} MiB"
          f"{why_rss})")
    res.extra(seconds=args.seconds, instances=args.instances, unicorn=str(facts["unicorn"]),
              gas_meter=str(facts["gas_meter"]))
    res.write(args.json)
    return res.exit_code()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
