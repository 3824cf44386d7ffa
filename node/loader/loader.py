"""The loader: contract code in, prepared :class:`~node.vm.program.Program` out, cached.

``Loader.load(address, state)`` is the VM's resolver: it reads ``keys.code_key(address)`` from the
given :class:`~node.core.execution.StateReader` and returns the prepared program, cached three
ways:

1. per address: the last code bytes seen and their program (a hit costs one ``state.get`` and a
   bytes comparison, no hashing). When the code at an address changes (an upgrade), the
   comparison fails and the new code is loaded: hot reload without a restart;
2. an in-memory LRU by code hash, bounded by count and bytes (``Program.footprint``);
3. a persistent :class:`~node.loader.store.CodeCacheStore` by code hash, so a restarted node does
   not re-verify (entries are checksummed and re-verified if corrupt or from another ABI).

Only on a miss in all three is the ELF verified and prepared (:func:`node.vm.elf.prepare`).
Code that fails verification is remembered by hash (not retried) and raised as
:class:`CodeRejected`, which the VM turns into a REVERT naming the problem.

Thread-safe: one Loader may serve every worker thread (a lock guards the caches; verification
runs outside it). For worker processes, give each process its own Loader over the same store.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass

from node.core import keys
from node.core.codec import DecodeError, sha3
from node.core.errors import InvalidParams
from node.core.execution import StateReader
from node.loader.lru import ProgramLRU
from node.loader.store import CodeCacheStore, cache_key
from node.vm.elf import ElfRejected, prepare
from node.vm.program import Program

log = logging.getLogger(__name__)

DEFAULT_MAX_PROGRAMS = 256
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_MAX_REJECTED = 1024


class CodeRejected(InvalidParams, ElfRejected):
    """Contract code failed verification; the message names what is wrong with the ELF.

    An :class:`~node.core.errors.InvalidParams` (JSON-RPC -32602) for the deploy method, and an
    :class:`~node.vm.elf.ElfRejected` for the VM (which reverts the transaction with it)."""

    def __init__(self, message: str) -> None:
        InvalidParams.__init__(self, f"contract code rejected: {message}")


@dataclass(slots=True)
class LoaderStats:
    """Counters for metrics. ``hits`` = served from memory (address or LRU), ``misses`` = not in
    memory; of the misses, ``persistent_hits`` came from the store and ``prepares`` were
    verified and prepared from the ELF."""

    hits: int = 0
    misses: int = 0
    persistent_hits: int = 0
    prepares: int = 0
    rejections: int = 0
    evictions: int = 0
    programs: int = 0
    bytes: int = 0

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def as_dict(self) -> dict[str, float]:
        d: dict[str, float] = dict(asdict(self))
        d["hit_ratio"] = round(self.hit_ratio, 4)
        return d


class Loader:
    """Verifies, prepares and caches contract code. See the module docstring."""

    def __init__(
        self,
        store: CodeCacheStore | None = None,
        *,
        max_programs: int = DEFAULT_MAX_PROGRAMS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        """``store`` persists prepared programs across restarts (``None``: memory only);
        ``max_programs`` / ``max_bytes`` bound the in-memory LRU."""
        self.store = store
        self._lru = ProgramLRU(max_programs, max_bytes)
        self._by_addr: dict[bytes, tuple[bytes, Program]] = {}
        self._rejected: dict[bytes, str] = {}
        self._lock = threading.Lock()
        self._stats = LoaderStats()

    # -- the VM resolver ----------------------------------------------------------------------
    def load(self, address: bytes, state: StateReader) -> Program | None:
        """The prepared program of the contract at ``address`` in ``state``, or ``None`` if there
        is no code. Raises :class:`CodeRejected` if the stored code does not verify."""
        code = state.get(keys.code_key(address))
        if code is None:
            return None
        entry = self._by_addr.get(address)
        if entry is not None and (entry[0] is code or entry[0] == code):
            with self._lock:
                self._stats.hits += 1
                self._lru.get(entry[1].code_hash)  # refresh recency
            return entry[1]
        program = self._program_for(code)
        with self._lock:
            if program.code_hash in self._lru:  # not evicted meanwhile: remember per address
                self._by_addr[address] = (code, program)
        return program

    __call__ = load

    # -- deploys ------------------------------------------------------------------------------
    def deploy_check(self, code: bytes) -> Program:
        """Verify ``code`` for a deploy and cache the prepared program (so the first call after
        the deploy is a hit). Raises :class:`CodeRejected` naming the problem."""
        return self._program_for(code)

    def invalidate(self, address: bytes | None = None) -> None:
        """Forget the per-address entry (``None``: all). Loads notice changed code by
        themselves; call this after a deploy to drop the old code's reference early."""
        with self._lock:
            if address is None:
                self._by_addr.clear()
            else:
                self._by_addr.pop(address, None)

    def stats(self) -> LoaderStats:
        with self._lock:
            s = LoaderStats(**asdict(self._stats))
            s.evictions = self._lru.evictions
            s.programs = len(self._lru)
            s.bytes = self._lru.bytes
        return s

    # -- internals ----------------------------------------------------------------------------
    def _program_for(self, code: bytes) -> Program:
        h = sha3(code)
        with self._lock:
            program = self._lru.get(h)
            if program is not None:
                self._stats.hits += 1
                return program
            reason = self._rejected.get(h)
            self._stats.misses += 1
        if reason is not None:
            raise CodeRejected(reason)
        program = self._from_store(h)
        if program is None:
            try:
                program = prepare(code)
            except ElfRejected as e:
                with self._lock:
                    self._stats.rejections += 1
                    if len(self._rejected) >= _MAX_REJECTED:
                        self._rejected.pop(next(iter(self._rejected)))
                    self._rejected[h] = str(e)
                raise CodeRejected(str(e)) from None
            with self._lock:
                self._stats.prepares += 1
            self._to_store(program)
        else:
            with self._lock:
                self._stats.persistent_hits += 1
        with self._lock:
            for old in self._lru.put(program):
                self._drop_addresses(old)
        return program

    def _drop_addresses(self, code_hash: bytes) -> None:
        for addr in [a for a, (_, p) in self._by_addr.items() if p.code_hash == code_hash]:
            del self._by_addr[addr]

    def _from_store(self, code_hash: bytes) -> Program | None:
        if self.store is None:
            return None
        raw = self.store.get(cache_key(code_hash))
        if raw is None:
            return None
        try:
            return Program.decode(raw, code_hash)
        except (DecodeError, ValueError) as e:
            log.warning("compile cache entry 0x%s unusable (%s); re-verifying", code_hash.hex(), e)
            return None

    def _to_store(self, program: Program) -> None:
        if self.store is None:
            return
        try:
            self.store.put(cache_key(program.code_hash), program.encode())
        except Exception as e:  # a lost cache entry only costs a re-verification later
            log.warning("compile cache put failed for 0x%s: %s", program.code_hash.hex(), e)
