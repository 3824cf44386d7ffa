"""Warm instance pools: one per (worker, code hash), bounded by ``max_instances`` per worker.

A worker is a thread (or the main thread of a worker process). Each worker gets its own
:class:`InstancePool` (thread-local, created lazily, and discarded after ``fork`` so a child never
touches its parent's unicorn engines), so no locks are taken on the hot path. A pool lives as
long as its thread: when the thread ends, its pool and its engines are released (short-lived
threads do not leak engines); its counters are kept in the totals. Within a pool, one
warm :class:`~node.vm.unicorn_backend.Instance` per code hash is kept; the least recently used
is closed when the pool would exceed ``max_instances``.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict

from node.vm.program import Program
from node.vm.unicorn_backend import Instance

# Bumped in a forked child, so pools notice a fork without an os.getpid() per call.
_fork_generation = 0


def _after_fork_in_child() -> None:
    global _fork_generation
    _fork_generation += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


class InstancePool:
    """Single-worker pool. Not thread-safe: use :class:`WorkerPools` to get the caller's pool."""

    def __init__(self, max_instances: int, meter: str) -> None:
        if max_instances < 1:
            raise ValueError("max_instances must be >= 1")
        self.max_instances = max_instances
        self.meter = meter
        self._warm: OrderedDict[bytes, Instance] = OrderedDict()
        #: [created, evicted]: a separate object, so totals can absorb it when the pool dies.
        self.counters = [0, 0]

    @property
    def created(self) -> int:
        return self.counters[0]

    @property
    def evicted(self) -> int:
        return self.counters[1]

    def acquire(self, program: Program) -> Instance:
        """The warm instance for ``program`` (created on first use; LRU-evicts beyond the bound)."""
        key = program.code_hash
        inst = self._warm.get(key)
        if inst is not None:  # same code hash: same code, whichever Program object it came from
            self._warm.move_to_end(key)
            return inst
        inst = Instance(program, self.meter)
        self.counters[0] += 1
        self._warm[key] = inst
        while len(self._warm) > self.max_instances:
            _, old = self._warm.popitem(last=False)
            old.close()
            self.counters[1] += 1
        return inst

    def __len__(self) -> int:
        return len(self._warm)

    def close(self) -> None:
        while self._warm:
            self._warm.popitem()[1].close()


class WorkerPools:
    """Hands each calling thread its own :class:`InstancePool`; safe to share across threads."""

    def __init__(self, max_instances: int, meter: str) -> None:
        self.max_instances = max_instances
        self.meter = meter
        self._local = threading.local()
        self._generation = _fork_generation
        self._lock = threading.Lock()
        # Weak: the thread-local slot holds the only strong reference, so a pool (and its
        # engines, closed by their finalizers) goes away with its thread.
        self._all: weakref.WeakSet[InstancePool] = weakref.WeakSet()
        self._retired = [0, 0]  # counters of pools whose threads have ended

    def _retire(self, counters: list[int]) -> None:
        with self._lock:
            self._retired[0] += counters[0]
            self._retired[1] += counters[1]

    def get(self) -> InstancePool:
        pool: InstancePool | None = getattr(self._local, "pool", None)
        if pool is None or self._generation != _fork_generation:
            if self._generation != _fork_generation:  # forked: the parent's engines are not ours
                self._local = threading.local()
                self._all = weakref.WeakSet()
                self._retired = [0, 0]
                self._lock = threading.Lock()
                self._generation = _fork_generation
            pool = InstancePool(self.max_instances, self.meter)
            # A weak reference back: the finalizer must not keep this object alive.
            weakref.finalize(pool, _retire, weakref.ref(self), pool.counters)
            self._local.pool = pool
            with self._lock:
                self._all.add(pool)
        return pool

    def stats(self) -> dict[str, int]:
        with self._lock:
            pools = list(self._all)
            retired = list(self._retired)
        return {
            "workers": len(pools),
            "instances": sum(len(p) for p in pools),
            "created": retired[0] + sum(p.created for p in pools),
            "evicted": retired[1] + sum(p.evicted for p in pools),
        }

    def close(self) -> None:
        """Close every pool's instances (call when no worker is running)."""
        with self._lock:
            pools = list(self._all)
        for p in pools:
            p.close()


def _retire(owner: weakref.ref[WorkerPools], counters: list[int]) -> None:
    pools = owner()
    if pools is not None:
        pools._retire(counters)
