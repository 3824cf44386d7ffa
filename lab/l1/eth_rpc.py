"""Ethereum JSON-RPC surface of the mock chain (formats per ethereum/execution-apis).

Methods: ``eth_chainId``, ``net_version``, ``net_listening``, ``web3_clientVersion``,
``eth_blockNumber``, ``eth_syncing``, ``eth_accounts``, ``eth_gasPrice``,
``eth_maxPriorityFeePerGas``, ``eth_feeHistory``, ``eth_estimateGas``, ``eth_getBlockByNumber``,
``eth_getBlockByHash``, ``eth_getBlockTransactionCountByNumber/ByHash``,
``eth_getTransactionByHash``, ``eth_getTransactionReceipt``, ``eth_getBalance``, ``eth_getCode``,
``eth_getStorageAt``, ``eth_getTransactionCount``, ``eth_getLogs``, ``eth_call``,
``eth_newBlockFilter`` / ``eth_getFilterChanges`` / ``eth_uninstallFilter``; over WebSocket also
``eth_subscribe`` (``newHeads``, ``logs``) and ``eth_unsubscribe`` (geth's "Real-time Events").

Dubhe conventions (the node's adapter relies on them; see :mod:`node.adapters.ethereum`):

* a Dubhe contract's code (``eth_getCode``) is its RISC-V ELF;
* deploying/upgrading it emits a log *from the contract's address* with ``topics[0]`` =
  :data:`TOPIC_CODE_DEPLOYED` / :data:`TOPIC_CODE_UPGRADED` and ``data`` = ABI ``(uint256 version,
  bytes32 codeHash)``. The topics are Keccak-256 of the signatures
  ``DubheCodeDeployed(uint256,bytes32)`` / ``DubheCodeUpgraded(uint256,bytes32)`` (as Solidity
  computes event topics);
* storage slot 0 holds the code version, slot 1 the code hash; ``eth_call`` answers the selectors
  :data:`SELECTOR_VERSION` and :data:`SELECTOR_CODE_HASH` (first 4 bytes of Keccak-256 of
  ``version()`` / ``codeHash()``) and returns ``0x`` for anything else.

What clients compute matches: Keccak-256 (pycryptodome) for topics, selectors, ``logsBloom`` and
contract-creation addresses (``keccak(rlp([sender, nonce]))[12:]``); quantities (``r``, ``s``...)
without leading zeros; the empty-trie root for empty ``transactionsRoot``/``receiptsRoot``/
``withdrawalsRoot``; a deploy is a contract creation (``to: null``, the code as ``input``, the
receipt's ``contractAddress``). Deviations, because the mock has no EVM and no signed transactions:
block and transaction hashes and non-empty roots are SHA3-256-derived, ``r``/``s`` are not real
signatures, native transfers emit no logs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from Crypto.Hash import keccak as _keccak

from lab.l1.chain_model import Block, Chain, Deploy, Event, State, Tx, Upgrade
from lab.l1.wire import Change, MethodNotFound, ServerError
from node.core import errors
from node.core.codec import sha3
from node.core.hexutil import data, parse_data, parse_qty, qty
from node.rpc.jsonrpc import Params


def keccak256(b: bytes) -> bytes:
    """Ethereum's Keccak-256 (not the standardized SHA3-256)."""
    return _keccak.new(digest_bits=256, data=b).digest()


def rlp(item: bytes | list[bytes]) -> bytes:
    """RLP of a byte string or a flat list of byte strings (enough for creation addresses)."""
    if isinstance(item, list):
        body = b"".join(rlp(x) for x in item)
        return _rlp_len(len(body), 0xC0) + body
    if len(item) == 1 and item[0] < 0x80:
        return item
    return _rlp_len(len(item), 0x80) + item


def _rlp_len(n: int, offset: int) -> bytes:
    if n < 56:
        return bytes([offset + n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(b)]) + b


def creation_address(sender: bytes, nonce: int) -> bytes:
    """The address of a contract created by ``sender`` at ``nonce`` (the CREATE rule)."""
    n = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big")
    return keccak256(rlp([sender, n]))[12:]


