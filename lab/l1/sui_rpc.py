"""Sui JSON-RPC surface of the mock chain (formats per the Sui OpenRPC spec,
``crates/sui-open-rpc``).

Methods: those of :data:`lab.l1.sui_discovery.METHODS` (the ``rpc.discover`` document lists
them: checkpoints, objects, coins and balances, transactions, events under every filter kind,
modules, protocol config, system state, committee); over WebSocket also ``suix_subscribeEvent`` /
``suix_unsubscribeEvent``. Coin balances are u64 (:data:`SUI_GENESIS_BALANCE` per genesis
coin). u64 values are decimal strings, digests base58, addresses and object ids ``0x`` + 64 hex
digits (short forms like ``0x2`` accepted).

Model mapping: a block is a checkpoint (``previousDigest`` = parent hash); a contract is a package
lineage keyed by its *original id*. As on Sui, an upgrade publishes a **new package id**
(:func:`package_id`: the original id for version 1, then SHA3-256(original ‖ version)) and old
versions stay readable. Package modules are Dubhe RISC-V ELFs, served base64 in the object's BCS
``moduleMap`` (``sui_getObject`` with ``showBcs``); ``sui_getNormalizedMoveModulesByPackage`` lists
them as empty Move shells (they are not Move bytecode).

Dubhe events (the node's adapter relies on them, see :mod:`node.adapters.sui`): the registry
package :data:`REGISTRY` emits ``<REGISTRY>::registry::CodePublished`` and ``...::CodeUpgraded``
with ``parsedJson`` ``{original_id, package_id, version, code_hash}`` (version a decimal string,
code_hash ``0x`` hex SHA3-256). Each genesis account owns one gas coin
(``0x2::coin::Coin<0x2::sui::SUI>``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from lab.l1 import sui_discovery
from lab.l1.chain_model import Block, Chain, Contract, Deploy, Event, Transfer, Tx, Upgrade
from lab.l1.wire import Change, MethodNotFound, b58decode, b58encode
from node.core import errors
from node.core.codec import Writer, sha3
from node.rpc.jsonrpc import Params

SUI_COIN = "0x2::sui::SUI"
COIN_TYPE = f"0x2::coin::Coin<{SUI_COIN}>"
#: Each genesis account's balance in MIST (10^9 SUI). A Sui coin's balance is a u64: the four
#: genesis coins together (4 * 10^18) stay below 2^64, whatever transfers move between them.
SUI_GENESIS_BALANCE = 10**18
#: What a transaction's gas budget and cost are shown as (the mock charges no gas).
GAS_BUDGET = 50_000_000
GAS_COST = 1_000_000
REGISTRY = "0x" + "00" * 31 + "db"
EVENT_MODULE = "registry"
EVENT_CODE_PUBLISHED = f"{REGISTRY}::{EVENT_MODULE}::CodePublished"
EVENT_CODE_UPGRADED = f"{REGISTRY}::{EVENT_MODULE}::CodeUpgraded"
_EVENT_TYPE = {"CodeDeployed": EVENT_CODE_PUBLISHED, "CodeUpgraded": EVENT_CODE_UPGRADED}
#: QUERY_MAX_RESULT_LIMIT of sui-json-rpc.
MAX_PAGE = 50


def package_id(original: bytes, version: int) -> bytes:
    return original if version == 1 else sha3(original + version.to_bytes(8, "big"))


def hex_id(b: bytes) -> str:
    return "0x" + b.hex()


def parse_id(v: object) -> bytes:
    """A Sui address/object id: ``0x`` + 1..64 hex digits, left-padded to 32 bytes."""
    if not isinstance(v, str) or not v.startswith("0x") or not 2 < len(v) <= 66:
        raise ValueError("expected 0x-prefixed hex of at most 32 bytes")
    try:
        return int(v[2:], 16).to_bytes(32, "big")
    except ValueError:
        raise ValueError("expected 0x-prefixed hex of at most 32 bytes") from None


def _u64(v: object) -> int:
    """A BigInt string ("12") or, leniently, a JSON integer."""
    if isinstance(v, bool):
        raise ValueError("expected a decimal string")
    if isinstance(v, int):
        n = v
    elif isinstance(v, str) and v.isdigit():
        n = int(v)
    else:
        raise ValueError("expected a decimal u64 string")
    if not 0 <= n < 2**64:
        raise ValueError("out of u64 range")
    return n


def _limit(v: object) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError("expected a positive integer")
    return min(v, MAX_PAGE)


def _bool(v: object) -> bool:
    if not isinstance(v, bool):
        raise ValueError("expected a boolean")
    return v


def _obj(v: object) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ValueError("expected an object")
    return v


class SuiWire:
    """The Sui JSON-RPC surface over one 32-byte-address :class:`~lab.l1.chain_model.Chain`."""

    notify_method = "suix_subscribeEvent"
    subscribe_method = "suix_subscribeEvent"
    unsubscribe_method = "suix_unsubscribeEvent"

    def __init__(self, chain: Chain) -> None:
        if chain.address_len != 32:
            raise ValueError("the Sui surface needs a chain with 32-byte addresses")
        self.chain = chain
        self._tx_totals: dict[bytes, int] = {}
        self._methods: dict[str, Callable[[Params], object]] = {
            "sui_getChainIdentifier": lambda p: self.chain.blocks[0].hash[:4].hex(),
            "sui_getLatestCheckpointSequenceNumber": lambda p: str(self.chain.head.number),
            "sui_getCheckpoint": self._get_checkpoint,
            "sui_getCheckpoints": self._get_checkpoints,
            "suix_getBalance": self._get_balance,
            "sui_getObject": self._get_object,
            "sui_multiGetObjects": self._multi_get_objects,
            "sui_getNormalizedMoveModulesByPackage": self._normalized_modules,
            "suix_queryEvents": self._query_events,
            # what SDKs ask at start-up, and common reads
            "rpc.discover": lambda p: sui_discovery.openrpc_document(),
            "suix_getReferenceGasPrice": lambda p: str(sui_discovery.REFERENCE_GAS_PRICE),
            "sui_getProtocolConfig": self._protocol_config,
            "suix_getLatestSuiSystemState": self._system_state,
            "suix_getCommitteeInfo": self._committee,
            "suix_getAllBalances": self._all_balances,
            "suix_getCoins": self._get_coins,
            "suix_getAllCoins": self._get_all_coins,
            "suix_getOwnedObjects": self._owned_objects,
            "sui_getTransactionBlock": self._get_tx,
            "sui_multiGetTransactionBlocks": self._multi_get_txs,
            "sui_getTotalTransactionBlocks": lambda p: str(self._total_txs(self.chain.head)),
            "sui_getEvents": self._get_events,
            "sui_getNormalizedMoveModule": self._normalized_module,
        }
        missing = set(self._methods) - set(sui_discovery.METHODS) - {"rpc.discover"}
        assert not missing, f"methods missing from the OpenRPC document: {sorted(missing)}"

    def call(self, method: str, params: list[Any] | dict[str, Any]) -> object:
        fn = self._methods.get(method)
        if fn is None:
            raise MethodNotFound(f"Method not found: {method}")
        return fn(Params(params))

    def subscription_id(self, n: int) -> object:
        # sui-json-rpc hands out u64 subscription ids
        return int.from_bytes(
            sha3((self.chain.seed & (2**64 - 1)).to_bytes(8, "big") + n.to_bytes(8, "big"))[:6],
            "big",
        )

    def subscribe(self, params: list[Any] | dict[str, Any]) -> EventSubscription:
        p = Params(params)
        p.max_count(1)
        flt = p.get(0, "filter", _obj)
        _check_filter(flt)
        return EventSubscription(self, flt)

    # ------------------------------------------------------------------ checkpoints

    def _total_txs(self, b: Block) -> int:
        cached = self._tx_totals.get(b.hash)
        if cached is not None:
            return cached
        total = 0
        for n in range(b.number + 1):
            blk = self.chain.blocks[n] if n < b.number else b
            total += len(blk.txs)
            if n < b.number:
                self._tx_totals.setdefault(blk.hash, total)
        self._tx_totals[b.hash] = total
        return total

    def checkpoint_json(self, b: Block) -> dict[str, object]:
        return {
            "epoch": "0",
            "sequenceNumber": str(b.number),
            "digest": b58encode(b.hash),
            "networkTotalTransactions": str(self._total_txs(b)),
            "previousDigest": b58encode(b.parent_hash) if b.number > 0 else None,
            "epochRollingGasCostSummary": {
                "computationCost": "0",
                "storageCost": "0",
                "storageRebate": "0",
                "nonRefundableStorageFee": "0",
            },
            "timestampMs": str(b.timestamp_ms),
            "transactions": [b58encode(t.hash) for t in b.txs],
            "checkpointCommitments": [],
            "validatorSignature": base64.b64encode(sha3(b.hash) * 3).decode(),
        }

    def _get_checkpoint(self, p: Params) -> object:
        p.max_count(1)
        raw = p.get(0, "id", lambda v: v)
        block: Block | None
        if isinstance(raw, str) and raw.isdigit():
            block = self.chain.block_at(int(raw))
        elif isinstance(raw, str):
            try:
                block = self.chain.by_hash.get(b58decode(raw))
            except ValueError as e:
                raise errors.InvalidParams(f"invalid parameter 0 (id): {e}") from None
            if block is not None and not self.chain.is_canonical(block):
                block = None
        else:
            raise errors.InvalidParams(
                "invalid parameter 0 (id): expected a sequence number string or digest"
            )
        if block is None:
            raise errors.InvalidParams(f"Could not find the referenced checkpoint {raw}")
        return self.checkpoint_json(block)

    def _get_checkpoints(self, p: Params) -> object:
        p.max_count(3)
        cursor = p.opt(0, "cursor", _u64, None)
        limit = p.opt(1, "limit", _limit, MAX_PAGE)
        desc = p.get(2, "descending_order", _bool)
        head = self.chain.head.number
        if desc:
            start = head if cursor is None else cursor - 1
            nums = list(range(start, max(-1, start - limit), -1))
            more = bool(nums) and nums[-1] > 0
        else:
            start = 0 if cursor is None else cursor + 1
            nums = list(range(start, min(head, start + limit - 1) + 1))
            more = bool(nums) and nums[-1] < head
        page = [self.checkpoint_json(self.chain.blocks[n]) for n in nums if 0 <= n <= head]
        return {
            "data": page,
            "nextCursor": str(nums[-1]) if nums else (None if cursor is None else str(cursor)),
            "hasNextPage": more,
        }

    # ------------------------------------------------------------------ objects

    def _get_balance(self, p: Params) -> object:
        p.max_count(2)
        owner = p.get(0, "owner", parse_id)
        coin = p.opt(1, "coin_type", str, SUI_COIN)
        if coin in (SUI_COIN, _SUI_COIN_LONG):
            total = self.chain.head.state.balances.get(owner, 0)
            return {
                "coinType": SUI_COIN,
                "coinObjectCount": 1 if owner in self.chain.head.state.balances else 0,
                "totalBalance": str(total),
                "lockedBalance": {},
            }
        return {"coinType": coin, "coinObjectCount": 0, "totalBalance": "0", "lockedBalance": {}}

    def find_package(self, pid: bytes) -> tuple[Contract, int] | None:
        """The package object with id ``pid``: (contract at that version, version)."""
        for c in self.chain.head.state.contracts.values():
            for v in range(c.version, 0, -1):
                if package_id(c.address, v) == pid:
                    return self._version_of(c, v), v
        return None

    def _version_of(self, c: Contract, version: int) -> Contract:
        while c.version > version:
            prev = self.chain.blocks[c.block_number - 1].state.contracts.get(c.address)
            if prev is None:  # cannot happen: versions are only ever added
                raise errors.LocalError("package history is broken")
            c = prev
        return c

    def _coin_owner(self, oid: bytes) -> bytes | None:
        for owner in self.chain.head.state.balances:
            if sha3(owner + b"gas-coin") == oid:
                return owner
        return None

    def object_json(self, oid: bytes, options: dict[str, Any]) -> dict[str, object]:
        found = self.find_package(oid)
        if found is not None:
            c, v = found
            digest = b58encode(sha3(oid + c.code_hash))
            body: dict[str, object] = {"objectId": hex_id(oid), "version": str(v), "digest": digest}
            if options.get("showType"):
                body["type"] = "package"
            if options.get("showOwner"):
                body["owner"] = "Immutable"
            if options.get("showPreviousTransaction"):
                body["previousTransaction"] = b58encode(sha3(c.code_hash + b"tx"))
            if options.get("showStorageRebate"):
                body["storageRebate"] = "0"
            if options.get("showDisplay"):
                body["display"] = {"data": None, "error": None}  # packages have no Display
            if options.get("showContent"):
                body["content"] = {
                    "dataType": "package",
                    "disassembled": {
                        n: f"// RISC-V module {n}: {len(m)} bytes" for n, m in c.modules.items()
                    },
                }
            if options.get("showBcs"):
                body["bcs"] = {
                    "dataType": "package",
                    "id": hex_id(oid),
                    "version": v,
                    "moduleMap": {
                        n: base64.b64encode(m).decode() for n, m in sorted(c.modules.items())
                    },
                    "typeOriginTable": [],
                    "linkageTable": {},
                }
            return {"data": body}
        owner = self._coin_owner(oid)
        if owner is not None:
            state = self.chain.head.state
            balance = state.balances.get(owner, 0)
            version = state.nonces.get(owner, 0) + 1
            coin_type = COIN_TYPE
            body = {
                "objectId": hex_id(oid),
                "version": str(version),
                "digest": b58encode(sha3(oid + version.to_bytes(8, "big"))),
            }
            if options.get("showType"):
                body["type"] = coin_type
            if options.get("showOwner"):
                body["owner"] = {"AddressOwner": hex_id(owner)}
            if options.get("showPreviousTransaction"):
                body["previousTransaction"] = b58encode(sha3(oid + b"tx"))
            if options.get("showStorageRebate"):
                body["storageRebate"] = "988000"
            if options.get("showDisplay"):
                body["display"] = {"data": None, "error": None}  # no Display<Coin<SUI>> object
            if options.get("showContent"):
                body["content"] = {
                    "dataType": "moveObject",
                    "type": coin_type,
                    "hasPublicTransfer": True,
                    "fields": {"balance": str(balance), "id": {"id": hex_id(oid)}},
                }
            if options.get("showBcs"):
                raw = oid + balance.to_bytes(8, "little")
                body["bcs"] = {
                    "dataType": "moveObject",
                    "type": coin_type,
                    "hasPublicTransfer": True,
                    "version": version,
                    "bcsBytes": base64.b64encode(raw).decode(),
                }
            return {"data": body}
        return {"error": {"code": "notExists", "object_id": hex_id(oid)}}

    def coin_id(self, owner: bytes) -> bytes:
        return sha3(owner + b"gas-coin")

    def _get_object(self, p: Params) -> object:
        p.max_count(2)
        oid = p.get(0, "object_id", parse_id)
        options: dict[str, Any] = p.opt(1, "options", _obj, {})
        return self.object_json(oid, options)

    def _multi_get_objects(self, p: Params) -> object:
        p.max_count(2)
        ids = p.get(0, "object_ids", lambda v: [parse_id(x) for x in _list(v)])
        if len(ids) > MAX_PAGE:
            raise errors.InvalidParams(f"invalid parameter 0 (object_ids): at most {MAX_PAGE} ids")
        options: dict[str, Any] = p.opt(1, "options", _obj, {})
        return [self.object_json(oid, options) for oid in ids]

    def _normalized_modules(self, p: Params) -> object:
        p.max_count(1)
        pid = p.get(0, "package", parse_id)
        found = self.find_package(pid)
        if found is None:
            raise errors.InvalidParams(f"Package object does not exist with ID {hex_id(pid)}")
        c, _ = found
        return {
            name: {
                "fileFormatVersion": 6,
                "address": hex_id(pid),
                "name": name,
                "friends": [],
                "structs": {},
                "enums": {},
                "exposedFunctions": {},
            }
            for name in sorted(c.modules)
        }

    def _normalized_module(self, p: Params) -> object:
        p.max_count(2)
        pid = p.get(0, "package", parse_id)
        name = p.get(1, "module_name", str)
        modules = self._normalized_modules(Params([hex_id(pid)]))
        assert isinstance(modules, dict)
        if name not in modules:
            raise errors.InvalidParams(f"No module found with module name {name}")
        return modules[name]

    # ------------------------------------------------------------------ coins and balances

    def _coin_ref(self, owner: bytes) -> dict[str, str]:
        """The gas coin's ``{objectId, version, digest}`` (its version follows the owner's
        nonce: every transaction of the owner pays gas with it)."""
        oid = self.coin_id(owner)
        version = self.chain.head.state.nonces.get(owner, 0) + 1
        return {"objectId": hex_id(oid), "version": str(version),
                "digest": b58encode(sha3(oid + version.to_bytes(8, "big")))}

    def _coins(self, owner: bytes, coin: str | None, cursor: str | None,
               limit: int) -> dict[str, object]:
        state = self.chain.head.state
        data: list[dict[str, object]] = []
        if owner in state.balances and coin in (None, SUI_COIN, _SUI_COIN_LONG):
            ref = self._coin_ref(owner)
            if cursor is None or parse_id(cursor) < self.coin_id(owner):
                data.append({
                    "coinType": SUI_COIN, "coinObjectId": ref["objectId"],
                    "version": ref["version"], "digest": ref["digest"],
                    "balance": str(state.balances[owner]),
                    "previousTransaction": b58encode(sha3(self.coin_id(owner) + b"tx")),
                })
        data = data[:limit]
        return {"data": data, "nextCursor": data[-1]["coinObjectId"] if data else cursor,
                "hasNextPage": False}

    def _get_coins(self, p: Params) -> object:
        p.max_count(4)
        owner = p.get(0, "owner", parse_id)
        coin = p.opt(1, "coin_type", str, SUI_COIN)
        return self._coins(owner, coin, p.opt(2, "cursor", _id_str, None),
                           p.opt(3, "limit", _limit, MAX_PAGE))

    def _get_all_coins(self, p: Params) -> object:
        p.max_count(3)
        owner = p.get(0, "owner", parse_id)
        return self._coins(owner, None, p.opt(1, "cursor", _id_str, None),
                           p.opt(2, "limit", _limit, MAX_PAGE))

    def _all_balances(self, p: Params) -> object:
        p.max_count(1)
        owner = p.get(0, "owner", parse_id)
        if owner not in self.chain.head.state.balances:
            return []
        return [self._get_balance(Params([hex_id(owner)]))]

    def _owned_objects(self, p: Params) -> object:
        p.max_count(4)
        owner = p.get(0, "address", parse_id)
        query: dict[str, Any] = p.opt(1, "query", _obj, {})
        cursor = p.opt(2, "cursor", _id_str, None)
        limit = p.opt(3, "limit", _limit, MAX_PAGE)
        flt = query.get("filter")
        options = query.get("options") or {}
        if not isinstance(options, dict):
            raise errors.InvalidParams("invalid parameter 1 (query): options must be an object")
        if flt is not None and not _owned_filter_ok(flt):
            raise errors.InvalidParams(
                "invalid parameter 1 (query): filter must be one of StructType, Package, "
                "MoveModule, ObjectId, ObjectIds, AddressOwner, MatchAll, MatchAny, MatchNone"
            )
        data: list[dict[str, object]] = []
        if owner in self.chain.head.state.balances and (
            flt is None or _owned_match(flt, self.coin_id(owner), owner)
        ):
            oid = self.coin_id(owner)
            if cursor is None or parse_id(cursor) < oid:
                data.append(self.object_json(oid, options))
        data = data[:limit]
        last = data[-1]["data"] if data else None
        return {"data": data,
                "nextCursor": last["objectId"] if isinstance(last, dict) else cursor,
                "hasNextPage": False}

    # ------------------------------------------------------------------ system

    def _protocol_config(self, p: Params) -> object:
        p.max_count(1)
        version = p.opt(0, "version", _u64, None)
        if version is not None and version != sui_discovery.PROTOCOL_VERSION:
            raise errors.InvalidParams(
                f"Unsupported protocol version requested. Min supported: 1, max supported: "
                f"{sui_discovery.PROTOCOL_VERSION}" if version > sui_discovery.PROTOCOL_VERSION
                else f"invalid parameter 0 (version): only version "
                f"{sui_discovery.PROTOCOL_VERSION} is kept by the mock"
            )
        return sui_discovery.protocol_config()

    def _validator(self) -> tuple[str, str, int]:
        """The single validator: (address, protocol public key base64, stake)."""
        seed = (self.chain.seed & (2**64 - 1)).to_bytes(8, "big")
        key = sha3(seed + b"validator-key") * 3  # 96 bytes, the size of a BLS12-381 key
        return hex_id(sha3(seed + b"validator")), base64.b64encode(key).decode(), 10**16

    def _system_state(self, p: Params) -> object:
        p.max_count(0)
        address, key, stake = self._validator()
        return sui_discovery.system_state(
            epoch_start_ms=self.chain.blocks[0].timestamp_ms,
            validators=[sui_discovery.validator(address, key, stake)], total_stake=stake,
        )

    def _committee(self, p: Params) -> object:
        p.max_count(1)
        epoch = p.opt(0, "epoch", _u64, 0)
        if epoch != 0:
            raise errors.InvalidParams(f"Missing epoch {epoch}: the mock stays in epoch 0")
        _, key, stake = self._validator()
        return {"epoch": "0", "validators": [[key, str(stake)]]}

    # ------------------------------------------------------------------ transactions

    def _find_tx(self, digest: str) -> tuple[Block, Tx]:
        try:
            found = self.chain.tx_index.get(b58decode(digest))
        except ValueError as e:
            raise errors.InvalidParams(f"invalid parameter 0 (digest): {e}") from None
        if found is None:
            raise errors.InvalidParams(
                f"Could not find the referenced transaction [TransactionDigest({digest})]."
            )
        block, i = found
        return block, block.txs[i]

    def tx_json(self, block: Block, tx: Tx, options: dict[str, Any]) -> dict[str, object]:
        """A ``SuiTransactionBlockResponse`` (gas paid with the sender's coin, never charged)."""
        digest = b58encode(tx.hash)
        sender = hex_id(tx.sender)
        gas_ref = {"objectId": hex_id(self.coin_id(tx.sender)), "version": str(tx.nonce + 1),
                   "digest": b58encode(sha3(self.coin_id(tx.sender)
                                            + (tx.nonce + 1).to_bytes(8, "big")))}
        body: dict[str, object] = {"digest": digest}
        op = tx.op
        if options.get("showInput"):
            body["transaction"] = {
                "data": {
                    "messageVersion": "v1",
                    "transaction": _tx_kind(op),
                    "sender": sender,
                    "gasData": {"payment": [gas_ref], "owner": sender,
                                "price": str(sui_discovery.REFERENCE_GAS_PRICE),
                                "budget": str(GAS_BUDGET)},
                },
                "txSignatures": [base64.b64encode(b"\x00" + sha3(tx.hash) * 2
                                                  + tx.sender).decode()],
            }
        if options.get("showRawInput"):
            body["rawTransaction"] = base64.b64encode(tx.hash + tx.sender).decode()
        events = [j for ev in block.events if ev.tx_hash == tx.hash
                  if (j := self.event_json(block, ev)) is not None]
        if options.get("showEffects"):
            owner = {"AddressOwner": sender}
            created: list[dict[str, object]] = []
            if isinstance(op, Deploy | Upgrade):
                c = block.state.contracts[op.address]
                pid = package_id(op.address, c.version)
                created.append({"owner": "Immutable", "reference": {
                    "objectId": hex_id(pid), "version": "1",
                    "digest": b58encode(sha3(pid + c.code_hash))}})
            body["effects"] = {
                "messageVersion": "v1",
                "status": {"status": "success"},
                "executedEpoch": "0",
                "gasUsed": {"computationCost": str(GAS_COST), "storageCost": "0",
                            "storageRebate": "0", "nonRefundableStorageFee": "0"},
                "modifiedAtVersions": [{"objectId": gas_ref["objectId"],
                                        "sequenceNumber": str(tx.nonce)}],
                "transactionDigest": digest,
                "created": created,
                "mutated": [{"owner": owner, "reference": gas_ref}],
                "gasObject": {"owner": owner, "reference": gas_ref},
                "eventsDigest": b58encode(sha3(tx.hash + b"events")) if events else None,
                "dependencies": [],
            }
        if options.get("showEvents"):
            body["events"] = events
        if options.get("showObjectChanges"):
            changes: list[dict[str, object]] = [{
                "type": "mutated", "sender": sender, "owner": {"AddressOwner": sender},
                "objectType": COIN_TYPE, "objectId": gas_ref["objectId"],
                "version": gas_ref["version"], "previousVersion": str(tx.nonce),
                "digest": gas_ref["digest"]}]
            if isinstance(op, Deploy | Upgrade):
                c = block.state.contracts[op.address]
                pid = package_id(op.address, c.version)
                changes.append({"type": "published", "packageId": hex_id(pid), "version": "1",
                                "digest": b58encode(sha3(pid + c.code_hash)),
                                "modules": sorted(c.modules)})
            body["objectChanges"] = changes
        if options.get("showBalanceChanges"):
            moves: list[dict[str, object]] = []
            if isinstance(op, Transfer):
                moves = [
                    {"owner": {"AddressOwner": hex_id(op.sender)}, "coinType": SUI_COIN,
                     "amount": str(-op.amount)},
                    {"owner": {"AddressOwner": hex_id(op.to)}, "coinType": SUI_COIN,
                     "amount": str(op.amount)},
                ]
            body["balanceChanges"] = moves
        body["timestampMs"] = str(block.timestamp_ms)
        body["checkpoint"] = str(block.number)
        return body

    def _get_tx(self, p: Params) -> object:
        p.max_count(2)
        digest = p.get(0, "digest", str)
        options: dict[str, Any] = p.opt(1, "options", _obj, {})
        block, tx = self._find_tx(digest)
        return self.tx_json(block, tx, options)

    def _multi_get_txs(self, p: Params) -> object:
        p.max_count(2)
        digests = p.get(0, "digests", lambda v: [str(d) for d in _list(v)])
        if len(digests) > MAX_PAGE:
            raise errors.InvalidParams(f"invalid parameter 0 (digests): at most {MAX_PAGE}")
        options: dict[str, Any] = p.opt(1, "options", _obj, {})
        return [self.tx_json(*self._find_tx(d), options) for d in digests]

    def _get_events(self, p: Params) -> object:
        p.max_count(1)
        digest = p.get(0, "transaction_digest", str)
        block, tx = self._find_tx(digest)
        return [j for ev in block.events if ev.tx_hash == tx.hash
                if (j := self.event_json(block, ev)) is not None]

    # ------------------------------------------------------------------ events

    def event_json(self, b: Block, ev: Event) -> dict[str, object] | None:
        etype = _EVENT_TYPE.get(ev.kind)
        if etype is None:
            return None
        version = ev.fields["version"]
        h = ev.fields["code_hash"]
        assert isinstance(version, int) and isinstance(h, bytes)
        pid = package_id(ev.emitter, version)
        bcs = Writer().raw(ev.emitter).raw(pid).u64(version).raw(h).finish()
        return {
            "id": {"txDigest": b58encode(ev.tx_hash), "eventSeq": str(ev.seq)},
            "packageId": REGISTRY,
            "transactionModule": EVENT_MODULE,
            "sender": hex_id(ev.sender),
            "type": etype,
            "parsedJson": {
                "original_id": hex_id(ev.emitter),
                "package_id": hex_id(pid),
                "version": str(version),
                "code_hash": "0x" + h.hex(),
            },
            "bcsEncoding": "base64",
            "bcs": base64.b64encode(bcs).decode(),
            "timestampMs": str(b.timestamp_ms),
        }

    def events_of(self, blocks: list[Block], flt: dict[str, Any]) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for b in blocks:
            for ev in b.events:
                j = self.event_json(b, ev)
                if j is not None and _match(flt, j, b):
                    out.append(j)
        return out

    def _query_events(self, p: Params) -> object:
        p.max_count(4)
        flt = p.get(0, "query", _obj)
        _check_filter(flt)
        cursor = p.opt(1, "cursor", _event_id, None)
        limit = p.opt(2, "limit", _limit, MAX_PAGE)
        desc = p.opt(3, "descending_order", _bool, False)
        events = self.events_of(self.chain.blocks, flt)
        if desc:
            events.reverse()
        start = 0
        if cursor is not None:
            ids = [(e["id"]) for e in events]
            want = {"txDigest": cursor[0], "eventSeq": cursor[1]}
            if want in ids:
                start = ids.index(want) + 1
            else:
                # the cursor's event is not in this filter's results: locate by chain position
                start = self._position(events, cursor, desc)
        page = events[start : start + limit]
        next_cursor = (
            page[-1]["id"]
            if page
            else (None if cursor is None else {"txDigest": cursor[0], "eventSeq": cursor[1]})
        )
        return {"data": page, "nextCursor": next_cursor, "hasNextPage": start + limit < len(events)}

    def _position(
        self, events: list[dict[str, object]], cursor: tuple[str, str], desc: bool
    ) -> int:
        found = self.chain.tx_index.get(b58decode(cursor[0]))
        if found is None:
            raise errors.InvalidParams(
                f"invalid parameter 1 (cursor): unknown transaction {cursor[0]}"
            )
        block, tx_i = found
        key = (block.number, tx_i, int(cursor[1]))
        for i, e in enumerate(events):
            eid = e["id"]
            assert isinstance(eid, dict)
            b, ti = self.chain.tx_index[b58decode(eid["txDigest"])]
            k = (b.number, ti, int(eid["eventSeq"]))
            if (k > key) if not desc else (k < key):
                return i
        return len(events)


def _list(v: object) -> list[Any]:
    if not isinstance(v, list):
        raise ValueError("expected an array")
    return v


def _event_id(v: object) -> tuple[str, str]:
    d = _obj(v)
    tx, seq = d.get("txDigest"), d.get("eventSeq")
    if not isinstance(tx, str) or not isinstance(seq, str) or not seq.isdigit():
        raise ValueError("expected {txDigest, eventSeq}")
    b58decode(tx)
    return tx, seq


_FILTERS = {
    "All",
    "Any",
    "And",
    "Or",
    "Package",
    "MoveModule",
    "MoveEventModule",
    "MoveEventType",
    "MoveEventField",
    "Sender",
    "Transaction",
    "TimeRange",
}
_SUI_COIN_LONG = "0x" + "00" * 31 + "02::sui::SUI"


def _check_filter(flt: object, where: str = "filter") -> None:
    """Refuse a malformed event filter, naming where it is wrong (``All``/``Any`` take a list,
    ``And``/``Or`` a pair, ``MoveEventField`` ``{path, value}`` with a JSON-pointer path)."""
    if not isinstance(flt, dict) or len(flt) != 1 or next(iter(flt)) not in _FILTERS:
        raise errors.InvalidParams(
            f"invalid parameter 0 ({where}): expected one of {sorted(_FILTERS)}"
        )
    (kind, arg), = flt.items()
    if kind in ("All", "Any"):
        if not isinstance(arg, list):
            raise errors.InvalidParams(f"invalid parameter 0 ({where}.{kind}): expected a list")
        for i, f in enumerate(arg):
            _check_filter(f, f"{where}.{kind}[{i}]")
    elif kind in ("And", "Or"):
        if not isinstance(arg, list) or len(arg) != 2:
            raise errors.InvalidParams(
                f"invalid parameter 0 ({where}.{kind}): expected two filters"
            )
        for i, f in enumerate(arg):
            _check_filter(f, f"{where}.{kind}[{i}]")
    elif kind == "MoveEventField" and not (
        isinstance(arg, dict) and isinstance(arg.get("path"), str)
        and arg["path"].startswith("/") and "value" in arg
    ):
        raise errors.InvalidParams(
            f"invalid parameter 0 ({where}.MoveEventField): expected {{path: '/field', value}}"
        )


def _pointer(obj: object, path: str) -> object:
    """The value at JSON pointer ``path`` in ``obj`` (KeyError when absent)."""
    for part in path.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(obj, dict):
            obj = obj[part]
        elif isinstance(obj, list):
            obj = obj[int(part)]
        else:
            raise KeyError(part)
    return obj


def _match(flt: dict[str, Any], ev: dict[str, Any], b: Block) -> bool:
    (kind, arg), = flt.items()
    try:
        if kind == "All":
            return all(_match(f, ev, b) for f in arg)
        if kind == "Any":
            return any(_match(f, ev, b) for f in arg)
        if kind == "And":
            return _match(arg[0], ev, b) and _match(arg[1], ev, b)
        if kind == "Or":
            return _match(arg[0], ev, b) or _match(arg[1], ev, b)
        if kind == "Package":
            return parse_id(arg) == parse_id(ev["packageId"])
        if kind in ("MoveModule", "MoveEventModule"):
            pkg, mod = (
                ev["type"].split("::")[:2]
                if kind == "MoveEventModule"
                else (ev["packageId"], ev["transactionModule"])
            )
            return bool(parse_id(arg["package"]) == parse_id(pkg) and arg["module"] == mod)
        if kind == "MoveEventType":
            return bool(arg == ev["type"])
        if kind == "MoveEventField":
            return bool(_pointer(ev["parsedJson"], arg["path"]) == arg["value"])
        if kind == "Sender":
            return parse_id(arg) == parse_id(ev["sender"])
        if kind == "Transaction":
            return bool(arg == ev["id"]["txDigest"])
        if kind == "TimeRange":
            return int(arg["startTime"]) <= b.timestamp_ms < int(arg["endTime"])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return False
    return False


_OWNED_FILTERS = {"StructType", "Package", "MoveModule", "ObjectId", "ObjectIds",
                  "AddressOwner", "MatchAll", "MatchAny", "MatchNone"}


def _owned_filter_ok(flt: object) -> bool:
    return isinstance(flt, dict) and len(flt) == 1 and next(iter(flt)) in _OWNED_FILTERS


def _owned_match(flt: dict[str, Any], oid: bytes, owner: bytes) -> bool:
    """Whether the gas coin ``oid`` of ``owner`` matches an owned-object filter."""
    (kind, arg), = flt.items()
    try:
        if kind == "StructType":
            return str(arg).replace(_SUI_COIN_LONG, SUI_COIN).replace(
                "0x" + "00" * 31 + "02::coin", "0x2::coin") in (COIN_TYPE, "0x2::coin::Coin")
        if kind in ("Package", "MoveModule"):
            pkg = arg if kind == "Package" else arg["package"]
            return parse_id(pkg) == parse_id("0x2") and (
                kind == "Package" or arg["module"] == "coin")
        if kind == "ObjectId":
            return parse_id(arg) == oid
        if kind == "ObjectIds":
            return oid in {parse_id(x) for x in arg}
        if kind == "AddressOwner":
            return parse_id(arg) == owner
        subs = [f for f in arg if _owned_filter_ok(f)]
        if kind == "MatchAll":
            return all(_owned_match(f, oid, owner) for f in subs)
        if kind == "MatchAny":
            return any(_owned_match(f, oid, owner) for f in subs)
        if kind == "MatchNone":
            return not any(_owned_match(f, oid, owner) for f in subs)
    except (KeyError, TypeError, ValueError):
        return False
    return False


def _id_str(v: object) -> str:
    parse_id(v)
    assert isinstance(v, str)
    return v


def _tx_kind(op: object) -> dict[str, object]:
    """The ``transaction`` (kind) of a transaction block, as a programmable transaction."""
    if isinstance(op, Transfer):
        return {"kind": "ProgrammableTransaction",
                "inputs": [{"type": "pure", "valueType": "u64", "value": str(op.amount)},
                           {"type": "pure", "valueType": "address", "value": hex_id(op.to)}],
                "transactions": [{"SplitCoins": ["GasCoin", [{"Input": 0}]]},
                                 {"TransferObjects": [[{"NestedResult": [0, 0]}],
                                                      {"Input": 1}]}]}
    assert isinstance(op, Deploy | Upgrade)
    # a publish lists the packages it depends on: Move's std (0x1) and the Sui framework (0x2)
    deps = [hex_id((1).to_bytes(32, "big")), hex_id((2).to_bytes(32, "big"))]
    if isinstance(op, Deploy):
        return {"kind": "ProgrammableTransaction", "inputs": [],
                "transactions": [{"Publish": deps}]}
    return {"kind": "ProgrammableTransaction", "inputs": [],
            "transactions": [{"Upgrade": [[], deps, hex_id(op.address), {"Input": 0}]}]}


class EventSubscription:
    def __init__(self, wire: SuiWire, flt: dict[str, Any]) -> None:
        self._wire = wire
        self._filter = flt

    def results(self, change: Change) -> list[object]:
        # Sui checkpoints are final: a (mock-only) reorg re-announces the new branch's events
        return list(self._wire.events_of(list(change.added), self._filter))
