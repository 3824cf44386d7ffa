"""Contract methods in-process: a fake loader, fake read-only calls and fake system writes over a
real in-memory chain (its head is the calls' block context)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from inproc import CHAIN_ID, InProcess, MemoryChain, RpcFault  # type: ignore[import-not-found]

from node.core import keys
from node.core.codec import sha3
from node.core.execution import BlockContext, Event, StateReader, TxOutcome, TxStatus
from node.core.hexutil import data
from node.loader.loader import CodeRejected
from node.server.methods.contracts import MAX_CALL_GAS, ContractMethods, deploy_address
from node.vm.program import Program
from node.vm.runtime import DEFAULT_CALL_GAS

GOOD = b"\x7fELF-good"


@dataclass
class FakeLoader:
    invalidated: list[bytes | None] = field(default_factory=list)

    def deploy_check(self, code: bytes) -> Program:
        if code != GOOD:
            raise CodeRejected("not an ELF")
        return Program(sha3(code), (), {"get": 0x1000, "increment": 0x1100}, len(code))

    def invalidate(self, address: bytes | None = None) -> None:
        self.invalidated.append(address)


@dataclass
class FakeCalls:
    seen: list[tuple[Any, ...]] = field(default_factory=list)

    def call(self, to: bytes, method: str, args: bytes, state: StateReader, ctx: BlockContext, *,
             caller: bytes, gas_limit: int) -> TxOutcome:
        self.seen.append((to, method, args, ctx, caller, gas_limit))
        if method == "fail":
            return TxOutcome(TxStatus.REVERT, 21, reason="nope")
        return TxOutcome(TxStatus.SUCCESS, 42, b"\x05", (Event(to, (bytes(32),), b"d"),))


@dataclass
class FakeWrites:
    """Resolves to block 9, or to None (queued) while ``paused``."""

    scheduled: list[Mapping[bytes, bytes | None]] = field(default_factory=list)
    infos: list[Mapping[str, Any] | None] = field(default_factory=list)
    paused: bool = False

    def schedule_system_write(
        self, writes: Mapping[bytes, bytes | None], info: Mapping[str, Any] | None = None
    ) -> Awaitable[int | None]:
        self.scheduled.append(dict(writes))
        self.infos.append(info)
        fut: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        fut.set_result(None if self.paused else 9)
        return fut


@dataclass
class Rig:
    rpc: InProcess
    loader: FakeLoader
    calls: FakeCalls
    writes: FakeWrites
    chain: MemoryChain


@pytest.fixture
def rig() -> Rig:
    chain = MemoryChain.new()
    loader, calls, writes = FakeLoader(), FakeCalls(), FakeWrites()
    rpc = InProcess(ContractMethods(loader, calls, writes, chain.store, chain_id=CHAIN_ID))
    return Rig(rpc, loader, calls, writes, chain)


async def test_deploy_applies_at_the_next_block(rig: Rig) -> None:
    addr = bytes.fromhex("ab" * 20)
    d = await rig.rpc.call(
        "dubhe_admin_deployContract", {"code": data(GOOD), "address": data(addr)}, admin=True
    )
    assert d == {"address": data(addr), "codeHash": data(sha3(GOOD)), "blockNumber": "0x9",
                 "exports": ["get", "increment"], "status": "committed"}
    assert rig.writes.scheduled == [{keys.code_key(addr): GOOD}]
    assert rig.writes.infos == [{"address": data(addr), "codeHash": data(sha3(GOOD))}]
    assert rig.loader.invalidated == [addr]
    d2 = await rig.rpc.call("dubhe_admin_deployContract", {"code": data(GOOD)}, admin=True)
    assert d2["address"] == data(deploy_address(GOOD))


async def test_deploy_while_paused_answers_queued(rig: Rig) -> None:
    rig.writes.paused = True
    d = await rig.rpc.call("dubhe_admin_deployContract", {"code": data(GOOD)}, admin=True)
    assert d["status"] == "queued" and d["blockNumber"] is None
    assert d["address"] == data(deploy_address(GOOD)) and len(rig.writes.scheduled) == 1


@pytest.mark.parametrize(
    ("spec", "code", "message"),
    [
        ({"code": data(b"junk")}, -32602, "contract code rejected: not an ELF"),
        ({"code": data(GOOD), "bogus": 1}, -32602, "(deployment): unknown field(s) ['bogus']"),
        ({"address": "0x" + "ab" * 20}, -32602, "(deployment): missing field code"),
        (
            {"code": data(GOOD), "address": "0x12"},
            -32602,
            "(deployment): field address: expected 20 bytes",
        ),
        ("0x00", -32602, "(deployment): expected an object"),
    ],
)
async def test_deploy_rejections(rig: Rig, spec: object, code: int, message: str) -> None:
    with pytest.raises(RpcFault) as e:
        await rig.rpc.call("dubhe_admin_deployContract", spec, admin=True)
    assert e.value.code == code and message in e.value.message
    assert rig.writes.scheduled == []


async def test_deploy_needs_the_admin_token(rig: Rig) -> None:
    with pytest.raises(RpcFault) as e:
        await rig.rpc.call("dubhe_admin_deployContract", {"code": data(GOOD)})
    assert e.value.code == -32010 and rig.writes.scheduled == []


async def test_call_runs_in_the_head_context_with_defaults(rig: Rig) -> None:
    to = bytes.fromhex("cd" * 20)
    r = await rig.rpc.call("dubhe_call", {"to": data(to), "method": "get"})
    assert r == {"status": "success", "success": True, "returnData": "0x05", "gasUsed": 42,
                 "events": [{"address": data(to), "topics": [data(bytes(32))], "data": data(b"d")}],
                 "reason": "", "blockNumber": "0x0"}
    head = rig.chain.store.head
    assert head is not None
    assert rig.calls.seen == [
        (to, "get", b"", BlockContext(0, head.timestamp_ms, CHAIN_ID), bytes(20), DEFAULT_CALL_GAS)
    ]
    caller = bytes.fromhex("01" * 20)
    r = await rig.rpc.call("dubhe_call", {"to": data(to), "method": "fail", "args": "0x0102",
                                          "from": data(caller), "gas": hex(MAX_CALL_GAS)})
    assert r["status"] == "revert" and not r["success"] and r["reason"] == "nope"
    assert rig.calls.seen[-1][2:] == (b"\x01\x02", rig.calls.seen[-1][3], caller, MAX_CALL_GAS)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"to": "0x12", "method": "get"}, "field to: expected 20 bytes"),
        (
            {"to": "0x" + "cd" * 20, "method": "not an identifier"},
            "field method: expected an identifier",
        ),
        (
            {"to": "0x" + "cd" * 20, "method": "get", "gas": "0x0"},
            f"field gas: must be 1..{MAX_CALL_GAS}",
        ),
        (
            {"to": "0x" + "cd" * 20, "method": "get", "gas": hex(MAX_CALL_GAS + 1)},
            "field gas: must be 1..",
        ),
        ({"to": "0x" + "cd" * 20, "method": "get", "value": "0x1"}, "unknown field(s) ['value']"),
        ({"method": "get"}, "missing field to"),
    ],
)
async def test_call_rejections_name_the_field(rig: Rig, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(RpcFault) as e:
        await rig.rpc.call("dubhe_call", spec)
    assert e.value.code == -32602 and "invalid parameter 0 (call)" in e.value.message
    assert message in e.value.message and rig.calls.seen == []


async def test_without_the_risc_v_vm_both_methods_say_why() -> None:
    chain = MemoryChain.new()
    rpc = InProcess(ContractMethods(None, None, FakeWrites(), chain.store, chain_id=CHAIN_ID))
    for method, admin in (("dubhe_call", False), ("dubhe_admin_deployContract", True)):
        with pytest.raises(RpcFault) as e:
            await rpc.call(method, {"to": "0x" + "00" * 20, "method": "get"}, admin=admin)
        assert e.value.code == -32601 and 'default_vm = "CkbVM"' in e.value.message
