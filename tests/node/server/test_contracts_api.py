"""dubhe_admin_deployContract and dubhe_call on the RISC-V VM, and the VM choice being fixed at
genesis."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from server_harness import ADMIN_TOKEN, RunningNode, make_config  # type: ignore[import-not-found]
from timing import wait_until  # type: ignore[import-not-found]

from lab.clients.rpc import HttpRpc, RpcError
from node.core.codec import pack_u64, unpack_u64
from node.core.hexutil import data

pytestmark = pytest.mark.timeout(120)
BUILD = Path(__file__).resolve().parents[3] / "contracts" / "build"


async def test_deploy_call_upgrade(fresh_node: Any) -> None:
    n = fresh_node(node={"block_time_ms": 50})
    compute, counter = (BUILD / "compute.elf").read_bytes(), (BUILD / "counter.elf").read_bytes()
    addr = "0x" + "ab" * 20
    async with HttpRpc(n.rpc, token=ADMIN_TOKEN) as admin:
        d = await admin.call("dubhe_admin_deployContract", {"code": data(counter), "address": addr})
        assert d["address"] == addr and "increment" in d["exports"]
        r = await admin.call("dubhe_call", {"to": addr, "method": "get", "args": data(b"k")})
        assert r["success"] and unpack_u64(bytes.fromhex(r["returnData"][2:])) == 0
        # upgrade in place: the next call runs the new code (hot reload, no restart)
        d2 = await admin.call(
            "dubhe_admin_deployContract", {"code": data(compute), "address": addr}
        )
        assert (
            int(d2["blockNumber"], 16) > int(d["blockNumber"], 16)
            and d2["codeHash"] != d["codeHash"]
        )
        r = await admin.call(
            "dubhe_call", {"to": addr, "method": "hash_loop", "args": data(pack_u64(1000))}
        )
        assert (
            r["success"] and len(bytes.fromhex(r["returnData"][2:])) == 32 and r["gasUsed"] > 1000
        )
        r = await admin.call(
            "dubhe_call", {"to": addr, "method": "increment", "args": data(b"k" + pack_u64(1))}
        )
        assert not r["success"] and r["reason"]
        missing = await admin.call("dubhe_call", {"to": "0x" + "cd" * 20, "method": "get"})
        assert missing["status"] == "revert" and "no contract" in missing["reason"]
        # code derived address when none is given
        d3 = await admin.call("dubhe_admin_deployContract", {"code": data(counter)})
        assert len(d3["address"]) == 42


async def test_deploy_while_paused_is_queued_and_lands_in_the_next_block(fresh_node: Any) -> None:
    n = fresh_node(node={"block_time_ms": 50})
    counter = (BUILD / "counter.elf").read_bytes()
    addr = "0x" + "cd" * 20
    async with HttpRpc(n.rpc, token=ADMIN_TOKEN, timeout_s=5) as admin:
        paused = await admin.call("dubhe_admin_pauseProduction")
        last = int(paused["lastBlock"], 16)
        # answered at once (before, it hung until the request timeout), not yet applied
        d = await admin.call("dubhe_admin_deployContract", {"code": data(counter), "address": addr})
        assert d["status"] == "queued" and d["blockNumber"] is None
        st = await admin.call("dubhe_status")
        assert st["paused"]
        assert st["queuedDeploys"] == [{"address": addr, "codeHash": d["codeHash"]}]
        assert int(await admin.call("eth_blockNumber"), 16) == last
        r = await admin.call("dubhe_call", {"to": addr, "method": "get", "args": data(b"k")})
        assert not r["success"]  # no code there yet
        await admin.call("dubhe_admin_resumeProduction")

        async def landed() -> bool:
            return bool((await admin.call("dubhe_status"))["queuedDeploys"] == [])

        await wait_until(landed, what="the queued deploy taken by a block")
        r = await admin.call("dubhe_call", {"to": addr, "method": "get", "args": data(b"k")})
        assert r["success"]  # (the exact block is checked in-process: test_production.py)


async def test_deploy_rejections(fresh_node: Any) -> None:
    n = fresh_node()
    async with HttpRpc(n.rpc) as anon:
        with pytest.raises(RpcError) as e:
            await anon.call("dubhe_admin_deployContract", {"code": "0x00"})
        assert e.value.code == -32010
    async with HttpRpc(n.rpc, token=ADMIN_TOKEN) as admin:
        with pytest.raises(RpcError) as e:
            await admin.call("dubhe_admin_deployContract", {"code": data(b"\x7fELF" + bytes(60))})
        assert e.value.code == -32602 and "contract code rejected" in e.value.message
        with pytest.raises(RpcError) as e:
            await admin.call("dubhe_admin_deployContract", {"code": "0x00", "bogus": 1})
        assert e.value.code == -32602 and "bogus" in e.value.message
        with pytest.raises(RpcError) as e:
            await admin.call("dubhe_call", {"to": "0x12", "method": "get"})
        assert e.value.code == -32602 and "to" in e.value.message


async def test_reference_vm_has_no_contract_methods(fresh_node: Any) -> None:
    n = fresh_node(vm={"default_vm": "Reference"})
    async with HttpRpc(n.rpc, token=ADMIN_TOKEN) as admin:
        with pytest.raises(RpcError) as e:
            await admin.call("dubhe_call", {"to": "0x" + "00" * 20, "method": "get"})
        assert e.value.code == -32601 and "CkbVM" in e.value.message


def test_vm_is_fixed_at_genesis(tmp_path: Path) -> None:
    n = RunningNode(tmp_path, make_config(tmp_path, vm={"default_vm": "Reference"})).start()
    assert n.stop() == 0
    cfg = make_config(tmp_path, vm={"default_vm": "CkbVM"})
    (tmp_path / "config.toml").write_bytes(tomli_w.dumps(cfg).encode())
    r = subprocess.run([sys.executable, "-m", "node", "--config", str(tmp_path / "config.toml")],
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 1  # a valid config this data directory cannot run (docs/cli.md)
    assert "vm.default_vm: this chain was created with 'Reference'" in r.stderr
    assert "Traceback" not in r.stderr
