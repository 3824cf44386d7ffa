"""Ethereum compatibility for web3 clients: ``eth_getCode``, ``eth_call`` and
``eth_estimateGas`` in the execution-apis formats, and ``eth_sendRawTransaction`` answered with
how to submit a Dubhe transaction instead.

**Calldata.** A Dubhe contract exports methods by name and takes raw argument bytes
(docs/vm-abi.md); an Ethereum call carries one ``input`` byte string. Here ``input`` is a 4-byte
*selector*, the first four bytes of the Keccak-256 of the method's name (``keccak256(b"get")[:4]``,
no parameter list), followed by the method's argument bytes exactly as ``dubhe_call``'s ``args``.
The node finds the export of the contract at ``to`` whose selector matches (:func:`selector`).

**Block.** Only the latest state is kept: ``latest``, ``pending``, ``safe``, ``finalized`` and the
head's number are served; an older block answers -32000 (as ``eth_getBalance`` does).

**Errors** (as geth answers them): a revert is code 3, ``execution reverted: <reason>``, with the
contract's return data in ``data``; running out of gas is -32000 (``out of gas``, or for
``eth_estimateGas`` ``gas required exceeds allowance (N)``); an input whose selector matches no
export is -32602 listing the exports and their selectors.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from Crypto.Hash import keccak

from node.core import keys
from node.core.codec import sha3
from node.core.errors import (
    SERVER_ERROR,
    InvalidParams,
    MethodUnavailable,
    RemoteError,
    StateUnavailable,
)
from node.core.execution import BlockContext, TxOutcome, TxStatus
from node.core.hexutil import data, parse_data, parse_qty, qty
from node.core.tx import MAX_ARGS_BYTES, MAX_GAS_LIMIT
from node.rpc.jsonrpc import Params
from node.server.methods import params
from node.server.methods.ports import CodeLoader, LatestState, ReadOnlyCalls
from node.server.methods.table import Call, rpc
from node.vm import abi
from node.vm.runtime import DEFAULT_CALL_GAS

#: Tags that name the latest state (the node's only state).
_LATEST_STATE_TAGS = ("latest", "pending", "safe", "finalized")
_LATEST: int | str = "latest"
#: execution-apis' ``GenericTransaction`` fields; the fee fields are accepted and ignored (a call
#: pays nothing), ``value`` must be zero.
CALL_FIELDS = ("type", "nonce", "to", "from", "gas", "value", "input", "data", "gasPrice",
               "maxPriorityFeePerGas", "maxFeePerGas", "maxFeePerBlobGas", "accessList",
               "blobVersionedHashes", "chainId")
#: Selector maps kept (one per distinct contract code).
_SELECTOR_CACHE = 256

SUBMIT_HOW = (
    "eth_sendRawTransaction is not served: Dubhe transactions are Ed25519-signed in their own "
    "encoding, not RLP/secp256k1 Ethereum transactions. Sign with node.core.tx.sign_tx and submit "
    "its raw bytes as hex with dubhe_sendTransaction (or dubhe_sendTransactions for a list); "
    "README.md, 'Sending a transaction from Python', shows every step"
)


def selector(method: str) -> bytes:
    """The 4-byte selector of a Dubhe method: Keccak-256 of its name, first four bytes."""
    return keccak.new(digest_bits=256, data=method.encode()).digest()[:4]


class ExecutionReverted(RemoteError):
    """The call reverted: code 3 with the return data in ``data`` (geth, execution-apis)."""

    rpc_code = 3


class ExecutionFailed(RemoteError):
    """The call failed another way (out of gas, undeclared access): geth's -32000."""

    rpc_code = SERVER_ERROR


@dataclass(frozen=True, slots=True)
class EthCall:
    to: bytes
    caller: bytes
    gas: int | None
    input: bytes


def _value(v: Any) -> int:
    n = parse_qty(v, max_bits=256)
    if n:
        raise ValueError("must be 0x0: a Dubhe call carries no value (transfer the native token "
                         "with its transfer method)")
    return n


def _gas(v: Any) -> int:
    n = parse_qty(v, max_bits=64)
    if not 0 < n <= MAX_GAS_LIMIT:
        raise ValueError(f"must be 1..{MAX_GAS_LIMIT}")
    return n


def _input(v: Any) -> bytes:
    return parse_data(v, max_len=4 + MAX_ARGS_BYTES)


def eth_call_object(v: Any) -> EthCall:
    """execution-apis' ``GenericTransaction`` for a call: ``to`` required, ``input`` (or its
    older name ``data``; both must agree), ``from``, ``gas``, ``value`` (zero)."""
    f = params.Fields(v, CALL_FIELDS, expected="a transaction call object")
    if "to" not in v or v["to"] is None:
        raise ValueError("field to: required (Dubhe contracts are deployed with "
                         "dubhe_admin_deployContract, not by a call without 'to')")
    f.opt("value", _value, 0)
    inp = f.opt("input", _input, None)
    dat = f.opt("data", _input, None)
    if inp is not None and dat is not None and inp != dat:
        raise ValueError('both "data" and "input" are set and not equal')
    return EthCall(
        to=f.get("to", params.address),
        caller=f.opt("from", params.address, bytes(keys.ADDRESS_LEN)),
        gas=f.opt("gas", _gas, None),
        input=inp if inp is not None else (dat or b""),
    )


