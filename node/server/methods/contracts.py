"""Contract methods: ``dubhe_admin_deployContract`` (admin) and ``dubhe_call`` (read-only).

Both need the RISC-V VM (``[vm] default_vm = "CkbVM"``); on a node running the Python reference
they answer -32601 saying so (:class:`~node.core.errors.MethodUnavailable`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from node.core import keys
from node.core.codec import sha3
from node.core.errors import MethodUnavailable
from node.core.execution import BlockContext, TxStatus
from node.core.hexutil import data, parse_data
from node.core.tx import MAX_GAS_LIMIT
from node.rpc.jsonrpc import Params
from node.server.methods import params
from node.server.methods.ports import CodeLoader, LatestState, ReadOnlyCalls, SystemWrites
from node.server.methods.table import Call, rpc
from node.vm.runtime import DEFAULT_CALL_GAS

MAX_CODE_BYTES = 512 * 1024
#: The most gas one ``dubhe_call`` may use: a transaction's limit.
MAX_CALL_GAS = MAX_GAS_LIMIT


def deploy_address(code: bytes) -> bytes:
    """Default address of deployed code: derived from its hash (same code, same address)."""
    return sha3(b"dubhe-deploy" + sha3(code))[-keys.ADDRESS_LEN :]


@dataclass(frozen=True, slots=True)
class Deployment:
    code: bytes
    address: bytes


@dataclass(frozen=True, slots=True)
class ReadOnlyCall:
    to: bytes
    method: str
    args: bytes
    caller: bytes
    gas: int


def _code(v: Any) -> bytes:
    return parse_data(v, max_len=MAX_CODE_BYTES)


def _gas(v: Any) -> int:
    gas = params.u64(v)
    if not 0 < gas <= MAX_CALL_GAS:
        raise ValueError(f"must be 1..{MAX_CALL_GAS}")
    return gas


def deployment(v: Any) -> Deployment:
    """``{"code": hex, "address"?: hex}``; without an address, :func:`deploy_address`."""
    f = params.Fields(v, ("code", "address"))
    code = f.get("code", _code)
    return Deployment(code, f.opt("address", params.address, None) or deploy_address(code))


def read_only_call(v: Any) -> ReadOnlyCall:
    """``{"to", "method", "args"?, "from"?, "gas"?}`` (gas defaults to ``DEFAULT_CALL_GAS``)."""
    f = params.Fields(v, ("to", "method", "args", "from", "gas"))
    return ReadOnlyCall(
        to=f.get("to", params.address),
        method=f.get("method", params.identifier),
        args=f.opt("args", params.call_args, b""),
        caller=f.opt("from", params.address, bytes(keys.ADDRESS_LEN)),
        gas=f.opt("gas", _gas, DEFAULT_CALL_GAS),
    )


class ContractMethods:
    """``loader`` and ``calls`` are None on a node without the RISC-V VM."""

    def __init__(self, loader: CodeLoader | None, calls: ReadOnlyCalls | None, writes: SystemWrites,
                 chain: LatestState, *, chain_id: int) -> None:
        self.loader = loader
        self.calls = calls
        self.writes = writes
        self.chain = chain
        self.chain_id = chain_id

    def _need_vm(self) -> None:
        if self.loader is None or self.calls is None:
            raise MethodUnavailable(
                'contracts need [vm] default_vm = "CkbVM" (this node runs the Python reference)'
            )

    @rpc("dubhe_admin_deployContract")
    async def deploy(self, p: Params, c: Call) -> dict[str, Any]:
        """params: ``[{"code": hex, "address"?: hex}]``; applies at the next block. Returns
        ``{address, codeHash, exports, status, blockNumber}``: once that block is committed
        (``status: "committed"``), or at once while production is paused (``status: "queued"``,
        ``blockNumber: null``; listed in ``dubhe_status.queuedDeploys`` until the first block
        after the resume takes it)."""
        p.max_count(1)
        self._need_vm()
        assert self.loader is not None
        d = p.get(0, "deployment", deployment)
        program = await asyncio.to_thread(
            self.loader.deploy_check, d.code
        )  # raises CodeRejected (-32602)
        info = {"address": data(d.address), "codeHash": data(program.code_hash)}
        number = await self.writes.schedule_system_write({keys.code_key(d.address): d.code}, info)
        self.loader.invalidate(d.address)
        return {
            **info,
            "exports": sorted(program.exports),
            "status": "queued" if number is None else "committed",
            "blockNumber": None if number is None else hex(number),
        }

    @rpc("dubhe_call")
    async def call(self, p: Params, c: Call) -> dict[str, Any]:
        """params: ``[{"to", "method", "args"?, "from"?, "gas"?}]``: executes against the latest
        committed state in the latest block's context; nothing is written."""
        p.max_count(1)
        self._need_vm()
        assert self.calls is not None
        q = p.get(0, "call", read_only_call)
        head = self.chain.head
        assert head is not None  # genesis is committed before the listeners start
        ctx = BlockContext(head.number, head.timestamp_ms, self.chain_id)
        o = await asyncio.to_thread(self.calls.call, q.to, q.method, q.args, self.chain, ctx,
                                    caller=q.caller, gas_limit=q.gas)
        return {
            "status": o.status.name.lower(),
            "success": o.status == TxStatus.SUCCESS,
            "returnData": data(o.return_data),
            "gasUsed": o.gas_used,
            "events": [
                {
                    "address": data(e.address),
                    "topics": [data(t) for t in e.topics],
                    "data": data(e.data),
                }
                for e in o.events
            ],
            "reason": o.reason,
            "blockNumber": hex(head.number),
        }
