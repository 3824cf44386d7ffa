"""``eth_getCode``, ``eth_call``, ``eth_estimateGas`` and ``eth_sendRawTransaction`` over the
wire, against a ``dubhe-node`` with the RISC-V VM (and one with the Python reference), in the
execution-apis formats web3 clients expect: hex data and quantities, revert = error 3 with the
return data, an old block = -32000."""

from __future__ import annotations

from typing import Any

import pytest
from timing import wait_until  # type: ignore[import-not-found]

from lab.clients.rpc import HttpRpc, RpcError
from node.core import keys
from node.core.codec import pack_u64, unpack_u64
from node.core.hexutil import data, parse_qty
from node.core.tx import Signer, sign_tx
from node.server.methods.eth_compat import selector

NT = data(keys.NATIVE_TOKEN)
AUTHORITY = Signer.from_seed(b"mint-authority")  # the config's default dev authority


def _input(method: str, args: bytes = b"") -> str:
    return data(selector(method) + args)


async def _error(rpc: HttpRpc, method: str, *params: Any) -> RpcError:
    with pytest.raises(RpcError) as e:
        await rpc.call(method, *params)
    return e.value


def test_selector_is_keccak_of_the_method_name() -> None:
    # Keccak-256 (Ethereum's), not SHA3-256: keccak256("transfer") starts b483afd3
    assert selector("transfer").hex() == "b483afd3"


async def test_get_code_and_calls_on_the_vm(fresh_node: Any) -> None:
    n = fresh_node()
    async with HttpRpc(n.rpc) as rpc:
        code = await rpc.call("eth_getCode", NT, "latest")
        assert code.startswith("0x7f454c46")  # the native token's RISC-V ELF
        assert await rpc.call("eth_getCode", "0x" + "99" * 20) == "0x"
        who = Signer.from_seed(b"eth-compat").address
        got = await rpc.call("eth_call", {"to": NT, "input": _input("balance_of", who)}, "latest")
        assert got == data(pack_u64(0))
        # "data", the older name of "input", works too; both must agree
        assert await rpc.call("eth_call", {"to": NT, "data": _input("balance_of", who)}) == got
        e = await _error(rpc, "eth_call", {"to": NT, "input": _input("balance_of", who),
                                           "data": "0x00"})
        assert e.code == -32602 and '"data" and "input"' in e.message
        # a call to an address without code returns empty data, as on Ethereum
        assert await rpc.call("eth_call", {"to": "0x" + "99" * 20, "input": "0x"}) == "0x"


async def test_revert_is_error_3_with_the_reason_and_data(fresh_node: Any) -> None:
    n = fresh_node()
    async with HttpRpc(n.rpc) as rpc:
        args = bytes(20) + pack_u64(5)  # transfer 5 from an empty account
        e = await _error(rpc, "eth_call", {"to": NT, "input": _input("transfer", args)})
        assert (e.code, e.message, e.data) == (3, "execution reverted: insufficient balance", "0x")
        e = await _error(rpc, "eth_estimateGas", {"to": NT, "input": _input("transfer", args)})
        assert e.code == 3


async def test_bad_calls_say_what_is_wrong(fresh_node: Any) -> None:
    n = fresh_node()
    async with HttpRpc(n.rpc) as rpc:
        e = await _error(rpc, "eth_call", {"to": NT, "input": "0x12345678"})
        assert e.code == -32602
        assert "selector 0x12345678 matches no method" in e.message
        assert f"transfer ({data(selector('transfer'))})" in e.message
        e = await _error(rpc, "eth_call", {"to": NT, "input": "0x12"})
        assert e.code == -32602 and "4-byte selector" in e.message
        e = await _error(rpc, "eth_call", {"input": "0x12345678"})
        assert e.code == -32602 and "dubhe_admin_deployContract" in e.message
        e = await _error(rpc, "eth_call", {"to": NT, "input": "0x12345678", "value": "0x1"})
        assert e.code == -32602 and "value" in e.message
        e = await _error(rpc, "eth_call", {"to": NT, "input": "0x", "colour": 1})
        assert e.code == -32602 and "colour" in e.message
        await wait_until(lambda: _height(n) >= 1, 10)
        e = await _error(rpc, "eth_getCode", NT, "0x0")
        assert e.code == -32000 and "only the latest state" in e.message


def _height(n: Any) -> int:
    import json
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}).encode()
    req = urllib.request.Request(n.rpc, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return parse_qty(json.loads(r.read())["result"])


async def test_estimate_is_the_gas_the_transaction_uses(fresh_node: Any) -> None:
    """eth_estimateGas of a mint equals the gasUsed of its receipt, and the minted balance is
    what eth_call reads afterwards."""
    n = fresh_node()
    to = Signer.from_seed(b"estimate").address
    args = to + pack_u64(1234)
    async with HttpRpc(n.rpc) as rpc:
        call = {"from": data(AUTHORITY.address), "to": NT, "input": _input("mint", args)}
        estimate = parse_qty(await rpc.call("eth_estimateGas", call, "latest"))
        chain_id = parse_qty(await rpc.call("eth_chainId"))
        nonce = parse_qty(await rpc.call("eth_getTransactionCount", data(AUTHORITY.address),
                                         "pending"))
        tx = sign_tx(AUTHORITY, chain_id=chain_id, nonce=nonce, to=keys.NATIVE_TOKEN,
                     method="mint", args=args, write_set=(keys.balance_key(to),),
                     gas_limit=estimate)
        h = await rpc.call("dubhe_sendTransaction", data(tx.raw))
        receipt: dict[str, Any] = {}

        async def included() -> bool:
            receipt.update(await rpc.call("eth_getTransactionReceipt", h) or {})
            return bool(receipt)

        await wait_until(included, 20)
        assert receipt["status"] == "0x1"
        assert parse_qty(receipt["gasUsed"]) == estimate
        got = await rpc.call("eth_call", {"to": NT, "input": _input("balance_of", to)})
        assert unpack_u64(bytes.fromhex(got[2:])) == 1234
        # too little gas: geth's words
        e = await _error(rpc, "eth_estimateGas", {**call, "gas": hex(estimate // 4)})
        assert e.code == -32000 and e.message == f"gas required exceeds allowance ({estimate // 4})"


async def test_send_raw_transaction_says_how_to_submit(fresh_node: Any) -> None:
    n = fresh_node()
    async with HttpRpc(n.rpc) as rpc:
        e = await _error(rpc, "eth_sendRawTransaction", "0xf86c808504a817c800825208")
        assert e.code == -32601
        assert "dubhe_sendTransaction" in e.message and "Ed25519" in e.message
        assert e.data == {"use": "dubhe_sendTransaction"}


async def test_reference_vm_serves_code_but_no_calls(fresh_node: Any) -> None:
    n = fresh_node(vm={"default_vm": "Reference"})
    async with HttpRpc(n.rpc) as rpc:
        assert await rpc.call("eth_getCode", NT) == "0x"  # system contracts are Python there
        e = await _error(rpc, "eth_call", {"to": NT, "input": _input("balance_of", bytes(20))})
        assert e.code == -32601 and "CkbVM" in e.message
