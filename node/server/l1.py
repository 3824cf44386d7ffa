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
fetched concurrently and written into state as system writes at the start of that block. Two
budgets (``[adapters.*]``): a fetch has ``fetch_timeout_ms`` in all, and that one budget is the
adapter's too (its attempts, hedged requests and retries all fit in it, so a black-holed endpoint
is abandoned and scored instead of outliving the loader's patience); a block waits at most
``block_wait_ms`` (capped at half the block time) for fetches. A fetch still running then goes on
in the background: transactions to it in this block revert naming why ("still loading"), and its
code is queued for the next block when it arrives. A target that cannot be fetched is remembered
for ``failure_ttl_s``; transactions to it revert with a receipt naming why
(:class:`CodeUnavailable`), so a block never waits on a dead L1. Code upgrade events (and code in
reorged-away blocks: the newest version still on the L1) re-fetch the contract and replace it at
the next block: hot reload without a restart; reloads of one contract apply in the order their
events came.

Failover and recovery of each chain's endpoints (which endpoint serves HTTP and the WebSocket) are
kept as events (``dubhe_status.l1.transitions``) and counted in ``/metrics``
(``dubhe_l1_endpoint_transitions_total``).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import Counter, Gauge

from node.adapters import (
    AdapterError,
    BackoffPolicy,
    BudgetExceeded,
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
from node.config import Config, EthereumAdapterConfig, SuiAdapterConfig
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
        failure_ttl_s: float = 5.0,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.schedule_writes = schedule_writes
        self.resolver = resolver
        self.failure_ttl_s = failure_ttl_s
        self.adapters: dict[str, ChainAdapter] = {}
        #: Per chain: a code fetch's whole budget, and the longest a block waits for fetches.
        self.fetch_timeout_s: dict[str, float] = {}
        self.block_wait_s: dict[str, float] = {}
        cap = cfg.node.block_time_ms / 2000
        e, s = cfg.adapters.ethereum, cfg.adapters.sui
        if e is not None:
            self.adapters["ethereum"] = EthereumAdapter(
                endpoint_list(e.rpc_url, e.ws_url, e.endpoints),
                chain_id=e.chain_id,
                **_common(e),
            )
        self.sui_packages: list[str] = []
        if s is not None:
            self.sui_packages = [normalize_id(p) for p in s.package_ids]
            self.adapters["sui"] = SuiAdapter(
                endpoint_list(s.rpc_url, s.ws_url, s.endpoints),
                network_type=s.network_type,
                package_ids=s.package_ids,
                protocol=s.protocol,
                **_common(s),
            )
        for name, c in (("ethereum", e), ("sui", s)):
            if c is not None:
                self.fetch_timeout_s[name] = c.fetch_timeout_ms / 1000
                self.block_wait_s[name] = min(c.block_wait_ms / 1000, cap)
                if c.block_wait_ms / 1000 > cap:
                    log.info("%s: block_wait_ms %d capped at half the block time (%d ms)", name,
                             c.block_wait_ms, int(cap * 1000))
        self.transitions: collections.deque[dict[str, Any]] = collections.deque(maxlen=100)
        self._m_transitions = Counter(
            "dubhe_l1_endpoint_transitions",
            "L1 endpoint failovers (away from the preferred endpoint) and recoveries (back to it)",
            ["chain", "transport", "kind"],
            registry=metrics.registry,
        )
        self._m_latency = Gauge(
            "dubhe_l1_endpoint_latency_ms",
            "Smoothed request time of an L1 endpoint (failed and abandoned requests included)",
            ["chain", "endpoint"],
            registry=metrics.registry,
        )
        self._m_requests = Gauge(
            "dubhe_l1_endpoint_requests",
            "Requests to an L1 endpoint by outcome (successes, failures, abandoned, hedged)",
            ["chain", "endpoint", "outcome"],
            registry=metrics.registry,
        )
        self._m_serving = Gauge(
            "dubhe_l1_endpoint_serving",
            "1 for the endpoint serving a chain's transport (http, ws)",
            ["chain", "transport", "endpoint"],
            registry=metrics.registry,
        )
        self._m_block_wait = Counter(
            "dubhe_l1_block_wait_exceeded",
            "Blocks that went on without a code fetch still running after block_wait_ms",
            ["chain"],
            registry=metrics.registry,
        )
        for a in self.adapters.values():
            a.transition_listeners.append(self._on_transition)
        self._inflight: dict[bytes, _Fetch] = {}
        self._reload_gen: dict[bytes, int] = {}
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
        L1s within the block-wait budget; then the resolver learns the current failures (and
        the fetches still running) for this block's execution."""
        missing = set()
        for to in {e.tx.to for e in entries}:
            ck = keys.code_key(to)
            if ck not in queued and self.store.get(ck) is None:
                missing.add(to)
        writes, loading = await self._fetch_within_budget(missing) if missing else ({}, {})
        if self.resolver is not None:
            self.resolver.failures = {**self.failure_snapshot(), **loading}
        return writes

    async def fetch_missing(self, addresses: set[bytes]) -> dict[bytes, bytes | None]:
        """Fetch the code of ``addresses`` (none of which has code in state), waiting for every
        fetch (each within its chain's fetch budget); returns the state writes to apply.
        Failures are remembered (see :meth:`failure`)."""
        tasks = self._start_fetches(addresses)
        if tasks:
            await asyncio.wait(tasks.values())
        return self._collect(tasks)

    async def _fetch_within_budget(
        self, addresses: set[bytes]
    ) -> tuple[dict[bytes, bytes | None], dict[bytes, str]]:
        """Like :meth:`fetch_missing` but waiting at most the block-wait budget: the writes of
        the fetches done, and a revert reason for each target still loading (its fetch goes on;
        its code is queued for a later block when it arrives)."""
        tasks = self._start_fetches(addresses)
        if not tasks:
            return {}, {}
        chains = {self._chain_of(a) for a in tasks}
        wait = max((self.block_wait_s.get(c or "", 0.0) for c in chains), default=0.0)
        _, slow = await asyncio.wait(tasks.values(), timeout=wait)
        loading: dict[bytes, str] = {}
        for a, t in list(tasks.items()):
            if t in slow:
                chain = self._chain_of(a) or "?"
                self._m_block_wait.labels(chain).inc()
                loading[a] = (f"still loading from {chain}: not ready within the "
                              f"{wait * 1000:.0f} ms block budget; it applies from a later block")
                t.add_done_callback(functools.partial(self._arrived_late, a))
                del tasks[a]
        return self._collect(tasks), loading

    def _start_fetches(
        self, addresses: set[bytes]
    ) -> dict[bytes, _Fetch]:
        tasks = {}
        for a in addresses:
            if self.failure(a) is not None:
                continue
            t = self._inflight.get(a)
            if t is None:
                t = asyncio.get_running_loop().create_task(self._fetch_one(a))
                self._inflight[a] = t
                t.add_done_callback(functools.partial(self._forget_fetch, a))
            tasks[a] = t
        return tasks

    def _collect(
        self, tasks: Mapping[bytes, _Fetch]
    ) -> dict[bytes, bytes | None]:
        writes: dict[bytes, bytes | None] = {}
        for a, t in tasks.items():
            code, info, err = t.result()
            if code is not None and info is not None:
                writes[keys.code_key(a)] = code
                self._remember(a, info)
            elif err is not None:
                self.failures[a] = (time.monotonic() + self.failure_ttl_s, err)
        return writes

    def _forget_fetch(self, address: bytes, t: _Fetch) -> None:
        if self._inflight.get(address) is t:
            del self._inflight[address]

    def _arrived_late(
        self, address: bytes, t: _Fetch
    ) -> None:
        """A fetch that outlived the block-wait budget finished: queue its code for the next
        block (or remember the failure)."""
        if t.cancelled():
            return
        code, info, err = t.result()
        if code is not None and info is not None:
            if address not in self.loaded or self.store.get(keys.code_key(address)) is None:
                self._remember(address, info)
                self.schedule_writes({keys.code_key(address): code})
                log.info("contract 0x%s loaded late; its code applies at the next block",
                         address.hex())
        elif err is not None:
            self.failures[address] = (time.monotonic() + self.failure_ttl_s, err)

    def _chain_of(self, address: bytes) -> str | None:
        if address in self.sui_modules:
            return "sui"
        return "ethereum" if "ethereum" in self.adapters else None

    async def _fetch_one(self, address: bytes) -> tuple[bytes | None, Loaded | None, str | None]:
        chain = self._chain_of(address)
        if chain is None:
            return None, None, None  # not an L1 contract: the VM reverts with "no contract"
        budget = self.fetch_timeout_s[chain]
        try:
            # the adapter keeps to the budget itself (and scores what it abandons); the outer
            # bound only guards against a bug there
            async with asyncio.timeout(budget + 1.0):
                code, info = await self._code(chain, address, timeout_s=budget)
        except BudgetExceeded as e:
            why = f": {e.last}" if e.last is not None else ""
            err = f"could not be loaded from {chain}: no answer within {budget:g} s{why}"
        except TimeoutError:
            err = f"could not be loaded from {chain}: timed out after {budget:g} s"
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
        self, chain: str, address: bytes, location: str | None = None,
        timeout_s: float | None = None,
    ) -> tuple[bytes, Loaded]:
        a = self.adapters[chain]
        if timeout_s is None:
            timeout_s = self.fetch_timeout_s[chain]
        if isinstance(a, EthereumAdapter):
            code = await a.get_code(address, timeout_s=timeout_s)
            return code, Loaded(chain, "0x" + address.hex(), 0, "0x" + sha3(code).hex())
        assert isinstance(a, SuiAdapter)
        original, module = self.sui_modules[address]
        location = location or a.current_package(original)
        mods = await a.get_package_modules(location, timeout_s=timeout_s)
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
                # the newest version still on the chain (Ethereum: the code at "latest")
                self._spawn(self._reload(ev.chain, loc, None, -1, ""))

    def _on_transition(self, ev: dict[str, Any]) -> None:
        self.transitions.append(ev)
        self._m_transitions.labels(ev["chain"], ev["transport"], ev["kind"]).inc()

    async def _reload(
        self, chain: str, l1_address: str, location: str | None, version: int, code_hash: str
    ) -> None:
        """Re-fetch an upgraded (or reorged) contract the node has loaded, and replace it at the
        next block. Reloads of one contract apply in the order their events came: a reload
        overtaken by a newer one is dropped."""
        targets = self._reload_targets(chain, l1_address)
        gens = {}
        for addr in targets:
            gens[addr] = self._reload_gen.get(addr, 0) + 1
            self._reload_gen[addr] = gens[addr]
        await self._reload_targets_now(chain, l1_address, location, version, gens)

    def _reload_targets(self, chain: str, l1_address: str) -> list[bytes]:
        targets: list[bytes] = []
        if chain == "ethereum":
            try:
                addr = bytes.fromhex(l1_address.removeprefix("0x"))
            except ValueError:
                return []
            if addr in self.loaded:
                targets = [addr]
        else:
            targets = [
                a
                for a, (orig, _) in self.sui_modules.items()
                if orig == l1_address and a in self.loaded
            ]
        return targets

    async def _reload_targets_now(self, chain: str, l1_address: str, location: str | None,
                                  version: int, gens: dict[bytes, int]) -> None:
        for addr, gen in gens.items():
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
            if self._reload_gen.get(addr) != gen:
                continue  # a newer event's reload owns this contract now
            prev = self.loaded.get(addr)
            info.version = version if version >= 0 else (prev.version if prev else 0)
            sui = self.adapters[chain]
            if version < 0 and isinstance(sui, SuiAdapter):
                info.version = sui.current_version(l1_address)
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
            "transitions": list(self.transitions)[-20:],
            "budgets": {
                name: {"fetchTimeoutMs": round(self.fetch_timeout_s[name] * 1000),
                       "blockWaitMs": round(self.block_wait_s[name] * 1000)}
                for name in self.adapters
            },
        }

    def refresh_metrics(self) -> None:
        for name, a in self.adapters.items():
            serving = a.health_book.serving
            for i, ep in enumerate(a.health()):
                url = str(ep["rpc_url"])
                score = float(ep["score"])  # type: ignore[arg-type]
                self.metrics.l1_endpoint_score.labels(name, url).set(score)
                self._m_latency.labels(name, url).set(float(ep["latency_ms"]))  # type: ignore[arg-type]
                for outcome in ("successes", "failures", "abandoned", "hedged"):
                    self._m_requests.labels(name, url, outcome).set(int(ep[outcome]))  # type: ignore[call-overload]
                for transport in ("http", "ws"):
                    on = int(serving.get(transport, -1) == i)
                    self._m_serving.labels(name, transport, url).set(on)


def _common(c: EthereumAdapterConfig | SuiAdapterConfig) -> dict[str, Any]:
    """Adapter keywords shared by both chains' config sections."""
    return {
        "backoff": BackoffPolicy.from_ms(c.backoff.initial_ms, c.backoff.max_ms, c.backoff.factor),
        "request_timeout_s": c.backoff.request_timeout_ms / 1000,
        "hedge": c.hedge,
        "hedge_min_s": c.hedge_min_ms / 1000,
        "hedge_max_s": max(c.hedge_min_ms, c.hedge_max_ms) / 1000,
    }


_Fetch = asyncio.Task[tuple[bytes | None, Loaded | None, str | None]]


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
