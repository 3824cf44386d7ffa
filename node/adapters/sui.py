"""The Sui adapter: follows checkpoints over HTTP and reports Dubhe package events (HTTP + WS).

Sui JSON-RPC has no checkpoint subscription, so checkpoints are polled (``sui_getCheckpoints``
descending, limit 1, every ``poll_interval_s``) and gaps backfilled with ascending pages; a
checkpoint's ``previousDigest`` links it to its parent for reorg detection (Sui checkpoints are
final, so a reorg only ever comes from a faulty or mock peer).

Events are read with ``suix_queryEvents`` on the Dubhe registry module, paged by cursor (so none is
missed or repeated across disconnects), after each sync step; a ``suix_subscribeEvent``
subscription on the same filter only wakes the sync task up early. Each event becomes an
:class:`~node.adapters.events.L1Event`; ``CodePublished``/``CodeUpgraded`` also become a
:class:`~node.adapters.events.CodeUpgrade` whose ``location`` is the new package id (an upgrade
publishes a new package; ``address`` is the original id). Only events after the adapter's first
sync are reported.

Package modules (Dubhe RISC-V ELFs) are read with :meth:`SuiAdapter.get_package_modules`.

``protocol="graphql"``: the endpoints' ``rpc_url`` are Sui GraphQL URLs (Sui's JSON-RPC is
deprecated upstream). Checkpoints are polled (``checkpoint``; gaps as ``checkpoints`` pages with a
checkpoint-range filter) and each new checkpoint's registry events are read with ``events(filter:
{atCheckpoint, type})`` (paged by cursor) right after its ``NewHead``, like Ethereum's logs per
block: a (mock-only) reorg re-reads the events of the replacement checkpoints, so no cursor can be
lost. There is no subscription (Sui's GraphQL has none): heads come from polls every
``poll_interval_s`` (0.25 s by default in this mode). The same failover, hedging and scoring apply.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from node.adapters.base import ChainAdapter
from node.adapters.errors import AdapterError, MalformedResponse, RpcFailure
from node.adapters.events import AdapterEvent, CodeUpgrade, Endpoint, Header, L1Event
from node.core.errors import INVALID_PARAMS

NetworkType = Literal["Mainnet", "Testnet", "Devnet", "Localnet"]
Protocol = Literal["jsonrpc", "graphql"]
REGISTRY = "0x" + "00" * 31 + "db"
EVENT_MODULE = "registry"
_PAGE = 50

_CHECKPOINT = """fragment C on Checkpoint { sequenceNumber digest previousCheckpointDigest timestamp
  transactions(first: 50) { nodes { digest } } }"""
_Q_LATEST = "query { checkpoint { ...C } }\n" + _CHECKPOINT
_Q_RANGE = """query ($first: Int!, $after: UInt53!, $before: UInt53!) {
  checkpoints(first: $first, filter: {afterCheckpoint: $after, beforeCheckpoint: $before}) {
    nodes { ...C } } }
""" + _CHECKPOINT
_Q_EVENTS = """query ($at: UInt53!, $type: String!, $after: String) {
  events(first: 50, after: $after, filter: {atCheckpoint: $at, type: $type}) {
    pageInfo { hasNextPage endCursor }
    nodes { sequenceNumber timestamp sender { address }
            contents { type { repr } json } transaction { digest } } } }"""
_Q_MODULES = """query ($id: SuiAddress!, $after: String) {
  package(address: $id) { modules(first: 50, after: $after) {
    pageInfo { hasNextPage endCursor } nodes { name bytes } } } }"""


class CodeNotFound(AdapterError):
    """No package (or no object) with that id."""


def normalize_id(v: str) -> str:
    """``0x2`` → ``0x000...002`` (Sui ids are 32 bytes); raises ``ValueError``."""
    if not isinstance(v, str) or not v.startswith("0x") or not 2 < len(v) <= 66:
        raise ValueError(f"not a Sui id: {v!r}")
    return "0x" + int(v[2:], 16).to_bytes(32, "big").hex()


def _u64(v: Any, what: str) -> int:
    if not isinstance(v, str) or not v.isdigit():
        raise ValueError(f"{what}: expected a decimal string, got {v!r}")
    return int(v)


def parse_checkpoint(obj: Any) -> Header:
    """A Checkpoint object → :class:`Header`; raises ``ValueError`` naming the bad field."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a checkpoint object, got {type(obj).__name__}")
    digest = obj.get("digest")
    prev = obj.get("previousDigest")
    if not isinstance(digest, str) or not digest:
        raise ValueError("checkpoint digest missing")
    if prev is not None and not isinstance(prev, str):
        raise ValueError("previousDigest is not a string")
    return Header(
        number=_u64(obj.get("sequenceNumber"), "sequenceNumber"),
        hash=digest,
        parent_hash=prev or "",
        timestamp_ms=_u64(obj.get("timestampMs"), "timestampMs"),
    )


