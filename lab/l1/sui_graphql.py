"""Sui GraphQL surface of the mock chain (``POST /graphql``), served with Ariadne (schema-first,
on graphql-core) over the same :class:`~lab.l1.sui_rpc.SuiWire` the JSON-RPC surface formats.

The schema is the subset of Sui's GraphQL RPC (the 2025 schema the current SDKs are built on) that
the node's Sui adapter and the SDKs need: the service and protocol configs and chain identifier an
SDK reads at start-up, checkpoints (by number, digest, or pages with a checkpoint-range filter),
objects (gas coins and packages, every owner kind), packages and their modules' bytes, events
(filter by sender, module, type, checkpoint range; opaque cursors, both paging directions) and
transactions with their effects' events. Field and type names are Sui's; everything else in Sui's
schema is absent (an SDK query that names it is refused by validation, like any unknown field).

Mock specifics: the checkpoint ``summaryBcs`` is a real BCS ``CheckpointSummary`` of the mock's
checkpoint (its digest is the mock's, not the Blake2b of that summary); cursors are base64 JSON of
a chain position (checkpoint, transaction, event), so a cursor outlives a reorg and means "after
this position"; every answer carries ``x-sui-rpc-version`` (SDKs read the schema version there).
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable, Sequence
from typing import Any

from ariadne import QueryType, UnionType, make_executable_schema
from ariadne import graphql as run_graphql
from graphql import GraphQLError, GraphQLSchema

from lab.l1 import sui_discovery
from lab.l1.chain_model import Block, Event
from lab.l1.sui_rpc import (
    COIN_TYPE,
    EVENT_MODULE,
    REGISTRY,
    SUI_COIN,
    SuiWire,
    hex_id,
    parse_id,
)
from lab.l1.wire import b58decode, b58encode
from node.core.codec import sha3

#: The value of the ``x-sui-rpc-version`` header (SDKs take the schema version from it).
RPC_VERSION = sui_discovery.SUI_VERSION
MAX_PAGE = 50

SDL = """
scalar UInt53
scalar BigInt
scalar Base64
scalar DateTime
scalar SuiAddress
scalar JSON

type Query {
  chainIdentifier: String!
  serviceConfig: ServiceConfig!
  protocolConfigs(version: UInt53): ProtocolConfigs
  epoch(epochId: UInt53): Epoch
  checkpoint(sequenceNumber: UInt53, digest: String): Checkpoint
  checkpoints(first: Int, after: String, last: Int, before: String,
              filter: CheckpointFilter): CheckpointConnection!
  object(address: SuiAddress!, version: UInt53): Object
  package(address: SuiAddress!): MovePackage
  address(address: SuiAddress!): Address
  transaction(digest: String!): Transaction
  events(first: Int, after: String, last: Int, before: String,
         filter: EventFilter): EventConnection!
}

type ServiceConfig {
  mutationTimeoutMs: Int
  queryTimeoutMs: Int
  maxQueryDepth: Int!
  maxQueryNodes: Int!
  maxOutputNodes: Int!
  maxTransactionPayloadSize: Int
  maxQueryPayloadSize: Int!
  maxMultiGetSize: Int!
  maxTypeArgumentDepth: Int!
  maxTypeArgumentWidth: Int!
  maxTypeNodes: Int!
  maxMoveValueDepth: Int!
  defaultPageSize: Int!
  maxPageSize: Int!
}

type ProtocolConfigs {
  protocolVersion: UInt53!
  configs: [ProtocolConfig!]!
  featureFlags: [FeatureFlag!]!
}
type ProtocolConfig { key: String! value: String }
type FeatureFlag { key: String! value: Boolean! }

type Epoch {
  epochId: UInt53!
  referenceGasPrice: BigInt
  startTimestamp: DateTime
  protocolConfigs: ProtocolConfigs
}

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

