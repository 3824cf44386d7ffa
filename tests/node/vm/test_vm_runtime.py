"""VmExecutor rules: nonce, missing contracts, pools, gas meters, threads, processes, self-test."""

from __future__ import annotations

import gc
import multiprocessing
import pickle
import threading

import pytest
from vm_helpers import COMPUTE, CTX, FAULTS, Accounts, DictState, Run, resolver, u64

from node.core import keys
from node.core.execution import TxOutcome, TxStatus
from node.vm.runtime import VmExecutor, make_executor, startup_self_test


def test_nonce_mismatch_is_invalid_and_writes_nothing(
    vm: VmExecutor, state: DictState, acct: Accounts
) -> None:
    tx = acct.tx(acct.alice, keys.COUNTER_DEMO, "increment", b"a" + u64(1), (b"a",), nonce=3)
    o = vm.execute(tx, state, CTX)
    assert (o.status, o.gas_used, o.writes) == (TxStatus.INVALID, 0, {})
    assert o.reason == "nonce mismatch: expected 0"
    assert o.reads == (keys.nonce_key(acct.alice.address),)


def test_missing_contract_reverts(run: Run, acct: Accounts) -> None:
    nobody = b"\x99" * 20
    o = run(acct.alice, nobody, "anything")
    assert (o.status, o.reason) == (TxStatus.REVERT, f"no contract at 0x{nobody.hex()}")
    assert list(o.writes) == [keys.nonce_key(acct.alice.address)]


def test_reads_recorded_in_first_read_order(run: Run, acct: Accounts) -> None:
    A, B = acct.alice.address, acct.bob.address
    run(acct.authority, keys.NATIVE_TOKEN, "mint", A + u64(5), (b"b" + A,))
    o = run(acct.alice, keys.NATIVE_TOKEN, "transfer", B + u64(1), (b"b" + A, b"b" + B))
    assert o.reads == (keys.nonce_key(A), keys.balance_key(A), keys.balance_key(B))


def test_python_and_native_gas_meters_agree(state: DictState) -> None:
    native = VmExecutor(resolver, gas_meter="native")
    python = VmExecutor(resolver, gas_meter="python")
    cases = [(COMPUTE, "hash_loop", u64(500)), (COMPUTE, "hash_memory", u64(3)),
             (FAULTS, "infinite_loop", b""), (keys.COUNTER_DEMO, "increment", b"z" + u64(9))]
    for to, method, args in cases:
        a = native.call(to, method, args, state, CTX, gas_limit=50_000)
        b = python.call(to, method, args, state, CTX, gas_limit=50_000)
        assert a == b, method


def test_pool_is_bounded_and_evicts(state: DictState) -> None:
    ex = VmExecutor(resolver, max_instances=2)
    calls = [(keys.COUNTER_DEMO, "get", b"x"), (keys.NATIVE_TOKEN, "balance_of", b"x" * 20),
             (COMPUTE, "hash_loop", u64(1)), (keys.COUNTER_DEMO, "get", b"x")]
    for to, method, args in calls:
        assert ex.call(to, method, args, state, CTX).status is TxStatus.SUCCESS
    st = ex.stats()
    assert st["instances"] == 2 and st["created"] == 4 and st["evicted"] == 2
    ex.close()
    assert ex.stats()["instances"] == 0


def _hammer(ex: VmExecutor, state: DictState, out: list[TxOutcome]) -> None:
    for i in range(200):
        out.append(ex.call(COMPUTE, "hash_loop", u64(i), state, CTX))