def _page(result: Any) -> tuple[list[Any], Any, bool]:
    if not isinstance(result, dict) or not isinstance(result.get("data"), list):
        raise ValueError("expected a page {data, nextCursor, hasNextPage}")
    more = result.get("hasNextPage")
    if not isinstance(more, bool):
        raise ValueError("hasNextPage is not a boolean")
    return result["data"], result.get("nextCursor"), more


class SuiAdapter(ChainAdapter):
    """Follows a Sui JSON-RPC chain over ``endpoints`` (the first is the primary).

    ``package_ids`` are kept for the caller (packages to preload); events are reported for every
    package. ``registry``: the package whose ``registry`` module emits Dubhe code events.
    """

    chain = "sui"

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        network_type: NetworkType = "Localnet",
        package_ids: Iterable[str] = (),
        registry: str = REGISTRY,
        poll_interval_s: float | None = None,
        protocol: Protocol = "jsonrpc",
        **kw: Any,
    ) -> None:
        if protocol not in ("jsonrpc", "graphql"):
            raise ValueError(f"protocol must be jsonrpc or graphql, not {protocol!r}")
        if protocol == "graphql":
            kw["use_ws"] = False  # Sui's GraphQL has no subscriptions: heads come from polls
        if poll_interval_s is None:
            poll_interval_s = 0.25 if protocol == "graphql" else 0.5
        super().__init__(endpoints, poll_interval_s=poll_interval_s, **kw)
        self.protocol: Protocol = protocol
        if network_type not in ("Mainnet", "Testnet", "Devnet", "Localnet"):
            raise ValueError(
                f"network_type must be Mainnet, Testnet, Devnet or Localnet, not {network_type!r}"
            )
        self.network_type = network_type
        self.package_ids = tuple(normalize_id(p) for p in package_ids)
        self.registry = normalize_id(registry)
        self._filter = {"MoveEventModule": {"package": self.registry, "module": EVENT_MODULE}}
        self._cursor: Any = None
        self._cursor_ready = False
        self._seen: dict[str, None] = {}
        #: Transaction digests of recent checkpoints, by checkpoint digest (for reorgs).
        self._ckpt_txs: dict[str, tuple[str, ...]] = {}
        #: Cursors reached, oldest first, each with the transaction of its event.
        self._cursor_log: list[tuple[str, Any]] = []
        self._start_cursor: Any = None
        self._start_ms = 0
        #: Package versions seen per original id, oldest first: (package id, version, tx digest).
        self._lineage: dict[str, list[tuple[str, int, str]]] = {}

    # ------------------------------------------------------------------ reads for the loader

    async def get_package_modules(
        self, package_id: str, *, timeout_s: float | None = None
    ) -> dict[str, bytes]:
        """Module name → bytes (Dubhe RISC-V ELF) of a package; raises :class:`CodeNotFound`.
        ``timeout_s``: the whole fetch's budget (hedges and retries included)."""
        pid = normalize_id(package_id)
        if self.protocol == "graphql":
            return await self._modules_gql(pid, timeout_s)
        res = await self.rpc.call(
            "sui_getObject", [pid, {"showBcs": True, "showType": True}], _object,
            timeout_s=timeout_s,
        )
        if "error" in res:
            raise CodeNotFound(f"package {pid}: {res['error']}")
        bcs = res["data"].get("bcs")
        if not isinstance(bcs, dict) or bcs.get("dataType") != "package":
            raise CodeNotFound(f"object {pid} is not a package")
        mm = bcs.get("moduleMap")
        if not isinstance(mm, dict):
            raise MalformedResponse(f"package {pid}: moduleMap missing")
        try:
            return {str(k): base64.b64decode(v, validate=True) for k, v in mm.items()}
        except (ValueError, TypeError) as e:
            raise MalformedResponse(f"package {pid}: module is not base64 ({e})") from None

    async def _modules_gql(self, pid: str, timeout_s: float | None) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        after: str | None = None
        for _ in range(100):
            data = await self.rpc.graphql(_Q_MODULES, {"id": pid, "after": after}, _gql_obj,
                                          what="package modules", timeout_s=timeout_s)
            pkg = data.get("package")
            if pkg is None:
                raise CodeNotFound(f"package {pid}: no package with that id")
            try:
                page = pkg["modules"]
                for m in page["nodes"]:
                    out[str(m["name"])] = base64.b64decode(m["bytes"], validate=True)
                more, after = bool(page["pageInfo"]["hasNextPage"]), page["pageInfo"]["endCursor"]
            except (KeyError, TypeError, ValueError) as e:
                raise MalformedResponse(f"package {pid}: bad modules page ({e})") from None
            if not more:
                return out
        raise MalformedResponse(f"package {pid}: more than 5000 modules")

    async def get_balance(self, owner: str, coin_type: str = "0x2::sui::SUI") -> int:
        def parse(r: Any) -> int:
            return _u64(r["totalBalance"], "totalBalance")

        if self.protocol == "graphql":
            return await self.rpc.graphql(
                "query ($a: SuiAddress!, $t: String) { address(address: $a) {"
                " balance(coinType: $t) { totalBalance } } }",
                {"a": normalize_id(owner), "t": coin_type},
                lambda d: parse(_gql_obj(d)["address"]["balance"]), what="balance")

        return await self.rpc.call("suix_getBalance", [normalize_id(owner), coin_type], parse)

    async def latest_checkpoint(self) -> int:
        if self.protocol == "graphql":
            return (await self._latest_header()).number
        return await self.rpc.call(
            "sui_getLatestCheckpointSequenceNumber", [], lambda r: _u64(r, "sequence number")
        )

    # ------------------------------------------------------------------ ChainAdapter hooks

    def current_package(self, original_id: str) -> str:
        """The newest package id of a lineage that this adapter has seen (after reorgs: the newest
        still on the chain); the original id when no upgrade was seen."""
        pid = normalize_id(original_id)
        versions = self._lineage.get(pid)
        return versions[-1][0] if versions else pid

    def current_version(self, original_id: str) -> int:
        """The version of :meth:`current_package` (1 when no upgrade was seen)."""
        versions = self._lineage.get(normalize_id(original_id))
        return versions[-1][1] if versions else 1

    def _checkpoint(self, obj: Any) -> Header:
        h = parse_checkpoint(obj)
        txs = obj.get("transactions") if isinstance(obj, dict) else None
        if isinstance(txs, list):
            self._ckpt_txs[h.hash] = tuple(str(t) for t in txs)
            if len(self._ckpt_txs) > 4 * self.follower.window:
                for k in list(self._ckpt_txs)[: self.follower.window]:
                    del self._ckpt_txs[k]
        return h

    def _checkpoint_gql(self, obj: Any) -> Header:
        """A GraphQL ``Checkpoint`` → :class:`Header` (and its transactions, for reorgs)."""
        if not isinstance(obj, dict):
            raise ValueError("expected a checkpoint object")
        seq, digest = obj.get("sequenceNumber"), obj.get("digest")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError(f"sequenceNumber: expected a u53, got {seq!r}")
        if not isinstance(digest, str) or not digest:
            raise ValueError("checkpoint digest missing")
        prev = obj.get("previousCheckpointDigest")
        h = Header(number=seq, hash=digest, parent_hash=prev or "",
                   timestamp_ms=_iso_ms(obj.get("timestamp")))
        txs = obj.get("transactions")
        if isinstance(txs, dict) and isinstance(txs.get("nodes"), list):
            self._ckpt_txs[h.hash] = tuple(str(t["digest"]) for t in txs["nodes"])
            if len(self._ckpt_txs) > 4 * self.follower.window:
                for k in list(self._ckpt_txs)[: self.follower.window]:
                    del self._ckpt_txs[k]
        return h

    async def _latest_header(self) -> Header:
        if self.protocol == "graphql":
            def parse(d: Any) -> Header:
                cp = _gql_obj(d).get("checkpoint")
                if cp is None:
                    raise ValueError("no checkpoint")
                return self._checkpoint_gql(cp)

            return await self.rpc.graphql(_Q_LATEST, {}, parse, what="latest checkpoint")
        data, _, _ = await self.rpc.call("sui_getCheckpoints", [None, 1, True], _page)
        if not data:
            raise MalformedResponse("sui_getCheckpoints returned no checkpoint")
        return self._checkpoint(data[0])

    async def _headers(self, first: int, last: int) -> list[Header]:
        out: list[Header] = []
        if self.protocol == "graphql":
            while first <= last:
                n = min(_PAGE, last - first + 1)

                def parse(d: Any) -> list[Header]:
                    nodes = _gql_obj(d)["checkpoints"]["nodes"]
                    return [self._checkpoint_gql(c) for c in nodes]

                got = await self.rpc.graphql(
                    _Q_RANGE, {"first": n, "after": first - 1, "before": first + n}, parse,
                    what=f"checkpoints {first}..{first + n - 1}")
                got = [h for h in got if first <= h.number <= last]
                if not got:
                    break
                out.extend(got)
                first = got[-1].number + 1
            return out
        while first <= last:
            cursor = str(first - 1) if first > 0 else None
            limit = min(_PAGE, last - first + 1)
            data, _, _ = await self.rpc.call("sui_getCheckpoints", [cursor, limit, False], _page)
            got = [self._checkpoint(c) for c in data]
            got = [h for h in got if first <= h.number <= last]
            if not got:
                break
            out.extend(got)
            first = got[-1].number + 1
        return out

    async def _block_events(self, header: Header) -> list[AdapterEvent]:
        if self.protocol != "graphql":
            return []  # JSON-RPC: events are read by cursor after each sync step
        out: list[AdapterEvent] = []
        after: str | None = None
        etype = f"{self.registry}::{EVENT_MODULE}"
        for _ in range(100):  # at most 5000 registry events per checkpoint
            page = await self.rpc.graphql(
                _Q_EVENTS, {"at": header.number, "type": etype, "after": after},
                lambda d: _gql_obj(d)["events"], what=f"events of checkpoint {header.number}")
            try:
                nodes, info = page["nodes"], page["pageInfo"]
                for node in nodes:
                    out.extend(self._event(_event_from_gql(node, header, self.registry)))
                more, after = bool(info["hasNextPage"]), info["endCursor"]
            except (KeyError, TypeError) as e:
                raise MalformedResponse(f"events of checkpoint {header.number}: {e}") from None
            if not more:
                break
        return out

    async def _after_sync(self) -> list[AdapterEvent]:
        if self.protocol == "graphql":
            return []  # events are read per checkpoint (_block_events)
        if not self._cursor_ready:
            # start from now: the newest existing event is the cursor
            data, _, _ = await self.rpc.call(
                "suix_queryEvents", [self._filter, None, 1, True], _page
            )
            self._cursor = data[0]["id"] if data else None
            self._start_cursor = self._cursor
            head = self.follower.head
            self._start_ms = head.timestamp_ms if head is not None else 0
            self._cursor_ready = True
            return []
        out: list[AdapterEvent] = []
        for _ in range(100):  # bounded: at most 5000 events per sync step
            try:
                data, next_cursor, more = await self.rpc.call(
                    "suix_queryEvents", [self._filter, self._cursor, _PAGE, False], _page
                )
            except RpcFailure as e:
                if self._cursor is None or e.code != INVALID_PARAMS:
                    raise
                # the cursor's transaction is gone (only a reorging mock does this; Sui is final)
                # and no reorg told us which: step back to an older cursor and read forward again
                # (events already reported are skipped by id)
                self.log.warning("sui: event cursor %s rejected (%s); stepping back", self._cursor,
                                 e)
                self._rewind(lambda tx: tx == _tx_of(self._cursor))
                continue
            for ev in data:
                out.extend(self._event(ev))
            if next_cursor is not None:
                self._cursor = next_cursor
                self._cursor_log.append((_tx_of(next_cursor), next_cursor))
                del self._cursor_log[:-256]
            if not more or not data:
                break
        return out

    def _rewind(self, dropped: Any) -> None:
        """Move the event cursor back to the newest one whose transaction is not ``dropped``."""
        while self._cursor_log and dropped(self._cursor_log[-1][0]):
            self._cursor_log.pop()
        if self._cursor_log:
            self._cursor = self._cursor_log[-1][1]
        elif self._start_cursor is not None and not dropped(_tx_of(self._start_cursor)):
            self._cursor = self._start_cursor
        else:
            # nothing older is known: read from the first event, skipping those before our start
            self._cursor = None

    def _reverted_code(self, dropped: tuple[Header, ...]) -> tuple[str, ...]:
        """A (mock-only) reorg dropped checkpoints: forget their events (so re-included ones are
        reported again), move the event cursor back before them, and name the package lineages
        whose upgrade left the chain (their code must be restored to the newest version still
        on it)."""
        txs: set[str] = set()
        for h in dropped:
            txs.update(self._ckpt_txs.pop(h.hash, ()))
        if not txs:
            return ()
        for key in [k for k in self._seen if k.split(":", 1)[0] in txs]:
            del self._seen[key]
        if self._cursor is not None and _tx_of(self._cursor) in txs:
            self._rewind(lambda tx: tx in txs)
        reverted: list[str] = []
        for original, versions in self._lineage.items():
            kept = [v for v in versions if v[2] not in txs]
            if len(kept) != len(versions):
                self._lineage[original] = kept
                reverted.append(original)
        return tuple(reverted)

    def _event(self, ev: Any) -> list[AdapterEvent]:
        try:
            eid = ev["id"]
            key = f"{eid['txDigest']}:{eid['eventSeq']}"
            etype = ev["type"]
            if not isinstance(etype, str):
                raise ValueError("type is not a string")
        except (KeyError, TypeError, ValueError) as e:
            self.stats["malformed"] += 1
            self.log.error("sui: malformed event (%s): %.160r", e, ev)
            return []
        if key in self._seen:
            self.stats["duplicates"] += 1
            return []
        ts = ev.get("timestampMs")
        if isinstance(ts, str) and ts.isdigit() and int(ts) < self._start_ms:
            return []  # older than our start (read again after a rewind to the first event)
        self._seen[key] = None
        if len(self._seen) > 4096:
            for k in list(self._seen)[:1024]:
                del self._seen[k]
        out: list[AdapterEvent] = [
            L1Event(self.chain, key, str(ev.get("packageId", "")), etype, None, ev)
        ]
        if etype.rsplit("::", 1)[-1] in ("CodePublished", "CodeUpgraded"):
            try:
                pj = ev["parsedJson"]
                up = CodeUpgrade(
                    self.chain, normalize_id(pj["original_id"]), normalize_id(pj["package_id"]),
                    _u64(pj["version"], "version"), str(pj["code_hash"]), None,
                )
                out.append(up)
                lineage = self._lineage.setdefault(up.address, [])
                lineage.append((up.location, up.version, key.split(":", 1)[0]))
                del lineage[:-64]
            except (KeyError, TypeError, ValueError) as e:
                self.stats["malformed"] += 1
                self.log.error("sui: malformed code event (%s): %.160r", e, ev)
        return out

    def _subscriptions(self) -> list[tuple[str, list[Any]]]:
        return [("suix_subscribeEvent", [self._filter])]

    def _on_notification(self, result: Any) -> Header | None:
        if not isinstance(result, dict) or "id" not in result:
            raise ValueError("event notification without an id")
        return None  # events are read by cursor; the notification only wakes us up