input CheckpointFilter { afterCheckpoint: UInt53 atCheckpoint: UInt53 beforeCheckpoint: UInt53 }
type CheckpointConnection { pageInfo: PageInfo! nodes: [Checkpoint!]! edges: [CheckpointEdge!]! }
type CheckpointEdge { cursor: String! node: Checkpoint! }

type Checkpoint {
  digest: String!
  sequenceNumber: UInt53!
  timestamp: DateTime!
  previousCheckpointDigest: String
  networkTotalTransactions: UInt53
  contentDigest: String
  summaryBcs: Base64
  contentBcs: Base64
  epoch: Epoch
  rollingGasSummary: GasCostSummary
  validatorSignatures: ValidatorAggregatedSignature
  transactions(first: Int, after: String, last: Int, before: String): TransactionConnection!
}

type GasCostSummary {
  computationCost: BigInt
  storageCost: BigInt
  storageRebate: BigInt
  nonRefundableStorageFee: BigInt
}

type ValidatorAggregatedSignature { signature: Base64 signersMap: [Int!]! epoch: Epoch }

type TransactionConnection {
  pageInfo: PageInfo!
  nodes: [Transaction!]!
  edges: [TransactionEdge!]!
}
type TransactionEdge { cursor: String! node: Transaction! }

type Transaction {
  digest: String!
  sender: Address
  effects: TransactionEffects
}

type TransactionEffects {
  status: ExecutionStatus
  checkpoint: Checkpoint
  timestamp: DateTime
  events(first: Int, after: String, last: Int, before: String): EventConnection!
}
enum ExecutionStatus { SUCCESS FAILURE }

type Address { address: SuiAddress! balance(coinType: String): Balance }
type Balance { coinType: MoveType! coinObjectCount: UInt53 totalBalance: BigInt }

union Owner = AddressOwner | ObjectOwner | Shared | Immutable | ConsensusAddressOwner
type AddressOwner { address: Address }
type ObjectOwner { address: Address }
type Shared { initialSharedVersion: UInt53 }
type Immutable { _: Boolean }
type ConsensusAddressOwner { startVersion: UInt53 address: Address }

type Object {
  address: SuiAddress!
  version: UInt53!
  digest: String
  objectBcs: Base64
  owner: Owner
  storageRebate: BigInt
  previousTransaction: Transaction
  asMoveObject: MoveObject
  asMovePackage: MovePackage
}

type MoveObject {
  address: SuiAddress!
  version: UInt53!
  digest: String
  hasPublicTransfer: Boolean
  contents: MoveValue
  owner: Owner
  previousTransaction: Transaction
}

type MoveValue { type: MoveType! json: JSON bcs: Base64 }
type MoveType { repr: String! }

type MovePackage {
  address: SuiAddress!
  version: UInt53!
  digest: String
  moduleBcs: Base64
  module(name: String!): MoveModule
  modules(first: Int, after: String, last: Int, before: String): MoveModuleConnection!
}
type MoveModuleConnection { pageInfo: PageInfo! nodes: [MoveModule!]! }
type MoveModule { name: String! bytes: Base64 package: MovePackage }

input EventFilter {
  sender: SuiAddress
  module: String
  type: String
  afterCheckpoint: UInt53
  atCheckpoint: UInt53
  beforeCheckpoint: UInt53
}
type EventConnection { pageInfo: PageInfo! nodes: [Event!]! edges: [EventEdge!]! }
type EventEdge { cursor: String! node: Event! }

