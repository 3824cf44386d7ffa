"""Ethereum JSON-RPC surface of the mock chain (formats per ethereum/execution-apis).

Methods: ``eth_chainId``, ``net_version``, ``web3_clientVersion``, ``eth_blockNumber``,
``eth_getBlockByNumber``, ``eth_getBlockByHash``, ``eth_getBalance``, ``eth_getCode``,
``eth_getStorageAt``, ``eth_getTransactionCount``, ``eth_getLogs``, ``eth_call``; over WebSocket
also
``eth_subscribe`` (``newHeads``, ``logs``) and ``eth_unsubscribe`` (geth's "Real-time Events").

Dubhe conventions (the node's adapter relies on them; see :mod:`node.adapters.ethereum`):

* a Dubhe contract's code (``eth_getCode``) is its RISC-V ELF;
* deploying/upgrading it emits a log *from the contract's address* with ``topics[0]`` =
  :data:`TOPIC_CODE_DEPLOYED` / :data:`TOPIC_CODE_UPGRADED` and ``data`` = ABI ``(uint256 version,
  bytes32 codeHash)``. The topics are SHA3-256 (the node's hash, not keccak) of the signatures
  ``DubheCodeDeployed(uint256,bytes32)`` / ``DubheCodeUpgraded(uint256,bytes32)``;
* storage slot 0 holds the code version, slot 1 the code hash; ``eth_call`` answers the selectors
  :data:`SELECTOR_VERSION` and :data:`SELECTOR_CODE_HASH` (first 4 bytes of SHA3-256 of
  ``version()`` / ``codeHash()``) and returns ``0x`` for anything else.

Deviations, because the mock has no EVM: hashes are SHA3-256 not keccak; roots are derived from the
block hash; ``logsBloom`` uses SHA3-256 in place of keccak; native transfers emit no logs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lab.l1.chain_model import Block, Chain, Event, State, Tx
from lab.l1.wire import Change, MethodNotFound, ServerError
from node.core import errors
from node.core.codec import sha3
from node.core.hexutil import data, parse_data, parse_qty, qty
from node.rpc.jsonrpc import Params

TOPIC_CODE_DEPLOYED = sha3(b"DubheCodeDeployed(uint256,bytes32)")
TOPIC_CODE_UPGRADED = sha3(b"DubheCodeUpgraded(uint256,bytes32)")
SELECTOR_VERSION = sha3(b"version()")[:4]
SELECTOR_CODE_HASH = sha3(b"codeHash()")[:4]

#: Keccak-256 of the RLP of an empty list (no uncles), as every post-merge block has.
EMPTY_UNCLES_HASH = bytes.fromhex(
    "1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"
)
CLIENT_VERSION = "DubheMockL1/v0.1.0/ethereum"
GAS_LIMIT = 30_000_000
BASE_FEE = 1_000_000_000
MAX_LOG_RANGE = 10_000
_TOPIC_OF = {"CodeDeployed": TOPIC_CODE_DEPLOYED, "CodeUpgraded": TOPIC_CODE_UPGRADED}


def _derived(block: Block, what: bytes) -> bytes:
    return sha3(block.hash + what)


def _bloom(logs: Iterable[tuple[bytes, tuple[bytes, ...]]]) -> bytes:
    """The 2048-bit log bloom (yellow paper 4.3.1), with SHA3-256 standing in for keccak."""
    bits = 0
    for address, topics in logs:
        for item in (address, *topics):
            h = sha3(item)
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
        }

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
            "transactionsRoot": data(_derived(b, b"txs")),
            "stateRoot": data(_derived(b, b"state")),
            "receiptsRoot": data(_derived(b, b"receipts")),
            "miner": data(bytes(20)),
            "difficulty": "0x0",
            "extraData": data(b"dubhe-mock"),
            "gasLimit": qty(GAS_LIMIT),
            "gasUsed": qty(21_000 * len(b.txs)),
            "timestamp": qty(b.timestamp_ms // 1000),
            "baseFeePerGas": qty(BASE_FEE),
            "mixHash": data(_derived(b, b"randao")),
            "withdrawalsRoot": data(_derived(b, b"withdrawals")),
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
        to = getattr(tx.op, "to", None) or getattr(tx.op, "address", None)
        amount = getattr(tx.op, "amount", 0)
        return {
            "blockHash": data(b.hash),
            "blockNumber": qty(b.number),
            "from": data(tx.sender),
            "gas": qty(21_000),
            "gasPrice": qty(BASE_FEE),
            "maxFeePerGas": qty(2 * BASE_FEE),
            "maxPriorityFeePerGas": "0x0",
            "hash": data(tx.hash),
            "input": "0x",
            "nonce": qty(tx.nonce),
            "to": data(to) if isinstance(to, bytes) else None,
            "transactionIndex": qty(index),
            "value": qty(amount),
            "type": "0x2",
            "accessList": [],
            "chainId": qty(self.chain_id),
            "v": "0x0",
            "yParity": "0x0",
            "r": data(sha3(tx.hash + b"r")),
            "s": data(sha3(tx.hash + b"s")),
        }

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
