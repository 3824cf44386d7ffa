"""Contract methods: ``dubhe_admin_deployContract`` (admin) and ``dubhe_call`` (read-only).

Both need the RISC-V VM (``[vm] default_vm = "CkbVM"``); with the Python reference VM they answer
-32601 naming the reason.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from node.core import keys
from node.core.codec import sha3
from node.core.errors import InvalidParams, NodeError
from node.core.execution import BlockContext, TxStatus
from node.core.hexutil import data, parse_data, parse_qty
from node.rpc.jsonrpc import Params
from node.server.dispatch import Call, Handler

if TYPE_CHECKING:
    from node.server.node import Node

MAX_CODE_BYTES = 512 * 1024
MAX_CALL_GAS = 1_000_000_000


class NeedsVm(NodeError):
    rpc_code = -32601


def deploy_address(code: bytes) -> bytes:
    """Default address of deployed code: derived from its hash (same code, same address)."""
    return sha3(b"dubhe-deploy" + sha3(code))[-keys.ADDRESS_LEN :]


def _obj(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ValueError("expected an object")
    return v


def _field(spec: dict[str, Any], name: str, parse: Any, default: Any = ...) -> Any:
    """Parse ``spec[name]``; errors name the field (``to: expected 20 bytes, got 1``)."""
    if name not in spec:
        if default is ...:
            raise ValueError(f"{name}: missing")
        return default
    try:
        return parse(spec[name])
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name}: {e}") from None


def _method(v: Any) -> str:
    if not isinstance(v, str) or not v.isidentifier():
        raise ValueError("expected an identifier")
    return v


def build(node: Node) -> dict[str, Handler]:
    def need_vm() -> None:
        if node.loader is None:
            raise NeedsVm('contracts need [vm] default_vm = "CkbVM" (this node runs the Python reference)')

    async def dubhe_admin_deployContract(p: Params, c: Call) -> dict[str, Any]:
        """params: ``[{"code": hex, "address"?: hex}]``; applies at the next block, returns
        ``{address, codeHash, blockNumber, exports}`` once that block is committed."""
        p.max_count(1)
        need_vm()
        assert node.loader is not None
        spec = p.get(0, "deployment", _obj)
        unknown = set(spec) - {"code", "address"}
        if unknown:
            raise InvalidParams(f"invalid parameter 0 (deployment): unknown field(s) {sorted(unknown)}")
        try:
            code = _field(spec, "code", lambda v: parse_data(v, max_len=MAX_CODE_BYTES))
            address = _field(spec, "address", lambda v: parse_data(v, length=20), None) or deploy_address(code)
        except ValueError as e:
            raise InvalidParams(f"invalid parameter 0 (deployment): {e}") from None
        program = await asyncio.to_thread(node.loader.deploy_check, code)  # raises CodeRejected (-32602)
        number = await node.schedule_system_write({keys.code_key(address): code})
        node.loader.invalidate(address)
        return {
            "address": data(address),
            "codeHash": data(program.code_hash),
            "blockNumber": hex(number),
            "exports": sorted(program.exports),
        }

    async def dubhe_call(p: Params, c: Call) -> dict[str, Any]:
        """params: ``[{"to", "method", "args"?, "from"?, "gas"?}]``: executes against the latest
        committed state in the latest block's context; nothing is written."""
        p.max_count(1)
        need_vm()
        spec = p.get(0, "call", _obj)
        unknown = set(spec) - {"to", "method", "args", "from", "gas"}
        if unknown:
            raise InvalidParams(f"invalid parameter 0 (call): unknown field(s) {sorted(unknown)}")
        try:
            to = _field(spec, "to", lambda v: parse_data(v, length=20))
            method = _field(spec, "method", _method)
            args = _field(spec, "args", lambda v: parse_data(v, max_len=64 * 1024), b"")
            caller = _field(spec, "from", lambda v: parse_data(v, length=20), bytes(20))
            gas = _field(spec, "gas", lambda v: parse_qty(v, max_bits=64), 10_000_000)
            if not 0 < gas <= MAX_CALL_GAS:
                raise ValueError(f"gas: must be 1..{MAX_CALL_GAS}")
        except ValueError as e:
            raise InvalidParams(f"invalid parameter 0 (call): {e}") from None
        head = node.store.head
        assert head is not None
        ctx = BlockContext(head.number, head.timestamp_ms, node.cfg.node.chain_id)
        from node.vm.runtime import VmExecutor

        vm = node.tx_executor
        assert isinstance(vm, VmExecutor)
        o = await asyncio.to_thread(vm.call, to, method, args, node.store, ctx, caller=caller, gas_limit=gas)
        return {
            "status": o.status.name.lower(),
            "success": o.status == TxStatus.SUCCESS,
            "returnData": data(o.return_data),
            "gasUsed": o.gas_used,
            "events": [
                {"address": data(e.address), "topics": [data(t) for t in e.topics], "data": data(e.data)}
                for e in o.events
            ],
            "reason": o.reason,
            "blockNumber": hex(head.number),
        }

    return {"dubhe_admin_deployContract": dubhe_admin_deployContract, "dubhe_call": dubhe_call}