type Event {
  sequenceNumber: UInt53!
  eventBcs: Base64
  sender: Address
  contents: MoveValue
  transactionModule: MoveModule
  timestamp: DateTime
  transaction: Transaction
}
"""

_SERVICE_CONFIG = {
    "mutationTimeoutMs": 74_000, "queryTimeoutMs": 40_000, "maxQueryDepth": 20,
    "maxQueryNodes": 300, "maxOutputNodes": 1_000_000, "maxTransactionPayloadSize": 174_763,
    "maxQueryPayloadSize": 5_000, "maxMultiGetSize": 50, "maxTypeArgumentDepth": 16,
    "maxTypeArgumentWidth": 32, "maxTypeNodes": 256, "maxMoveValueDepth": 128,
    "defaultPageSize": 20, "maxPageSize": MAX_PAGE,
}


# ------------------------------------------------------------------ BCS (little-endian, ULEB128)

def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "little")


def _bytes(b: bytes) -> bytes:
    return _uleb(len(b)) + b


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _iso(ms: int) -> str:
    t = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# ------------------------------------------------------------------ cursors and pages

def _cursor(pos: Sequence[int]) -> str:
    return base64.b64encode(json.dumps(list(pos)).encode()).decode()


def _position(cursor: str | None) -> tuple[int, ...] | None:
    if cursor is None:
        return None
    try:
        pos = json.loads(base64.b64decode(cursor, validate=True))
        if not isinstance(pos, list) or not all(isinstance(x, int) for x in pos):
            raise ValueError
        return tuple(pos)
    except ValueError:
        raise GraphQLError(f"Invalid cursor: {cursor!r}") from None


def _page(items: list[tuple[tuple[int, ...], Any]], first: int | None, after: str | None,
          last: int | None, before: str | None) -> dict[str, Any]:
    """A connection over ``items`` (position, node) in ascending order, Relay-style."""
    if first is not None and last is not None:
        raise GraphQLError("'first' and 'last' must not be used together")
    for name, v in (("first", first), ("last", last)):
        if v is not None and not 0 <= v <= MAX_PAGE:
            raise GraphQLError(f"'{name}' must be between 0 and {MAX_PAGE}, not {v}")
    lo, hi = _position(after), _position(before)
    window = [(p, n) for p, n in items if (lo is None or p > lo) and (hi is None or p < hi)]
    more_after = more_before = False
    if last is not None:
        more_before = len(window) > last
        window = window[len(window) - last:] if last else []
    else:
        n = _SERVICE_CONFIG["defaultPageSize"] if first is None else first
        more_after = len(window) > n
        window = window[:n]
    return {
        "pageInfo": {
            "hasNextPage": more_after, "hasPreviousPage": more_before,
            "startCursor": _cursor(window[0][0]) if window else None,
            "endCursor": _cursor(window[-1][0]) if window else None,
        },
        "nodes": [n for _, n in window],
        "edges": [{"cursor": _cursor(p), "node": n} for p, n in window],
    }


# ------------------------------------------------------------------ the surface

class SuiGraphQL:
    """GraphQL over one :class:`SuiWire` (so over its chain); :meth:`execute` answers a POST."""

    def __init__(self, wire: SuiWire) -> None:
        self.wire = wire
        self.chain = wire.chain
        query = QueryType()
        owner = UnionType("Owner")

        @owner.type_resolver
        def _owner_type(obj: dict[str, Any], *_: Any) -> str:
            return str(obj["__typename"])

        query.set_field("chainIdentifier", lambda *_: self.chain.blocks[0].hash[:4].hex())
        query.set_field("serviceConfig", lambda *_: _SERVICE_CONFIG)
        query.set_field("protocolConfigs", lambda _o, _i, version=None: self._protocol(version))
        query.set_field("epoch", lambda _o, _i, epochId=None: self._epoch() if epochId in (
            None, 0) else None)
        query.set_field("checkpoint", self._checkpoint_field)
        query.set_field("checkpoints", self._checkpoints_field)
        query.set_field("object", lambda _o, _i, address, version=None: self._object(
            parse_id(address), version))
        query.set_field("package", lambda _o, _i, address: self._package(parse_id(address)))
        query.set_field("address", lambda _o, _i, address: self._address(parse_id(address)))
        query.set_field("transaction", lambda _o, _i, digest: self._transaction_by(digest))
        query.set_field("events", lambda _o, _i, **kw: self._events(**kw))
        self.schema: GraphQLSchema = make_executable_schema(SDL, query, owner)

    async def execute(self, body: Any) -> dict[str, Any]:
        """The response object for a decoded POST body ``{query, variables, operationName}``."""
        _, result = await run_graphql(self.schema, body, debug=False)
        out: dict[str, Any] = result
        return out

    # ------------------------------------------------------------------ config

    def _protocol(self, version: int | None) -> dict[str, Any] | None:
        if version not in (None, sui_discovery.PROTOCOL_VERSION):
            return None
        pc = sui_discovery.protocol_config()
        return {
            "protocolVersion": sui_discovery.PROTOCOL_VERSION,
            "configs": [{"key": k, "value": next(iter(v.values()))}
                        for k, v in pc["attributes"].items()],
            "featureFlags": [{"key": k, "value": v} for k, v in pc["featureFlags"].items()],
        }

    def _epoch(self) -> dict[str, Any]:
        return {"epochId": 0, "referenceGasPrice": str(sui_discovery.REFERENCE_GAS_PRICE),
                "startTimestamp": _iso(self.chain.blocks[0].timestamp_ms),
                "protocolConfigs": lambda *_: self._protocol(None)}

    # ------------------------------------------------------------------ checkpoints

    def checkpoint_node(self, b: Block) -> dict[str, Any]:
        total = self.wire._total_txs(b)
        content = sha3(b.hash + b"contents")
        summary = (_u64(0) + _u64(b.number) + _u64(total) + _bytes(content)
                   + (b"\x01" + _bytes(b.parent_hash) if b.number > 0 else b"\x00")
                   + _u64(0) * 4 + _u64(b.timestamp_ms) + _uleb(0) + b"\x00" + _bytes(b""))
        return {
            "digest": b58encode(b.hash),
            "sequenceNumber": b.number,
            "timestamp": _iso(b.timestamp_ms),
            "previousCheckpointDigest": b58encode(b.parent_hash) if b.number > 0 else None,
            "networkTotalTransactions": total,
            "contentDigest": b58encode(content),
            "summaryBcs": _b64(summary),
            "contentBcs": _b64(_uleb(len(b.txs)) + b"".join(_bytes(t.hash) for t in b.txs)),
            "epoch": lambda *_: self._epoch(),
            "rollingGasSummary": {"computationCost": "0", "storageCost": "0",
                                  "storageRebate": "0", "nonRefundableStorageFee": "0"},
            "validatorSignatures": {"signature": _b64(sha3(b.hash) + sha3(b.hash)[:16]),
                                    "signersMap": [0], "epoch": lambda *_: self._epoch()},
            "transactions": lambda _i, first=None, after=None, last=None, before=None: _page(
                [((i,), self._transaction(b, i)) for i in range(len(b.txs))],
                first, after, last, before),
        }

    def _checkpoint_field(self, _o: Any, _i: Any, sequenceNumber: int | None = None,
                          digest: str | None = None) -> dict[str, Any] | None:
        if sequenceNumber is not None and digest is not None:
            raise GraphQLError("give either sequenceNumber or digest, not both")
        if digest is not None:
            try:
                b = self.chain.by_hash.get(b58decode(digest))
            except ValueError as e:
                raise GraphQLError(f"Invalid digest: {e}") from None
            return self.checkpoint_node(b) if b is not None and self.chain.is_canonical(
                b) else None
        if sequenceNumber is not None:
            found = self.chain.block_at(sequenceNumber)
            return None if found is None else self.checkpoint_node(found)
        return self.checkpoint_node(self.chain.head)

    def _checkpoints_field(self, _o: Any, _i: Any, first: int | None = None,
                           after: str | None = None, last: int | None = None,
                           before: str | None = None,
                           filter: dict[str, Any] | None = None) -> dict[str, Any]:
        lo, hi = _range(filter or {}, self.chain.head.number)
        return _page([((n,), self.checkpoint_node(self.chain.blocks[n]))
                      for n in range(lo, hi + 1)], first, after, last, before)

    # ------------------------------------------------------------------ transactions

    def _transaction(self, b: Block, i: int) -> dict[str, Any]:
        tx = b.txs[i]
        events = [(e.seq,) for e in b.events if e.tx_hash == tx.hash]
        evs = {(e.seq,): e for e in b.events if e.tx_hash == tx.hash}
        return {
            "digest": b58encode(tx.hash),
            "sender": {"address": hex_id(tx.sender)},
            "effects": {
                "status": "SUCCESS",
                "timestamp": _iso(b.timestamp_ms),
                "checkpoint": lambda *_: self.checkpoint_node(b),
                "events": lambda _i, first=None, after=None, last=None, before=None: _page(
                    [(p, node) for p in events
                     if (node := self.event_node(b, evs[p])) is not None],
                    first, after, last, before),
            },
        }

    def _transaction_by(self, digest: str) -> dict[str, Any] | None:
        try:
            found = self.chain.tx_index.get(b58decode(digest))
        except ValueError as e:
            raise GraphQLError(f"Invalid digest: {e}") from None
        return None if found is None else self._transaction(*found)

    # ------------------------------------------------------------------ objects and packages

    def _object(self, oid: bytes, version: int | None) -> dict[str, Any] | None:
        found = self.wire.find_package(oid)
        if found is not None:
            if version is not None and version != found[1]:
                return None
            pkg = self._package(oid)
            assert pkg is not None
            c, _ = found
            return {
                "address": hex_id(oid), "version": found[1],
                "digest": b58encode(sha3(oid + c.code_hash)),
                "objectBcs": pkg["moduleBcs"], "owner": {"__typename": "Immutable", "_": None},
                "storageRebate": "0",
                "previousTransaction": {"digest": b58encode(sha3(c.code_hash + b"tx"))},
                "asMoveObject": None, "asMovePackage": pkg,
            }
        owner = self.wire._coin_owner(oid)
        if owner is None:
            return None
        ref = self.wire._coin_ref(owner)
        if version is not None and version != int(ref["version"]):
            return None
        balance = self.chain.head.state.balances.get(owner, 0)
        contents = oid + _u64(balance)
        prev = {"digest": b58encode(sha3(oid + b"tx"))}
        addr_owner = {"__typename": "AddressOwner", "address": {"address": hex_id(owner)}}
        move_object = {
            "address": hex_id(oid), "version": int(ref["version"]), "digest": ref["digest"],
            "hasPublicTransfer": True,
            "contents": {"type": {"repr": COIN_TYPE},
                         "json": {"id": hex_id(oid), "balance": str(balance)},
                         "bcs": _b64(contents)},
            "owner": addr_owner, "previousTransaction": prev,
        }
        return {
            "address": hex_id(oid), "version": int(ref["version"]), "digest": ref["digest"],
            # Object BCS: Data::Move (0) { type: GasCoin (1), has_public_transfer, version,
            # contents }, owner AddressOwner (0), previous transaction, storage rebate
            "objectBcs": _b64(b"\x00\x01\x01" + _u64(int(ref["version"])) + _bytes(contents)
                              + b"\x00" + owner + _bytes(sha3(oid + b"tx")) + _u64(988_000)),
            "owner": addr_owner, "storageRebate": "988000", "previousTransaction": prev,
            "asMoveObject": move_object, "asMovePackage": None,
        }

    def _address(self, owner: bytes) -> dict[str, Any]:
        def balance(_i: Any, coinType: str = SUI_COIN) -> dict[str, Any]:
            got = self.wire.call("suix_getBalance", [hex_id(owner), coinType])
            assert isinstance(got, dict)
            return {"coinType": {"repr": got["coinType"]},
                    "coinObjectCount": got["coinObjectCount"],
                    "totalBalance": got["totalBalance"]}

        return {"address": hex_id(owner), "balance": balance}

    def _package(self, pid: bytes) -> dict[str, Any] | None:
        found = self.wire.find_package(pid)
        if found is None:
            return None
        c, version = found
        names = sorted(c.modules)

        def module(name: str) -> dict[str, Any]:
            return {"name": name, "bytes": _b64(c.modules[name]), "package": lambda *_: pkg}

        pkg: dict[str, Any] = {
            "address": hex_id(pid), "version": version,
            "digest": b58encode(sha3(pid + c.code_hash)),
            "moduleBcs": _b64(_uleb(len(names)) + b"".join(
                _bytes(n.encode()) + _bytes(c.modules[n]) for n in names)),
            "module": lambda _i, name: module(name) if name in c.modules else None,
            "modules": lambda _i, first=None, after=None, last=None, before=None: _page(
                [((i,), module(n)) for i, n in enumerate(names)], first, after, last, before),
        }
        return pkg

    # ------------------------------------------------------------------ events

    def event_node(self, b: Block, ev: Event) -> dict[str, Any] | None:
        j = self.wire.event_json(b, ev)
        if j is None:
            return None
        i = self.chain.tx_index.get(ev.tx_hash, (b, ev.tx_index))[1]
        return {
            "sequenceNumber": ev.seq,
            "eventBcs": j["bcs"],
            "sender": {"address": j["sender"]},
            "contents": {"type": {"repr": j["type"]}, "json": j["parsedJson"], "bcs": j["bcs"]},
            "transactionModule": {"name": EVENT_MODULE, "bytes": None,
                                  "package": lambda *_: self._package(parse_id(REGISTRY))},
            "timestamp": _iso(b.timestamp_ms),
            "transaction": lambda *_: self._transaction(b, i),
        }

    def _events(self, first: int | None = None, after: str | None = None,
                last: int | None = None, before: str | None = None,
                filter: dict[str, Any] | None = None) -> dict[str, Any]:
        flt = filter or {}
        lo, hi = _range(flt, self.chain.head.number)
        match = _event_filter(flt)
        items: list[tuple[tuple[int, ...], Any]] = []
        for n in range(lo, hi + 1):
            b = self.chain.blocks[n]
            for ev in b.events:
                node = self.event_node(b, ev)
                if node is not None and match(node):
                    items.append(((n, ev.tx_index, ev.seq), node))
        return _page(items, first, after, last, before)


def _range(flt: dict[str, Any], head: int) -> tuple[int, int]:
    """Checkpoints ``lo..hi`` selected by after/at/beforeCheckpoint (exclusive bounds)."""
    lo, hi = 0, head
    if flt.get("afterCheckpoint") is not None:
        lo = max(lo, int(flt["afterCheckpoint"]) + 1)
    if flt.get("beforeCheckpoint") is not None:
        hi = min(hi, int(flt["beforeCheckpoint"]) - 1)
    if flt.get("atCheckpoint") is not None:
        at = int(flt["atCheckpoint"])
        lo, hi = max(lo, at), min(hi, at)
    return lo, hi


def _norm_type(t: str) -> str:
    """``0xdb::registry::X`` with its address as 64 hex digits."""
    parts = t.split("::")
    try:
        parts[0] = hex_id(parse_id(parts[0]))
    except ValueError:
        raise GraphQLError(f"Invalid type or module: {t!r}") from None
    return "::".join(parts)


def _event_filter(flt: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """A predicate over event nodes: ``sender``; ``module`` ("0xpkg" or "0xpkg::module": the
    module whose function emitted it); ``type`` (a package, module or full type prefix)."""
    sender = hex_id(parse_id(flt["sender"])) if flt.get("sender") else None
    module = _norm_type(flt["module"]) if flt.get("module") else None
    etype = _norm_type(flt["type"]) if flt.get("type") else None

    def match(node: dict[str, Any]) -> bool:
        t = node["contents"]["type"]["repr"]
        if sender is not None and node["sender"]["address"] != sender:
            return False
        pkg_mod = "::".join(t.split("::")[:2])
        if module is not None and module not in (pkg_mod, t.split("::")[0]):
            return False
        return etype is None or t == etype or t.startswith(etype + "::")

    return match