def test_threads_get_their_own_instances(state: DictState) -> None:
    ex = VmExecutor(resolver)
    results: list[list[TxOutcome]] = [[] for _ in range(4)]
    threads = [threading.Thread(target=_hammer, args=(ex, state, r)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == results[0] for r in results)
    gc.collect()
    # Each thread had its own pool; the pools (and their engines) went away with the threads,
    # and their counters stayed in the totals.
    assert ex.stats() == {"workers": 0, "instances": 0, "created": 4, "evicted": 0}


def test_live_threads_keep_their_pools(state: DictState) -> None:
    ex = VmExecutor(resolver)
    ready, done = threading.Event(), threading.Event()

    def worker() -> None:
        ex.call(COMPUTE, "hash_loop", u64(1), state, CTX)
        ready.set()
        done.wait(30)

    t = threading.Thread(target=worker)
    t.start()
    ready.wait(30)
    gc.collect()
    assert ex.stats()["workers"] == 1 and ex.stats()["instances"] == 1
    done.set()
    t.join()


def _child(q: multiprocessing.Queue[bytes]) -> None:
    ex = make_executor(resolver)
    o = ex.call(COMPUTE, "hash_loop", u64(1234), DictState(), CTX)
    q.put(o.return_data)


def test_executor_in_forked_and_spawned_processes(vm: VmExecutor, state: DictState) -> None:
    want = vm.call(COMPUTE, "hash_loop", u64(1234), state, CTX).return_data  # parent pool is warm
    for method in ("fork", "spawn"):
        mp = multiprocessing.get_context(method)
        q: multiprocessing.Queue[bytes] = mp.Queue()
        p = mp.Process(target=_child, args=(q,))
        p.start()
        got = q.get(timeout=60)
        p.join(timeout=60)
        assert got == want, method


def test_executor_pickles_without_engines(vm: VmExecutor, state: DictState) -> None:
    vm.call(COMPUTE, "hash_loop", u64(1), state, CTX)
    clone: VmExecutor = pickle.loads(pickle.dumps(vm))
    assert clone.stats()["instances"] == 0
    assert clone.call(COMPUTE, "hash_loop", u64(1), state, CTX) == vm.call(
        COMPUTE, "hash_loop", u64(1), state, CTX
    )


def test_call_api_reports_would_be_writes(vm: VmExecutor, state: DictState) -> None:
    o = vm.call(keys.COUNTER_DEMO, "increment", b"q" + u64(4), state, CTX)
    assert o.status is TxStatus.SUCCESS
    assert o.writes == {keys.storage_key(keys.COUNTER_DEMO, b"q"): u64(4)}
    assert state.get(keys.storage_key(keys.COUNTER_DEMO, b"q")) is None


def test_self_test_detects_a_changed_behaviour(monkeypatch: pytest.MonkeyPatch) -> None:
    from node.vm import unicorn_backend

    nop = bytes.fromhex("13000000")
    probe = unicorn_backend._PROBE
    monkeypatch.setattr(unicorn_backend, "_PROBE", probe[:4] + nop + probe[8:])  # ecall -> nop
    with pytest.raises(unicorn_backend.SelfTestFailed, match="ecall hook saw"):
        unicorn_backend.self_test("native")


def test_startup_self_test() -> None:
    facts = startup_self_test()
    assert facts["gas_meter"] in ("native", "python")
    assert startup_self_test("python")["gas_meter"] == "python"


def test_gas_meter_falls_back_without_a_compiler(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    from node.vm import gasmeter

    monkeypatch.setenv("DUBHE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler-dubhe")
    monkeypatch.setattr(gasmeter, "_native_fn", None)
    with pytest.raises(gasmeter.GasMeterUnavailable, match="'no-such-compiler-dubhe' not found"):
        gasmeter.resolve_mode("native")
    assert gasmeter.resolve_mode("auto") == "python"


def test_gas_states_never_share_a_cache_line() -> None:
    # The native hook writes the gas state on every basic block; two threads' states on one
    # cache line made compute-heavy blocks run at 0.75x instead of 1.8x (false sharing).
    import ctypes
    import itertools

    from node.vm import gasmeter

    states = [gasmeter.new_gas_state() for _ in range(64)]
    addrs = sorted(ctypes.addressof(g) for g in states)
    assert all(a % 128 == 0 for a in addrs)
    assert all(
        b - a >= 128 for a, b in itertools.pairwise(addrs)
    )  # 48-byte states, 128-byte lines apart
    states[0].left = 7
    assert states[0].left == 7 and all(g.left == 0 for g in states[1:])
