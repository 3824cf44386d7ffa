"""Loader: verify + prepare once, LRU by count and bytes, persistent cache across restarts,
invalidation on code change (hot reload), rejection errors, and use as the VM's resolver."""

from __future__ import annotations

import threading

import pytest

from node.core import keys
from node.core.execution import BlockContext, TxStatus
from node.core.tx import Signer, sign_tx
from node.loader.loader import CodeRejected, Loader
from node.loader.lru import ProgramLRU
from node.loader.store import DirectoryCodeCache, MemoryCodeCache, cache_key
from node.vm.elf import ElfRejected, prepare
from node.vm.genesis import contract_elf, genesis_contracts, native_token_elf
from node.vm.runtime import VmExecutor

CTX = BlockContext(1, 1_000, 7)
A = bytes(19) + b"\x41"
B = bytes(19) + b"\x42"


class State:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def deploy(self, addr: bytes, code: bytes) -> None:
        self.data[keys.code_key(addr)] = code


def test_load_caches_by_address_and_hash() -> None:
    st, ld = State(), Loader()
    assert ld.load(A, st) is None
    st.deploy(A, contract_elf("counter"))
    st.deploy(B, contract_elf("counter"))
    p1 = ld.load(A, st)
    assert p1 is not None and "increment" in p1.exports
    assert ld.load(A, st) is p1
    assert ld.load(B, st) is p1  # same code hash, prepared once
    s = ld.stats()
    assert (s.prepares, s.misses, s.hits, s.programs) == (1, 1, 2, 1)
    assert s.bytes == p1.footprint and 0 < s.hit_ratio < 1


def test_code_change_is_picked_up_without_restart() -> None:
    st, ld = State(), Loader()
    st.deploy(A, contract_elf("counter"))
    old = ld.load(A, st)
    st.deploy(A, contract_elf("compute"))  # upgrade
    new = ld.load(A, st)
    assert old is not None and new is not None and new.code_hash != old.code_hash
    assert "hash_loop" in new.exports
    del st.data[keys.code_key(A)]
    assert ld.load(A, st) is None


def test_lru_bounded_by_count_and_bytes() -> None:
    progs = [prepare(native_token_elf(bytes([i]) * 20)) for i in range(5)]
    lru = ProgramLRU(max_entries=3, max_bytes=10**9)
    for p in progs:
        lru.put(p)
    assert len(lru) == 3 and lru.evictions == 2 and progs[0].code_hash not in lru
    lru = ProgramLRU(max_entries=100, max_bytes=2 * progs[0].footprint + 1)
    for p in progs:
        lru.put(p)
    assert len(lru) == 2 and lru.bytes <= lru.max_bytes
    lru.get(progs[3].code_hash)  # refresh: progs[4]'s neighbour becomes the oldest
    lru.put(progs[0])
    assert progs[3].code_hash in lru and progs[4].code_hash not in lru


def test_evicted_programs_reload_and_addresses_follow() -> None:
    st, ld = State(), Loader(max_programs=2)
    addrs = [bytes(19) + bytes([i]) for i in range(1, 5)]
    for i, a in enumerate(addrs):
        st.deploy(a, native_token_elf(bytes([i]) * 20))
    for a in addrs:
        ld.load(a, st)
    s = ld.stats()
    assert s.programs == 2 and s.evictions == 2 and s.prepares == 4
    assert ld.load(addrs[0], st) is not None  # evicted: prepared again
    assert ld.stats().prepares == 5


def test_restart_with_persistent_cache_skips_verification() -> None:
    store = MemoryCodeCache()
    st = State()
    for addr, code in genesis_contracts():
        st.deploy(addr, code)
    first = Loader(store)
    progs = [first.load(addr, st) for addr, _ in genesis_contracts()]
    assert first.stats().prepares == 2 and store.puts == 2
    second = Loader(store)  # a restarted node
    again = [second.load(addr, st) for addr, _ in genesis_contracts()]
    s = second.stats()
    assert (s.prepares, s.persistent_hits) == (0, 2)
    assert again == progs


def test_corrupt_persistent_entry_is_reverified(tmp_path: object) -> None:
    from pathlib import Path

    store = DirectoryCodeCache(Path(str(tmp_path)))
    st = State()
    code = contract_elf("counter")
    st.deploy(A, code)
    p = Loader(store).load(A, st)
    assert p is not None
    key = cache_key(p.code_hash)
    raw = bytearray(store.get(key) or b"")
    raw[100] ^= 0xFF
    store.put(key, bytes(raw))
    ld = Loader(store)
    assert ld.load(A, st) == p
    assert (ld.stats().persistent_hits, ld.stats().prepares) == (0, 1)


def test_deploy_check_errors_name_the_problem() -> None:
    ld = Loader()
    with pytest.raises(CodeRejected, match="contract code rejected: not an ELF file"):
        ld.deploy_check(b"not an elf")
    bad = bytearray(contract_elf("counter"))
    bad[18] = 62  # EM_X86_64
    with pytest.raises(CodeRejected, match="not a RISC-V ELF") as info:
        ld.deploy_check(bytes(bad))
    assert isinstance(info.value, ElfRejected) and info.value.rpc_code == -32602
    with pytest.raises(CodeRejected):  # remembered: not verified again
        ld.deploy_check(bytes(bad))
    assert ld.stats().rejections == 2  # two distinct bad codes, each verified once
    p = ld.deploy_check(contract_elf("erc20"))
    assert "approve" in p.exports
    st = State()
    st.deploy(A, contract_elf("erc20"))
    assert ld.load(A, st) is p  # the deploy warmed the cache


def test_vm_uses_the_loader_as_resolver() -> None:
    st = State()
    for addr, code in genesis_contracts():
        st.deploy(addr, code)
    bad = bytearray(contract_elf("counter"))
    bad[48] |= 1  # RVC flag
    st.deploy(B, bytes(bad))
    vm = VmExecutor(Loader())
    signer = Signer.from_seed(b"x")
    tx = sign_tx(
        signer,
        chain_id=7,
        nonce=0,
        to=keys.COUNTER_DEMO,
        method="increment",
        args=b"a" + bytes(8),
        write_set=(keys.storage_key(keys.COUNTER_DEMO, b"a"),),
    )
    assert vm.execute(tx, st, CTX).status is TxStatus.SUCCESS
    o = vm.call(B, "get", b"a", st, CTX)
    assert o.status is TxStatus.REVERT
    assert o.reason.startswith(
        f"invalid contract code at 0x{B.hex()}: contract code rejected: compressed"
    )
    assert vm.call(A, "get", b"a", st, CTX).reason == f"no contract at 0x{A.hex()}"


def test_concurrent_loads() -> None:
    st, ld = State(), Loader(max_programs=3)
    addrs = [bytes(19) + bytes([i]) for i in range(1, 7)]
    for i, a in enumerate(addrs):
        st.deploy(a, native_token_elf(bytes([i % 4]) * 20))
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(50):
                for a in addrs:
                    p = ld.load(a, st)
                    assert p is not None and "transfer" in p.exports
        except BaseException as e:
            errors.append(e)

    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert ld.stats().programs <= 3