class EthCompatMethods:
    """``loader`` and ``calls`` are None on a node without the RISC-V VM (then ``eth_call`` and
    ``eth_estimateGas`` answer -32601 saying so; ``eth_getCode`` works on both)."""

    def __init__(self, loader: CodeLoader | None, calls: ReadOnlyCalls | None,
                 chain: LatestState, *, chain_id: int) -> None:
        self.loader = loader
        self.calls = calls
        self.chain = chain
        self.chain_id = chain_id
        self._selectors: OrderedDict[bytes, dict[bytes, str]] = OrderedDict()

    # -- helpers --------------------------------------------------------------------------
    def _latest(self, tag: int | str) -> None:
        head = self.chain.head
        number = head.number if head is not None else 0
        if tag in _LATEST_STATE_TAGS or tag == number:
            return
        at = 0 if tag == "earliest" else tag
        raise StateUnavailable(
            f"state at block {at} is not available (this node keeps only the latest state)")

    def _need_vm(self) -> tuple[CodeLoader, ReadOnlyCalls]:
        if self.loader is None or self.calls is None:
            raise MethodUnavailable(
                'contract calls need [vm] default_vm = "CkbVM" (this node runs the Python '
                "reference)")
        return self.loader, self.calls

    def _methods_of(self, loader: CodeLoader, code: bytes) -> dict[bytes, str]:
        """selector -> export name of ``code`` (cached by code hash)."""
        h = sha3(code)
        found = self._selectors.get(h)
        if found is None:
            program = loader.deploy_check(code)
            found = {selector(name): name for name in program.exports}
            self._selectors[h] = found
            while len(self._selectors) > _SELECTOR_CACHE:
                self._selectors.popitem(last=False)
        else:
            self._selectors.move_to_end(h)
        return found

    def _resolve(self, loader: CodeLoader, q: EthCall) -> tuple[str, bytes] | None:
        """(method, args) of the call, or None when ``to`` holds no code."""
        code = self.chain.get(keys.code_key(q.to))
        if code is None:
            return None
        if len(q.input) < 4:
            raise InvalidParams(
                "call: field input: expected a 4-byte selector (keccak256(method name)[:4]) and "
                f"the method's argument bytes, got {len(q.input)} bytes")
        methods = self._methods_of(loader, code)
        name = methods.get(q.input[:4])
        if name is None:
            known = ", ".join(f"{n} ({data(s)})" for s, n in sorted(methods.items(),
                                                                   key=lambda kv: kv[1]))
            raise InvalidParams(
                f"call: field input: selector {data(q.input[:4])} matches no method of "
                f"{data(q.to)}; its methods (selector = keccak256(name)[:4]): {known}")
        return name, q.input[4:]

    async def _run(self, q: EthCall, gas: int) -> TxOutcome | None:
        loader, calls = self._need_vm()
        resolved = self._resolve(loader, q)
        if resolved is None:
            return None
        method, args = resolved
        head = self.chain.head
        assert head is not None  # genesis is committed before the listeners start
        ctx = BlockContext(head.number, head.timestamp_ms, self.chain_id)
        return await asyncio.to_thread(calls.call, q.to, method, args, self.chain, ctx,
                                       caller=q.caller, gas_limit=gas)

    @staticmethod
    def _raise_failure(o: TxOutcome, gas: int, *, estimating: bool) -> None:
        if o.status == TxStatus.SUCCESS:
            return
        if o.status == TxStatus.REVERT:
            msg = f"execution reverted: {o.reason}" if o.reason else "execution reverted"
            raise ExecutionReverted(msg, data=data(o.return_data))
        if o.status == TxStatus.OUT_OF_GAS:
            raise ExecutionFailed(f"gas required exceeds allowance ({gas})" if estimating
                                  else "out of gas")
        raise ExecutionFailed(f"{o.status.name.lower()}: {o.reason}")

    # -- methods --------------------------------------------------------------------------
    @rpc("eth_getCode")
    def get_code(self, p: Params, c: Call) -> str:
        """params: ``[address, block]``: the contract's code (its RISC-V ELF), ``0x`` if none."""
        p.max_count(2)
        addr = p.get(0, "address", params.address)
        self._latest(p.opt(1, "block", params.block_tag, _LATEST))
        return data(self.chain.get(keys.code_key(addr)) or b"")

    @rpc("eth_call")
    async def call(self, p: Params, c: Call) -> str:
        """params: ``[{to, input, from?, gas?, value?}, block?]``: the method's return data;
        nothing is written. A call to an address without code returns ``0x``."""
        p.max_count(2)
        q = p.get(0, "call", eth_call_object)
        self._latest(p.opt(1, "block", params.block_tag, _LATEST))
        gas = q.gas or DEFAULT_CALL_GAS
        o = await self._run(q, gas)
        if o is None:
            return "0x"
        self._raise_failure(o, gas, estimating=False)
        return data(o.return_data)

    @rpc("eth_estimateGas")
    async def estimate_gas(self, p: Params, c: Call) -> str:
        """params: ``[{to, input, from?, gas?}, block?]``: the gas the call uses run as a
        transaction's body (the base cost included), within ``gas`` (default: a transaction's
        limit). Use it as the transaction's ``gas_limit``."""
        p.max_count(2)
        q = p.get(0, "call", eth_call_object)
        self._latest(p.opt(1, "block", params.block_tag, _LATEST))
        gas = q.gas or MAX_GAS_LIMIT
        o = await self._run(q, gas)
        if o is None:
            return qty(abi.GAS_TX_BASE)
        self._raise_failure(o, gas, estimating=True)
        return qty(o.gas_used)

    @rpc("eth_sendRawTransaction")
    def send_raw_transaction(self, p: Params, c: Call) -> str:
        """Not served: the error says how to submit a Dubhe transaction instead."""
        raise MethodUnavailable(SUBMIT_HOW, data={"use": "dubhe_sendTransaction"})
