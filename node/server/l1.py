"""Dynamic mainchain loading: follow the configured L1s and load their contracts on demand.

What the node reflects from its L1s (documented in README): per chain the head (number, hash,
timestamp), endpoint health, the contracts loaded from it (address -> location, version, code
hash) and the latest L1 events (the last 100). All of it is served by ``dubhe_status`` (``l1``),
``dubhe_getL1Head`` and ``/metrics``.

Address mapping:

* Ethereum: a contract keeps its 20-byte address; its code is ``eth_getCode``.
* Sui: each module of a configured package gets the node address
  :func:`sui_module_address` ``(original package id, module name)``; an upgrade publishes a new
  package id but the node address stays, so clients keep calling the same address.

Loading: before a block is built, targets of its transactions that have no code in state are
fetched (concurrently, bounded by ``fetch_timeout_s``) and written into state as system writes at
the start of that block. A target that cannot be fetched is remembered for ``failure_ttl_s``;
transactions to it execute and revert with a receipt naming why (:class:`CodeUnavailable`), so a
block never waits on a dead L1. Code upgrade events (and code in reorged-away blocks) re-fetch the
contract and replace it at the next block: hot reload without a restart.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from node.adapters import (
    AdapterError,
    BackoffPolicy,
    ChainAdapter,
    CodeUpgrade,
    EthereumAdapter,
    L1Event,
    NewHead,
    Reorg,
    SuiAdapter,
    endpoint_list,
)
from node.adapters.sui import normalize_id
from node.chain.mempool import PoolEntry
from node.config import Config
from node.core import keys
from node.core.codec import sha3
from node.core.execution import StateReader
from node.server.metrics import Metrics
from node.state.chain_store import ChainStore
from node.vm.elf import CodeUnavailable
from node.vm.program import Program
from node.vm.runtime import Resolver

log = logging.getLogger("node.l1")

_LOADED = b"l1/loaded/"


def sui_module_address(package_id: str, module: str) -> bytes:
    """The node address of a Sui module of the package whose *original* id is ``package_id``
    (stable across package upgrades; short ids like ``0x2`` are normalized first)."""
    pid = normalize_id(package_id)
    return sha3(b"dubhe-sui-module" + pid.encode() + b"::" + module.encode())[-keys.ADDRESS_LEN :]


@dataclass
class Loaded:
    chain: str
    location: str  # Ethereum address, or "original_package_id::module"
    version: int
    code_hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "location": self.location,
            "version": self.version,
            "codeHash": self.code_hash,
        }


class L1Service:
    def __init__(
        self,
        cfg: Config,
        store: ChainStore,
        metrics: Metrics,
        schedule_writes: Callable[[dict[bytes, bytes | None]], object],
        *,
        resolver: L1AwareResolver | None = None,
        fetch_timeout_s: float = 2.0,
        failure_ttl_s: float = 5.0,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.schedule_writes = schedule_writes
        self.resolver = resolver
        self.fetch_timeout_s = fetch_timeout_s
        self.failure_ttl_s = failure_ttl_s
        self.adapters: dict[str, ChainAdapter] = {}
        e, s = cfg.adapters.ethereum, cfg.adapters.sui
        if e is not None:
            self.adapters["ethereum"] = EthereumAdapter(
                endpoint_list(e.rpc_url, e.ws_url, e.endpoints),
                chain_id=e.chain_id,
                backoff=BackoffPolicy.from_ms(
                    e.backoff.initial_ms, e.backoff.max_ms, e.backoff.factor
                ),
                request_timeout_s=e.backoff.request_timeout_ms / 1000,
            )
        self.sui_packages: list[str] = []
        if s is not None:
            self.sui_packages = [normalize_id(p) for p in s.package_ids]
            self.adapters["sui"] = SuiAdapter(
                endpoint_list(s.rpc_url, s.ws_url, s.endpoints),
                network_type=s.network_type,
                package_ids=s.package_ids,
                backoff=BackoffPolicy.from_ms(
                    s.backoff.initial_ms, s.backoff.max_ms, s.backoff.factor
                ),
                request_timeout_s=s.backoff.request_timeout_ms / 1000,
            )
        self.sui_modules: dict[bytes, tuple[str, str]] = {}  # node address -> (original id, module)
        self.loaded: dict[bytes, Loaded] = {}
        self.failures: dict[bytes, tuple[float, str]] = {}
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=100)
        self._tasks: set[asyncio.Task[Any]] = set()
        for k, v in store.aux_iter(_LOADED):
            d = orjson.loads(v)
            self.loaded[k[len(_LOADED) :]] = Loaded(
                d["chain"], d["location"], d["version"], d["codeHash"]
            )

    @property
    def enabled(self) -> bool:
        return bool(self.adapters)

    @property
    def chains(self) -> tuple[str, ...]:
        """Names of the followed chains (``ethereum``, ``sui``)."""
        return tuple(self.adapters)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start following; returns at once (an unreachable L1 never blocks the node)."""
        for name, a in self.adapters.items():
            a.add_listener(self._on_event)
            await a.start()
            log.info("following %s (adapter seed %s)", name, a.rng_seed)
        if self.sui_packages:
            self._spawn(self._map_sui_packages())

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for a in self.adapters.values():
            await a.stop()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _map_sui_packages(self) -> None:
        sui = self.adapters["sui"]
        assert isinstance(sui, SuiAdapter)
        for pid in self.sui_packages:
            for attempt in range(100):
                try:
                    mods = await sui.get_package_modules(pid)
                    break
                except AdapterError as e:
                    log.warning("sui: cannot list modules of %s yet (%s); retrying", pid, e)
                    await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
            else:
                continue
            for name in mods:
                self.sui_modules[sui_module_address(pid, name)] = (pid, name)
            log.info("sui: package %s has modules %s", pid, sorted(mods))

    # -- loading --------------------------------------------------------------------------
    def failure(self, address: bytes) -> str | None:
        f = self.failures.get(address)
        if f is None:
            return None
        if f[0] < time.monotonic():
            del self.failures[address]
            return None
        return f[1]

    def failure_snapshot(self) -> dict[bytes, str]:
        """Current failures, as an immutable-by-convention dict for one block's execution."""
        now = time.monotonic()
        return {a: r for a, (until, r) in self.failures.items() if until >= now}

    async def before_block(self, entries: list[PoolEntry],
                           queued: Mapping[bytes, bytes | None]) -> dict[bytes, bytes | None]:
        """The block-production hook: the code of the block's targets that have none in state
        nor in ``queued`` (the system writes already queued for this block), fetched from the
        L1s; then the resolver learns the current failures for this block's execution."""
        missing = set()
        for to in {e.tx.to for e in entries}:
            ck = keys.code_key(to)
            if ck not in queued and self.store.get(ck) is None:
                missing.add(to)
        writes = await self.fetch_missing(missing) if missing else {}
        if self.resolver is not None:
            self.resolver.failures = self.failure_snapshot()
        return writes

    async def fetch_missing(self, addresses: set[bytes]) -> dict[bytes, bytes | None]:
        """Fetch the code of ``addresses`` (none of which has code in state); returns the state
        writes to apply. Failures are remembered (see :meth:`failure`)."""
        todo = [a for a in addresses if self.failure(a) is None]
        if not todo:
            return {}
        results = await asyncio.gather(*(self._fetch_one(a) for a in todo))
        writes: dict[bytes, bytes | None] = {}
        for a, (code, info, err) in zip(todo, results, strict=True):
            if code is not None and info is not None:
                writes[keys.code_key(a)] = code
                self._remember(a, info)
            elif err is not None:
                self.failures[a] = (time.monotonic() + self.failure_ttl_s, err)
        return writes

    async def _fetch_one(self, address: bytes) -> tuple[bytes | None, Loaded | None, str | None]:
        chain = (
            "sui"
            if address in self.sui_modules
            else "ethereum"
            if "ethereum" in self.adapters
            else None
        )
        if chain is None:
            return None, None, None  # not an L1 contract: the VM reverts with "no contract"
        try:
            async with asyncio.timeout(self.fetch_timeout_s):
                code, info = await self._code(chain, address)
        except TimeoutError:
            err = f"could not be loaded from {chain}: timed out after {self.fetch_timeout_s:.1f} s"
        except AdapterError as e:
            err = f"could not be loaded from {chain}: {e}"
        else:
            if code:
                self.metrics.l1_fetches.labels(chain, "ok").inc()
                return code, info, None
            err = f"no contract at 0x{address.hex()} on {chain}"
        self.metrics.l1_fetches.labels(chain, "failed").inc()
        log.warning("contract 0x%s %s", address.hex(), err)
        return None, None, err

    async def _code(
        self, chain: str, address: bytes, location: str | None = None
    ) -> tuple[bytes, Loaded]:
        a = self.adapters[chain]
        if isinstance(a, EthereumAdapter):
            code = await a.get_code(address)
            return code, Loaded(chain, "0x" + address.hex(), 0, "0x" + sha3(code).hex())
        assert isinstance(a, SuiAdapter)
        original, module = self.sui_modules[address]
        mods = await a.get_package_modules(location or original)
        code = mods.get(module, b"")
        return code, Loaded(chain, f"{location or original}::{module}", 0, "0x" + sha3(code).hex())

    def _remember(self, address: bytes, info: Loaded) -> None:
        self.loaded[address] = info
        self.store.aux_put(_LOADED + address, orjson.dumps(info.as_dict()))

    # -- events ---------------------------------------------------------------------------
    def _on_event(self, ev: object) -> None:
        if isinstance(ev, NewHead):
            self.metrics.l1_head.labels(ev.chain).set(ev.header.number)
        elif isinstance(ev, L1Event):
            self.metrics.l1_events.labels(ev.chain).inc()
            self.events.append({
                "chain": ev.chain, "id": ev.id, "type": ev.kind, "address": ev.address,
                "blockNumber": ev.header.number if ev.header else None,
            })
        elif isinstance(ev, CodeUpgrade):
            self._spawn(self._reload(ev.chain, ev.address, ev.location, ev.version, ev.code_hash))
        elif isinstance(ev, Reorg):
            self.metrics.l1_reorgs.labels(ev.chain).inc()
            for loc in ev.reverted_code:
                self._spawn(self._reload(ev.chain, loc, loc, -1, ""))

    async def _reload(
        self, chain: str, l1_address: str, location: str, version: int, code_hash: str
    ) -> None:
        """Re-fetch an upgraded contract the node has loaded, and replace it at the next block."""
        targets: list[bytes] = []
        if chain == "ethereum":
            try:
                addr = bytes.fromhex(l1_address.removeprefix("0x"))
            except ValueError:
                return
            if addr in self.loaded:
                targets = [addr]
        else:
            targets = [
                a
                for a, (orig, _) in self.sui_modules.items()
                if orig == l1_address and a in self.loaded
            ]
        for addr in targets:
            try:
                code, info = await self._code(
                    chain, addr, None if chain == "ethereum" else location
                )
            except AdapterError as e:
                log.error(
                    "%s: upgrade of %s seen but its code could not be fetched: %s",
                    chain,
                    l1_address,
                    e,
                )
                continue
            info.version = max(version, 0)
            self._remember(addr, info)
            self.failures.pop(addr, None)
            self.metrics.l1_reloads.labels(chain).inc()
            log.info("%s: contract 0x%s upgraded (version %d); new code applies at the next block",
                     chain, addr.hex(), version)
            self.schedule_writes({keys.code_key(addr): code if code else None})

    # -- status ---------------------------------------------------------------------------
    def heads(self) -> dict[str, dict[str, object] | None]:
        out: dict[str, dict[str, object] | None] = {}
        for name, a in self.adapters.items():
            h = a.head
            out[name] = None if h is None else {
                "number": h.number, "hash": h.hash, "timestampMs": h.timestamp_ms,
            }
        return out

    def status(self) -> dict[str, Any]:
        return {
            "chains": {name: a.status() for name, a in self.adapters.items()},
            "loadedContracts": {"0x" + k.hex(): v.as_dict() for k, v in self.loaded.items()},
            "suiModules": {"0x" + k.hex(): f"{p}::{m}" for k, (p, m) in self.sui_modules.items()},
            "recentEvents": list(self.events)[-20:],
        }

    def refresh_metrics(self) -> None:
        for name, a in self.adapters.items():
            for ep in a.health():
                score = float(ep["score"])  # type: ignore[arg-type]
                self.metrics.l1_endpoint_score.labels(name, str(ep["rpc_url"])).set(score)


class L1AwareResolver:
    """The VM's code resolver: the loader, plus a clear reason for targets that could not be
    loaded from an L1 (``failures`` is replaced, never mutated, by the node before each block)."""

    def __init__(self, load: Resolver) -> None:
        self.load = load
        self.failures: dict[bytes, str] = {}

    def __call__(self, address: bytes, state: StateReader) -> Program | None:
        program = self.load(address, state)
        if program is None:
            reason = self.failures.get(address)
            if reason is not None:
                raise CodeUnavailable(reason)
        return program