TOPIC_CODE_DEPLOYED = keccak256(b"DubheCodeDeployed(uint256,bytes32)")
TOPIC_CODE_UPGRADED = keccak256(b"DubheCodeUpgraded(uint256,bytes32)")
SELECTOR_VERSION = keccak256(b"version()")[:4]
SELECTOR_CODE_HASH = keccak256(b"codeHash()")[:4]
#: Root of the empty Merkle-Patricia trie: keccak(rlp("")), what an empty block's transactions,
#: receipts and withdrawals roots are.
EMPTY_TRIE_ROOT = keccak256(b"\x80")
#: secp256k1's group order: a canonical signature has s <= n/2 (EIP-2).
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

#: Keccak-256 of the RLP of an empty list (no uncles), as every post-merge block has.
EMPTY_UNCLES_HASH = bytes.fromhex(
    "1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"
)
CLIENT_VERSION = "DubheMockL1/v0.1.0/ethereum"
GAS_LIMIT = 30_000_000
BASE_FEE = 1_000_000_000
PRIORITY_FEE = 1_000_000
MAX_LOG_RANGE = 10_000
_TOPIC_OF = {"CodeDeployed": TOPIC_CODE_DEPLOYED, "CodeUpgraded": TOPIC_CODE_UPGRADED}


def _derived(block: Block, what: bytes) -> bytes:
    return sha3(block.hash + what)


def _bloom(logs: Iterable[tuple[bytes, tuple[bytes, ...]]]) -> bytes:
    """The 2048-bit log bloom (yellow paper 4.3.1)."""
    bits = 0
    for address, topics in logs:
        for item in (address, *topics):
            h = keccak256(item)
            for i in (0, 2, 4):
                bits |= 1 << (int.from_bytes(h[i : i + 2], "big") & 2047)
    return bits.to_bytes(256, "big")


@dataclass(frozen=True, slots=True)
class Log:
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes


def event_log(ev: Event) -> Log | None:
    """The Ethereum log of a model event, or None (native transfers emit no log)."""
    topic = _TOPIC_OF.get(ev.kind)
    if topic is None:
        return None
    version = ev.fields["version"]
    h = ev.fields["code_hash"]
    assert isinstance(version, int) and isinstance(h, bytes)
    return Log(ev.emitter, (topic,), version.to_bytes(32, "big") + h)


def _address(v: object) -> bytes:
    return parse_data(v, length=20)


def _hash32(v: object) -> bytes:
    return parse_data(v, length=32)


def _bool(v: object) -> bool:
    if not isinstance(v, bool):
        raise ValueError("expected a boolean")
    return v