def _tx_of(cursor: Any) -> str:
    """The transaction digest of an event cursor ``{txDigest, eventSeq}`` ("" if unknown)."""
    return str(cursor.get("txDigest", "")) if isinstance(cursor, dict) else ""


def _gql_obj(d: Any) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ValueError("GraphQL data is not an object")
    return d


def _iso_ms(v: Any) -> int:
    """An ISO-8601 ``DateTime`` (``2023-11-14T22:13:20.000Z``) in milliseconds since the epoch."""
    if not isinstance(v, str):
        raise ValueError(f"timestamp: expected an ISO-8601 string, got {v!r}")
    t = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.UTC)
    return round(t.timestamp() * 1000)


def _event_from_gql(node: Any, header: Header, registry: str) -> dict[str, Any]:
    """A GraphQL ``Event`` in the JSON-RPC event shape the adapter reads (id, type, parsedJson)."""
    try:
        return {
            "id": {"txDigest": node["transaction"]["digest"],
                   "eventSeq": str(node["sequenceNumber"])},
            "packageId": registry,
            "transactionModule": EVENT_MODULE,
            "sender": (node.get("sender") or {}).get("address"),
            "type": node["contents"]["type"]["repr"],
            "parsedJson": node["contents"]["json"],
            "timestampMs": str(header.timestamp_ms),
        }
    except (KeyError, TypeError):
        return {"malformed": node}  # reported (and counted) by _event


def _object(r: Any) -> dict[str, Any]:
    if not isinstance(r, dict) or not ("data" in r or "error" in r):
        raise ValueError("expected {data} or {error}")
    if "data" in r and not isinstance(r["data"], dict):
        raise ValueError("object data is not an object")
    return r