class EthWire:
    """The Ethereum JSON-RPC surface over one :class:`~lab.l1.chain_model.Chain`."""

    notify_method = "eth_subscription"
    subscribe_method = "eth_subscribe"
    unsubscribe_method = "eth_unsubscribe"

    def __init__(self, chain: Chain, *, chain_id: int = 1337) -> None:
        self.chain = chain
        self.chain_id = chain_id
        self._methods: dict[str, Callable[[Params], object]] = {
            "web3_clientVersion": lambda p: CLIENT_VERSION,
            "eth_chainId": lambda p: qty(self.chain_id),
            "net_version": lambda p: str(self.chain_id),
            "eth_blockNumber": lambda p: qty(self.chain.head.number),
            "eth_getBlockByNumber": self._get_block_by_number,
            "eth_getBlockByHash": self._get_block_by_hash,
            "eth_getBalance": self._get_balance,
            "eth_getTransactionCount": self._get_tx_count,
            "eth_getCode": self._get_code,
            "eth_getStorageAt": self._get_storage_at,
            "eth_getLogs": self._get_logs,
            "eth_call": self._call,
            "net_listening": lambda p: True,
            "eth_syncing": lambda p: False,
            "eth_accounts": lambda p: [],
            "eth_gasPrice": lambda p: qty(BASE_FEE + PRIORITY_FEE),
            "eth_maxPriorityFeePerGas": lambda p: qty(PRIORITY_FEE),
            "eth_feeHistory": self._fee_history,
            "eth_estimateGas": self._estimate_gas,
            "eth_getTransactionByHash": self._get_tx_by_hash,
            "eth_getTransactionReceipt": self._get_receipt,
            "eth_getBlockTransactionCountByNumber": self._tx_count_by_number,
            "eth_getBlockTransactionCountByHash": self._tx_count_by_hash,
            "eth_newBlockFilter": self._new_block_filter,
            "eth_getFilterChanges": self._get_filter_changes,
            "eth_uninstallFilter": self._uninstall_filter,
        }
        #: Block filters: id -> number of the last block reported (geth drops idle ones after 5
        #: minutes; the mock keeps at most 1024).
        self._filters: dict[str, int] = {}
        self._filter_seq = 0

    def creation_address(self) -> bytes:
        """Where the next deploy of the genesis account 0 lands (its next nonce, pending
        transactions counted)."""
        sender = self.chain.accounts[0]
        return creation_address(sender, self.chain.next_nonce(sender))

    # ------------------------------------------------------------------ dispatch

    def call(self, method: str, params: list[Any] | dict[str, Any]) -> object:
        fn = self._methods.get(method)
        if fn is None:
            if method in (self.subscribe_method, self.unsubscribe_method):
                raise MethodNotFound("notifications not supported")
            raise MethodNotFound(f"the method {method} does not exist/is not available")
        return fn(Params(params))

    def subscription_id(self, n: int) -> object:
        # geth ids are 16 random bytes as a quantity; ours derive from the seed
        seed = (self.chain.seed & (2**64 - 1)).to_bytes(8, "big")
        return qty(int.from_bytes(sha3(seed + n.to_bytes(8, "big"))[:16], "big"))

    def subscribe(self, params: list[Any] | dict[str, Any]) -> NewHeads | Logs:
        p = Params(params)
        kind = p.get(0, "kind", str)
        if kind == "newHeads":
            p.max_count(1)
            return NewHeads(self)
        if kind == "logs":
            p.max_count(2)
            crit: dict[str, Any] = p.opt(1, "filter", _filter_dict, {})
            addresses, topics = _parse_criteria(crit)
            return Logs(self, addresses, topics)
        raise errors.InvalidParams(f"invalid parameter 0 (kind): unsupported subscription {kind!r}")

    # ------------------------------------------------------------------ blocks

    def resolve(self, tag: object) -> Block | None:
        """A block tag or number (or EIP-1898 object) → canonical block, None if beyond the head."""
        c = self.chain
        if isinstance(tag, dict):
            if "blockHash" in tag:
                b = c.by_hash.get(_hash32(tag["blockHash"]))
                if b is None:
                    raise ServerError("header for hash not found")
                if tag.get("requireCanonical") and not c.is_canonical(b):
                    raise ServerError("hash is not currently canonical")
                return b
            if "blockNumber" in tag:
                return self.resolve(tag["blockNumber"])
            raise ValueError("expected blockNumber or blockHash")
        if tag in ("latest", "pending"):
            return c.head
        if tag == "earliest":
            return c.block_at(0)
        if tag == "safe":
            return c.safe
        if tag == "finalized":
            return c.finalized
        return c.block_at(parse_qty(tag, max_bits=64))

    def _state_at(self, p: Params, index: int) -> State:
        tag: object = p.opt(index, "block", lambda v: v, "latest")
        try:
            b = self.resolve(tag)
        except ValueError as e:
            raise errors.InvalidParams(f"invalid parameter {index} (block): {e}") from None
        if b is None:
            raise ServerError("header not found")
        return b.state

    def _get_block_by_number(self, p: Params) -> object:
        p.max_count(2)
        tag = p.get(0, "block", lambda v: v)
        full = p.get(1, "hydrated", _bool)
        try:
            b = self.resolve(tag)
        except ValueError as e:
            raise errors.InvalidParams(f"invalid parameter 0 (block): {e}") from None
        return None if b is None else self.block_json(b, full)

    def _get_block_by_hash(self, p: Params) -> object:
        p.max_count(2)
        h = p.get(0, "hash", _hash32)
        full = p.get(1, "hydrated", _bool)
        b = self.chain.by_hash.get(h)
        return None if b is None else self.block_json(b, full)

    def header_json(self, b: Block) -> dict[str, object]:
        logs = [lg for e in b.events if (lg := event_log(e)) is not None]
        return {
            "number": qty(b.number),
            "hash": data(b.hash),
            "parentHash": data(b.parent_hash),
            "nonce": "0x0000000000000000",
            "sha3Uncles": data(EMPTY_UNCLES_HASH),
            "logsBloom": data(_bloom((lg.address, lg.topics) for lg in logs)),
            "transactionsRoot": data(_derived(b, b"txs") if b.txs else EMPTY_TRIE_ROOT),
            "stateRoot": data(_derived(b, b"state")),
            "receiptsRoot": data(_derived(b, b"receipts") if b.txs else EMPTY_TRIE_ROOT),
            "miner": data(bytes(20)),
            "difficulty": "0x0",
            "extraData": data(b"dubhe-mock"),
            "gasLimit": qty(GAS_LIMIT),
            "gasUsed": qty(sum(_gas(t.op) for t in b.txs)),
            "timestamp": qty(b.timestamp_ms // 1000),
            "baseFeePerGas": qty(BASE_FEE),
            "mixHash": data(_derived(b, b"randao")),
            "withdrawalsRoot": data(EMPTY_TRIE_ROOT),  # no withdrawals, ever
            "blobGasUsed": "0x0",
            "excessBlobGas": "0x0",
            "parentBeaconBlockRoot": data(_derived(b, b"beacon")),
        }

    def block_json(self, b: Block, full: bool) -> dict[str, object]:
        out = self.header_json(b)
        txs: list[object] = [
            self.tx_json(b, i, tx) if full else data(tx.hash) for i, tx in enumerate(b.txs)
        ]
        out["totalDifficulty"] = "0x0"
        out["size"] = qty(540 + 110 * len(b.txs))
        out["transactions"] = txs
        out["uncles"] = []
        out["withdrawals"] = []
        return out

    def tx_json(self, b: Block, index: int, tx: Tx) -> dict[str, object]:
        op = tx.op
        # a deploy is a contract creation: no recipient, the code as input; an upgrade is a call
        # to the contract carrying the new code
        to = None if isinstance(op, Deploy) else getattr(op, "to", None) or getattr(
            op, "address", None
        )
        code = next(iter(op.modules.values())) if isinstance(op, Deploy | Upgrade) else b""
        amount = getattr(op, "amount", 0)
        r = int.from_bytes(sha3(tx.hash + b"r"), "big") % SECP256K1_N or 1
        s_ = int.from_bytes(sha3(tx.hash + b"s"), "big") % (SECP256K1_N // 2) or 1
        return {
            "blockHash": data(b.hash),
            "blockNumber": qty(b.number),
            "from": data(tx.sender),
            "gas": qty(_gas(op)),
            "gasPrice": qty(BASE_FEE),
            "maxFeePerGas": qty(2 * BASE_FEE),
            "maxPriorityFeePerGas": "0x0",
            "hash": data(tx.hash),
            "input": data(code),
            "nonce": qty(tx.nonce),
            "to": data(to) if isinstance(to, bytes) else None,
            "transactionIndex": qty(index),
            "value": qty(amount),
            "type": "0x2",
            "accessList": [],
            "chainId": qty(self.chain_id),
            "v": "0x0",
            "yParity": "0x0",
            "r": qty(r),
            "s": qty(s_),
        }

    def receipt_json(self, b: Block, index: int, tx: Tx) -> dict[str, object]:
        op = tx.op
        logs = [
            self.log_json(b, ev, lg)
            for ev in b.events
            if ev.tx_hash == tx.hash and (lg := event_log(ev)) is not None
        ]
        used = sum(_gas(t.op) for t in b.txs[: index + 1])
        to = None if isinstance(op, Deploy) else getattr(op, "to", None) or getattr(
            op, "address", None
        )
        return {
            "transactionHash": data(tx.hash),
            "transactionIndex": qty(index),
            "blockHash": data(b.hash),
            "blockNumber": qty(b.number),
            "from": data(tx.sender),
            "to": data(to) if isinstance(to, bytes) else None,
            "cumulativeGasUsed": qty(used),
            "gasUsed": qty(_gas(op)),
            "effectiveGasPrice": qty(BASE_FEE),
            "contractAddress": data(op.address) if isinstance(op, Deploy) else None,
            "logs": logs,
            "logsBloom": data(_bloom(
                (lg.address, lg.topics) for ev in b.events
                if ev.tx_hash == tx.hash and (lg := event_log(ev)) is not None
            )),
            "type": "0x2",
            "status": "0x1",
        }

    # ------------------------------------------------------------------ transactions, fees

    def _found_tx(self, p: Params) -> tuple[Block, int, Tx] | None:
        p.max_count(1)
        h = p.get(0, "hash", _hash32)
        found = self.chain.tx_index.get(h)
        if found is None:
            return None
        b, i = found
        return b, i, b.txs[i]

    def _get_tx_by_hash(self, p: Params) -> object:
        found = self._found_tx(p)
        return None if found is None else self.tx_json(*found)

    def _get_receipt(self, p: Params) -> object:
        found = self._found_tx(p)
        return None if found is None else self.receipt_json(*found)

    def _tx_count_by_number(self, p: Params) -> object:
        p.max_count(1)
        try:
            b = self.resolve(p.get(0, "block", lambda v: v))
        except ValueError as e:
            raise errors.InvalidParams(f"invalid parameter 0 (block): {e}") from None
        return None if b is None else qty(len(b.txs))

    def _tx_count_by_hash(self, p: Params) -> object:
        p.max_count(1)
        b = self.chain.by_hash.get(p.get(0, "hash", _hash32))
        return None if b is None else qty(len(b.txs))

    def _estimate_gas(self, p: Params) -> object:
        p.max_count(3)
        tx = p.get(0, "transaction", _filter_dict)
        try:
            input_ = parse_data(tx.get("input", tx.get("data", "0x")))
        except ValueError as e:
            raise errors.InvalidParams(f"invalid parameter 0 (transaction.input): {e}") from None
        gas = 21_000 + 16 * len(input_)
        if tx.get("to") is None:
            gas += 32_000 + 200 * len(input_)  # creation and code deposit
        return qty(gas)

    def _fee_history(self, p: Params) -> object:
        p.max_count(3)
        count = p.get(0, "blockCount", _block_count)
        try:
            newest = self.resolve(p.get(1, "newestBlock", lambda v: v))
        except ValueError as e:
            raise errors.InvalidParams(f"invalid parameter 1 (newestBlock): {e}") from None
        pcts = p.opt(2, "rewardPercentiles", _percentiles, None)
        if newest is None:
            raise ServerError("header not found")
        first = max(0, newest.number - count + 1)
        blocks = [self.chain.blocks[n] for n in range(first, newest.number + 1)]
        out: dict[str, object] = {
            "oldestBlock": qty(first),
            "baseFeePerGas": [qty(BASE_FEE)] * (len(blocks) + 1),
            "gasUsedRatio": [sum(_gas(t.op) for t in b.txs) / GAS_LIMIT for b in blocks],
            "baseFeePerBlobGas": ["0x1"] * (len(blocks) + 1),
            "blobGasUsedRatio": [0.0] * len(blocks),
        }
        if pcts is not None:
            out["reward"] = [[qty(PRIORITY_FEE if b.txs else 0)] * len(pcts) for b in blocks]
        return out

    def _new_block_filter(self, p: Params) -> object:
        p.max_count(0)
        self._filter_seq += 1
        fid = qty(int.from_bytes(sha3(b"filter" + self._filter_seq.to_bytes(8, "big"))[:16],
                                 "big"))
        self._filters[fid] = self.chain.head.number
        while len(self._filters) > 1024:
            del self._filters[next(iter(self._filters))]
        return fid

    def _get_filter_changes(self, p: Params) -> object:
        p.max_count(1)
        fid = p.get(0, "id", str)
        last = self._filters.get(fid)
        if last is None:
            raise ServerError("filter not found")
        head = self.chain.head.number
        self._filters[fid] = head
        # after a reorg below the last reported block the new branch is reported from the fork
        return [data(self.chain.blocks[n].hash) for n in range(min(last, head) + 1, head + 1)]

    def _uninstall_filter(self, p: Params) -> object:
        p.max_count(1)
        return self._filters.pop(p.get(0, "id", str), None) is not None

    # ------------------------------------------------------------------ state

    def _get_balance(self, p: Params) -> object:
        p.max_count(2)
        a = p.get(0, "address", _address)
        return qty(self._state_at(p, 1).balances.get(a, 0))

    def _get_tx_count(self, p: Params) -> object:
        p.max_count(2)
        a = p.get(0, "address", _address)
        return qty(self._state_at(p, 1).nonces.get(a, 0))

    def _get_code(self, p: Params) -> object:
        p.max_count(2)
        a = p.get(0, "address", _address)
        c = self._state_at(p, 1).contracts.get(a)
        return "0x" if c is None else data(next(iter(c.modules.values())))

    def _get_storage_at(self, p: Params) -> object:
        p.max_count(3)
        a = p.get(0, "address", _address)
        slot = p.get(1, "slot", _slot)
        c = self._state_at(p, 2).contracts.get(a)
        value = bytes(32)
        if c is not None and slot == 0:
            value = c.version.to_bytes(32, "big")
        elif c is not None and slot == 1:
            value = c.code_hash
        return data(value)

    def _call(self, p: Params) -> object:
        p.max_count(3)
        tx = p.get(0, "transaction", _filter_dict)
        to = _address(tx["to"]) if tx.get("to") is not None else None
        raw_input = tx.get("input", tx.get("data", "0x"))
        try:
            input_ = parse_data(raw_input)
        except ValueError as e:
            raise errors.InvalidParams(f"invalid parameter 0 (transaction.input): {e}") from None
        state = self._state_at(p, 1)
        c = state.contracts.get(to) if to is not None else None
        if c is None:
            return "0x"
        if input_[:4] == SELECTOR_VERSION:
            return data(c.version.to_bytes(32, "big"))
        if input_[:4] == SELECTOR_CODE_HASH:
            return data(c.code_hash)
        return "0x"

    # ------------------------------------------------------------------ logs

    def log_json(self, b: Block, ev: Event, lg: Log, *, removed: bool = False) -> dict[str, object]:
        return {
            "address": data(lg.address),
            "topics": [data(t) for t in lg.topics],
            "data": data(lg.data),
            "blockNumber": qty(b.number),
            "blockHash": data(b.hash),
            "blockTimestamp": qty(b.timestamp_ms // 1000),
            "transactionHash": data(ev.tx_hash),
            "transactionIndex": qty(ev.tx_index),
            "logIndex": qty(ev.index),
            "removed": removed,
        }

    def logs_of(
        self,
        blocks: Iterable[Block],
        addresses: frozenset[bytes] | None,
        topics: list[frozenset[bytes] | None],
        *,
        removed: bool = False,
    ) -> list[object]:
        out: list[object] = []
        for b in blocks:
            for ev in b.events:
                lg = event_log(ev)
                if lg is not None and _matches(lg, addresses, topics):
                    out.append(self.log_json(b, ev, lg, removed=removed))
        return out

    def _get_logs(self, p: Params) -> object:
        p.max_count(1)
        crit = p.get(0, "filter", _filter_dict)
        addresses, topics = _parse_criteria(crit)
        if "blockHash" in crit:
            if "fromBlock" in crit or "toBlock" in crit:
                raise errors.InvalidParams(
                    "invalid parameter 0 (filter): cannot specify both BlockHash and "
                    "FromBlock/ToBlock, choose one or the other"
                )
            try:
                h = _hash32(crit["blockHash"])
            except ValueError as e:
                raise errors.InvalidParams(f"invalid parameter 0 (filter.blockHash): {e}") from None
            b = self.chain.by_hash.get(h)
            if b is None:
                raise ServerError("unknown block")
            return self.logs_of([b], addresses, topics)
        try:
            first = self.resolve(crit.get("fromBlock", "latest"))
            last = self.resolve(crit.get("toBlock", "latest"))
        except ValueError as e:
            raise errors.InvalidParams(f"invalid parameter 0 (filter): {e}") from None
        head = self.chain.head.number
        lo = head + 1 if first is None else first.number
        hi = head if last is None else last.number
        if lo > hi:
            if first is None:
                return []
            raise errors.InvalidParams("invalid block range params")
        if hi - lo + 1 > MAX_LOG_RANGE:
            raise errors.LimitExceeded(f"query exceeds the max block range {MAX_LOG_RANGE}")
        return self.logs_of(
            (self.chain.blocks[n] for n in range(lo, hi + 1)), addresses, topics
        )


def _gas(op: object) -> int:
    """Gas a model transaction is reported to use (no EVM: a plausible fixed cost)."""
    if isinstance(op, Deploy | Upgrade):
        code = next(iter(op.modules.values()))
        return 53_000 + 200 * len(code) if isinstance(op, Deploy) else 21_000 + 16 * len(code)
    return 21_000


def _block_count(v: object) -> int:
    n = parse_qty(v) if isinstance(v, str) else v
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 1024:
        raise ValueError("expected a block count in 1..1024")
    return n


def _percentiles(v: object) -> list[float]:
    if not isinstance(v, list) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) and 0 <= x <= 100 for x in v
    ):
        raise ValueError("expected an array of percentiles in 0..100")
    return [float(x) for x in v]


def _slot(v: object) -> int:
    if isinstance(v, str) and len(v) == 66:
        return int.from_bytes(parse_data(v, length=32), "big")
    return parse_qty(v)


def _filter_dict(v: object) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ValueError("expected an object")
    return v


def _parse_criteria(
    crit: dict[str, Any],
) -> tuple[frozenset[bytes] | None, list[frozenset[bytes] | None]]:
    try:
        raw_addr = crit.get("address")
        addresses: frozenset[bytes] | None = None
        if isinstance(raw_addr, list):
            addresses = frozenset(_address(a) for a in raw_addr)
        elif raw_addr is not None:
            addresses = frozenset([_address(raw_addr)])
        raw_topics = crit.get("topics") or []
        if not isinstance(raw_topics, list) or len(raw_topics) > 4:
            raise ValueError("topics must be an array of at most 4 entries")
        topics: list[frozenset[bytes] | None] = []
        for t in raw_topics:
            if t is None:
                topics.append(None)
            elif isinstance(t, list):
                topics.append(frozenset(_hash32(x) for x in t) if t else None)
            else:
                topics.append(frozenset([_hash32(t)]))
    except ValueError as e:
        raise errors.InvalidParams(f"invalid parameter (filter): {e}") from None
    return addresses, topics


def _matches(
    lg: Log, addresses: frozenset[bytes] | None, topics: list[frozenset[bytes] | None]
) -> bool:
    if addresses is not None and lg.address not in addresses:
        return False
    if len(topics) > len(lg.topics):
        return False
    return all(want is None or got in want for want, got in zip(topics, lg.topics, strict=False))


class NewHeads:
    def __init__(self, wire: EthWire) -> None:
        self._wire = wire

    def results(self, change: Change) -> list[object]:
        # geth announces every block that becomes canonical, the new branch included on a reorg
        return [self._wire.header_json(b) for b in change.added]


class Logs:
    def __init__(
        self,
        wire: EthWire,
        addresses: frozenset[bytes] | None,
        topics: list[frozenset[bytes] | None],
    ) -> None:
        self._wire = wire
        self._addresses = addresses
        self._topics = topics

    def results(self, change: Change) -> list[object]:
        # a reorg first re-sends the dropped logs with "removed": true, newest block first
        removed = self._wire.logs_of(change.dropped, self._addresses, self._topics, removed=True)
        return removed + self._wire.logs_of(change.added, self._addresses, self._topics)
