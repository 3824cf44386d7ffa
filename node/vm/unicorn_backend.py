"""The unicorn (QEMU TCG) backend: the ONLY module of the node that imports unicorn.

An :class:`Instance` is one RV64 CPU with one :class:`~node.vm.program.Program` mapped, its hooks
installed and a pristine register context saved. :meth:`Instance.run` resets it (registers,
stack, writable data, syscall page, input region) and calls one exported method, so an instance
can be reused for any number of calls with results identical to a fresh one. All guest memory is
host-owned ctypes buffers mapped with ``mem_map_ptr`` at exact permissions, so the syscall path
reads and writes guest memory through bounds-checked ``memoryview`` slices without unicorn calls.

Relied-on unicorn behaviours (checked by :func:`self_test` at startup; see docs/vm-abi.md §8):
in the INTR hook the pc is already past the ``ecall`` (intno 8), illegal instructions arrive as
intno 2, hooks must be installed before the first ``emu_start`` (translation blocks bake
instrumentation in), ``emu_start`` with ``count=0`` only (a ``count>0`` run after a ``count=0``
one is not limited: https://github.com/unicorn-engine/unicorn/issues/293), writes to read-only
pages fault, misaligned loads/stores work, ``uc_emu_stop`` from the block hook ends the run at
the exit block (so the ``until`` block, which unicorn re-translates per call, is never reached).

Thread-safety: an :class:`Instance` is single-threaded (one call at a time). Different instances
may run concurrently in different threads (``uc_emu_start`` releases the GIL; the syscall hook
takes it back). Instances are per process: never share one across ``fork``.
"""

from __future__ import annotations

import ctypes
import weakref
from dataclasses import dataclass
from typing import Any

import unicorn as _unicorn_module
from unicorn import riscv_const as rv
from unicorn.unicorn_py3.unicorn import uclib

from node.core.access import UndeclaredAccess
from node.core.execution import TxStatus
from node.vm import abi, gasmeter, syscalls
from node.vm.program import PERM_R, PERM_W, PERM_X, Program

#: 1 MiB translation buffer (default is 1 GiB virtual, ~3 MiB RSS per instance); a full buffer
#: flushes translated code, which costs time but never changes results.
TCG_BUFFER_BYTES = 1 << 20

#: The binding's own annotations are partial (untyped calls); use it through ``Any``.
unicorn: Any = _unicorn_module

_HOOK_INTR_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
_UC_ERR_OK = 0
_INTNO_ECALL = 8
_INTNO_ILLEGAL = 2
_STACK_TOP = abi.STACK_BASE + abi.STACK_SIZE
_EMU_STOP_ADDR = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
_MASK64 = (1 << 64) - 1
_SYSBLOCK_UNPACK = abi.SYSBLOCK.unpack_from
_RET_PACK_INTO = abi.RET.pack_into
_ENTRY_PACK_INTO = abi.ENTRY_AND_CONTEXT.pack_into
# Indexed by syscall number (0 unused) so the hot path does no dict lookups.
_COSTS = tuple(abi.SYSCALL_GAS.get(n, abi.GAS_SYSCALL) for n in range(abi.MAX_SYSCALL + 1))
_HANDLERS = tuple(syscalls.HANDLERS.get(n) for n in range(abi.MAX_SYSCALL + 1))
_SYS_EMIT_EVENT = abi.SYS_EMIT_EVENT


def _uc_perms(p: int) -> int:
    return (
        (unicorn.UC_PROT_READ if p & PERM_R else 0)
        | (unicorn.UC_PROT_WRITE if p & PERM_W else 0)
        | (unicorn.UC_PROT_EXEC if p & PERM_X else 0)
    )


class _Memory:
    """Bounds-checked guest memory over the host buffers (implements ``syscalls.GuestMemory``).

    ``regions`` is (lo, hi, view, writable); a pointer range must fall inside one region, else
    the call FAULTs: the host never reads or writes outside its own buffers.
    """

    __slots__ = ("gas", "log_view", "out", "regions", "ret_view", "wlog_view")

    def __init__(self, gas: gasmeter.GasState) -> None:
        self.regions: list[tuple[int, int, memoryview, bool]] = []
        self.out = self.ret_view = self.log_view = self.wlog_view = memoryview(b"")
        self.gas = gas

    def charge(self, cost: int) -> None:
        g = self.gas
        left = g.left - cost
        g.left = left
        if left < 0:
            g.out_of_gas = 1
            raise syscalls.Stop(TxStatus.OUT_OF_GAS, "out of gas")

    def read(self, ptr: int, n: int) -> bytes:
        if n == 0:
            return b""
        end = ptr + n
        for lo, hi, view, _w in self.regions:
            if lo <= ptr and end <= hi:
                return view[ptr - lo : end - lo].tobytes()
        raise syscalls.fault(f"bad pointer: read of {n} bytes at 0x{ptr:x} outside mapped memory")

    def write(self, ptr: int, data: bytes, cap: int) -> None:
        if cap == 0:
            return
        view, off = self.writable(ptr, cap)
        view[off : off + len(data)] = data

    def writable(self, ptr: int, cap: int) -> tuple[memoryview, int]:
        end = ptr + cap
        for lo, hi, view, w in self.regions:
            if lo <= ptr and end <= hi:
                if not w:
                    raise syscalls.fault(
                        f"bad pointer: write of {cap} bytes at 0x{ptr:x} to read-only memory"
                    )
                return view, ptr - lo
        raise syscalls.fault(
            f"bad pointer: write of {cap} bytes at 0x{ptr:x} outside mapped memory"
        )


@dataclass(slots=True)
class RunResult:
    """What one call did. ``status`` SUCCESS means the method returned (or exit(0))."""

    status: TxStatus
    gas_left: int  # may be negative after out-of-gas
    insns: int
    reason: str = ""


class _Buffer:
    """A host-owned, page-aligned region mapped into the guest."""

    __slots__ = ("addr", "buf", "size", "view")

    def __init__(self, size: int) -> None:
        # ctypes arrays are zeroed and only 16-aligned: over-allocate and align to a page.
        self.buf = (ctypes.c_ubyte * (size + abi.PAGE))()
        base = ctypes.addressof(self.buf)
        self.addr = (base + abi.PAGE - 1) & ~(abi.PAGE - 1)
        self.size = size
        self.view = memoryview((ctypes.c_ubyte * size).from_address(self.addr)).cast("B")


class Instance:
    """One unicorn CPU with ``program`` mapped. Not thread-safe; reuse via :meth:`run`."""

    def __init__(
        self,
        program: Program,
        meter: str = "native",
        *,
        tcg_buffer_bytes: int | None = TCG_BUFFER_BYTES,
    ) -> None:
        """``meter`` is ``"native"`` or ``"python"`` (see :mod:`node.vm.gasmeter`);
        ``tcg_buffer_bytes=None`` keeps unicorn's default (1 GiB virtual; benchmarks only)."""
        self.program = program
        uc = unicorn.Uc(unicorn.UC_ARCH_RISCV, unicorn.UC_MODE_RISCV64)
        if tcg_buffer_bytes is not None:
            uc.ctl_set_tcg_buffer_size(tcg_buffer_bytes)  # must precede the first map (lazy init)
        # The default CPU TLB is kept on purpose. UC_TLB_VIRTUAL makes pure store streams fast
        # (3 ns vs 37 ns per store) but every switch between loading and storing on one page
        # refills the TLB entry (~60 ns, with a cpu_restore_state each): memory-mixing code ran
        # 4x slower (hash_memory 41 vs 172 M insn/s), transfers ~10% faster.
        self._uc = uc
        self._uch = uc._uch
        self.gas = gasmeter.new_gas_state()
        self._mem = _Memory(self.gas)
        self._buffers: list[_Buffer] = []

        self._map(abi.STUB_BASE, abi.PAGE, PERM_R | PERM_X, abi.STUB_CODE)
        self._map(abi.EXIT_ADDR, abi.PAGE, PERM_R | PERM_X, abi.EXIT_CODE)
        self._map(abi.UNTIL_ADDR, abi.PAGE, PERM_R | PERM_X)
        # Read-only segments get their own buffers; every writable area (syscall page, stack,
        # RW segments) lives in one host "arena" so the per-call reset is a single memmove
        # from a pristine template.
        zeroed = [
            (abi.SYS_BASE, abi.SYS_SIZE),
            (abi.RET_BASE, abi.RET_SIZE),
            (abi.EVENT_BASE, abi.EVENT_SIZE),
            (abi.WLOG_BASE, abi.WLOG_SIZE),
            (abi.STACK_BASE, abi.STACK_SIZE),
        ]
        writable: list[tuple[int, int, bytes]] = [(addr, size, b"") for addr, size in zeroed]
        for seg in program.segments:
            if seg.writable:
                writable.append((seg.vaddr, seg.size, seg.image))
            else:
                self._map(seg.vaddr, seg.size, seg.perms, seg.image)
        arena = _Buffer(sum(size for _, size, _ in writable))
        template = bytearray()
        off = 0
        offsets: dict[int, int] = {}
        for addr, size, image in writable:
            if image:
                template += image
            self._map_into(arena, off, addr, size, PERM_R | PERM_W)
            offsets[addr] = off
            off += size
        self._buffers.append(arena)
        # Reset = zero the syscall page, output area and stack (one write-only memset over the
        # first areas) and copy the pristine RW segments after them (a copy reads and writes).
        self._zero_addr = arena.addr
        self._zero_size = sum(size for _, size in zeroed)
        self._rw_addr = arena.addr + self._zero_size
        self._template = bytes(template)
        self._rw_size = len(self._template)
        self._sys_view = arena.view[offsets[abi.SYS_BASE] : offsets[abi.SYS_BASE] + abi.SYS_SIZE]
        self._mem.out = self._sys_view
        self._mem.ret_view = arena.view[
            offsets[abi.RET_BASE] : offsets[abi.RET_BASE] + abi.RET_SIZE
        ]
        self._mem.log_view = arena.view[
            offsets[abi.EVENT_BASE] : offsets[abi.EVENT_BASE] + abi.EVENT_SIZE
        ]
        self._mem.wlog_view = arena.view[
            offsets[abi.WLOG_BASE] : offsets[abi.WLOG_BASE] + abi.WLOG_SIZE
        ]
        self._input = self._map(abi.INPUT_BASE, abi.INPUT_SIZE, PERM_R)
        # Syscall pointers mostly target the stack and input: check those first.
        self._mem.regions.sort(key=lambda r: (r[0] != abi.STACK_BASE, r[0] != abi.INPUT_BASE, r[0]))
        self._input_dirty = 0

        # Hooks: all installed before the first emu_start (translated blocks bake them in).
        self.gas.stop = _EMU_STOP_ADDR
        self.gas.exit_addr = abi.EXIT_ADDR
        handle = ctypes.c_size_t()
        if meter == "native":
            fn = gasmeter.native_hook()
            self._gas_cb: Any = None
        else:
            self._gas_cb = gasmeter.python_hook(uclib.uc_emu_stop)
            fn = gasmeter.function_address(self._gas_cb)
        self._check(
            uclib.uc_hook_add(
                self._uch, ctypes.byref(handle), unicorn.UC_HOOK_BLOCK, ctypes.c_void_p(fn),
                ctypes.c_void_p(ctypes.addressof(self.gas)), ctypes.c_uint64(1), ctypes.c_uint64(0),
            ),
            "hook_add(block)",
        )
        self._intr_cb: Any = _HOOK_INTR_CFUNC(self._on_intr)
        self._check(
            uclib.uc_hook_add(
                self._uch,
                ctypes.byref(handle),
                unicorn.UC_HOOK_INTR,
                ctypes.cast(self._intr_cb, ctypes.c_void_p),
                None,
                ctypes.c_uint64(1),
                ctypes.c_uint64(0),
            ),
            "hook_add(intr)",
        )
        self._ctx0 = uc.context_save()
        # Close the engine before the host buffers it maps are freed (mem_map_ptr rule).
        self._finalizer = weakref.finalize(self, _release, uc, self._buffers)
        self._ctx0_handle = self._ctx0.context
        self._pc = ctypes.c_uint64()
        # Per-call state read by the hook.
        self._env: syscalls.CallEnv | None = None
        self._stop: syscalls.Stop | None = None
        self._host_error: BaseException | None = None
        self.calls = 0

    # -- construction helpers ---------------------------------------------------------------
    @staticmethod
    def _check(err: int, what: str) -> None:
        if err != _UC_ERR_OK:
            raise unicorn.UcError(err)

    def _map(self, addr: int, size: int, perms: int, init: bytes = b"") -> _Buffer:
        b = _Buffer(size)
        if init:
            b.view[: len(init)] = init
        self._check(
            uclib.uc_mem_map_ptr(self._uch, addr, size, _uc_perms(perms), b.addr), f"map 0x{addr:x}"
        )
        self._buffers.append(b)
        self._mem.regions.append((addr, addr + size, b.view, bool(perms & PERM_W)))
        return b

    def _map_into(self, b: _Buffer, off: int, addr: int, size: int, perms: int) -> None:
        self._check(
            uclib.uc_mem_map_ptr(self._uch, addr, size, _uc_perms(perms), b.addr + off),
            f"map 0x{addr:x}",
        )
        self._mem.regions.append(
            (addr, addr + size, b.view[off : off + size], bool(perms & PERM_W))
        )

    # -- the syscall hook -------------------------------------------------------------------
    def _on_intr(self, uch: int, intno: int, _ud: int) -> None:
        # A raw CFUNCTYPE callback: exceptions must not escape (ctypes would print and ignore
        # them and emulation would continue), so every path ends in a recorded stop. This is
        # the hot path of every syscall: keep lookups local.
        try:
            gas = self.gas
            if gas.out_of_gas:  # the block that ran out of gas may end in an ecall
                uclib.uc_emu_stop(uch)
                return
            if intno != _INTNO_ECALL:
                what = (
                    "illegal instruction" if intno == _INTNO_ILLEGAL else f"cpu exception {intno}"
                )
                raise syscalls.fault(f"{what} at pc 0x{self._read_pc() - 4:x}")
            view = self._sys_view
            nr, a0, a1, a2, a3 = _SYSBLOCK_UNPACK(view, 0)
            if not 0 < nr <= abi.MAX_SYSCALL:
                raise syscalls.fault(f"unknown syscall {nr}")
            cost = _COSTS[nr]
            if nr == _SYS_EMIT_EVENT:  # also pays for the log records it flushes
                cost += abi.GAS_EVENT * syscalls.pending_log_events(self._mem)
            left = gas.left - cost
            gas.left = left
            if left < 0:
                gas.out_of_gas = 1
                uclib.uc_emu_stop(uch)
                return
            ret = _HANDLERS[nr](self._mem, self._env, a0, a1, a2, a3)
            _RET_PACK_INTO(view, abi.SYS_RET_OFF, ret & _MASK64)
        except syscalls.Stop as s:
            self._stop = s
            uclib.uc_emu_stop(uch)
        except UndeclaredAccess as e:
            self._stop = syscalls.Stop(TxStatus.UNDECLARED_ACCESS, str(e))
            uclib.uc_emu_stop(uch)
        except BaseException as e:  # a host bug: stop, and re-raise after emu_start returns
            self._host_error = e
            uclib.uc_emu_stop(uch)

    def _read_pc(self) -> int:
        uclib.uc_reg_read(self._uch, rv.UC_RISCV_REG_PC, ctypes.byref(self._pc))
        return int(self._pc.value)

    # -- running ----------------------------------------------------------------------------
    def run(self, entry: int, env: syscalls.CallEnv, gas_limit: int) -> RunResult:
        """Reset the instance and call the method at ``entry`` with ``env.input`` as args, under
        ``gas_limit`` (instructions + syscall gas). Guest misbehaviour is a result, never an
        exception; a host bug inside a syscall is re-raised."""
        args = env.input
        n = len(args)
        if n > abi.INPUT_SIZE:
            return RunResult(
                TxStatus.REVERT, gas_limit, 0, f"args of {n} bytes exceed {abi.INPUT_SIZE}"
            )
        # RESET: registers; syscall page, stack and writable segments (one memmove); input tail.
        uclib.uc_context_restore(self._uch, self._ctx0_handle)
        ctypes.memset(self._zero_addr, 0, self._zero_size)
        if self._rw_size:
            ctypes.memmove(self._rw_addr, self._template, self._rw_size)
        inp = self._input.view
        inp[:n] = args
        if self._input_dirty > n:
            ctypes.memset(self._input.addr + n, 0, self._input_dirty - n)
        self._input_dirty = n
        ctx = env.ctx
        _ENTRY_PACK_INTO(
            self._sys_view, abi.ENTRY_OFF, entry, _STACK_TOP - 16, abi.INPUT_BASE, n,
            env.caller, env.address, ctx.number, ctx.timestamp_ms, ctx.chain_id,
        )
        gas = self.gas
        gas.left = gas_limit
        gas.insns = 0
        gas.out_of_gas = 0
        gas.exited = 0
        self._env = env
        self._stop = None
        self._host_error = None
        self.calls += 1
        # RUN: count=0 always (pitfall 6); the gas hook is the only bound on run time.
        err = uclib.uc_emu_start(self._uch, abi.STUB_BASE, abi.UNTIL_ADDR, 0, 0)
        self._env = None
        if self._host_error is not None:
            raise self._host_error
        stop = self._pending_stop()  # set by the hook during emu_start
        if gas.out_of_gas:
            status, reason = TxStatus.OUT_OF_GAS, "out of gas"
        elif stop is not None:
            status, reason = stop.status, stop.reason
        elif err != _UC_ERR_OK:
            status = TxStatus.FAULT
            reason = f"guest fault: {_uc_strerror(err)} at pc 0x{self._read_pc():x}"
        elif gas.exited:
            status, reason = TxStatus.SUCCESS, ""
        else:  # reached UNTIL_ADDR (a jump there): not a return
            status, reason = TxStatus.FAULT, f"emulation stopped at pc 0x{self._read_pc():x}"
        if status is not TxStatus.UNDECLARED_ACCESS:
            status, reason = self._settle(env, status, reason)
        return RunResult(status, gas.left, gas.insns, reason)

    def _settle(self, env: syscalls.CallEnv, status: TxStatus, reason: str) -> tuple[TxStatus, str]:
        """Apply what the guest logged without syscalls. Buffered writes happened before whatever
        ended the call, so their outcome (out of gas, undeclared key, malformed log) wins."""
        mem = self._mem
        try:
            syscalls.apply_write_log(mem, env, charge=status is not TxStatus.OUT_OF_GAS)
            if status is TxStatus.SUCCESS:
                mem.charge(abi.GAS_EVENT * syscalls.finish(mem, env))
            elif status is TxStatus.REVERT:
                mem.charge(abi.GAS_EVENT * syscalls.pending_log_events(mem))
        except syscalls.Stop as s:
            return s.status, s.reason
        except UndeclaredAccess as e:
            return TxStatus.UNDECLARED_ACCESS, str(e)
        return status, reason

    def _pending_stop(self) -> syscalls.Stop | None:
        return self._stop

    def close(self) -> None:
        """Release the unicorn engine now (idempotent). The instance is unusable afterwards."""
        self._finalizer()
        self._intr_cb = None
        self._gas_cb = None


def _release(uc: Any, buffers: list[_Buffer]) -> None:
    fin = getattr(uc, "_Uc__finalizer", None)  # the binding's uc_close, run at most once
    if fin is not None:
        fin()
    buffers.clear()


def _uc_strerror(err: int) -> str:
    raw: bytes = uclib.uc_strerror(err)
    return raw.decode("ascii", "replace")


# -- startup self-test ----------------------------------------------------------------------------

#: Hand-assembled RV64I probe (at CODE_LO): 0x00 addi a0,zero,41; 0x04 ecall; 0x08 addi a0,a0,1;
#: 0x0c ret; 0x10 csrrw zero,cycle,zero (illegal); 0x14 j 0x14 (infinite loop);
#: 0x18 lui t0,0x10; 0x1c sd a0,0(t0) (store into r-x code); 0x20 ret;
#: 0x24 lui t0,0x100; 0x28 sd a0,1(t0); 0x2c ld a1,1(t0) (misaligned); 0x30 ret.
_PROBE = bytes.fromhex(
    "13059002730000001305150067800000731000c06f000000b702010023b0a200"
    "67800000b7021000a3b0a20083b5120067800000"
)


class SelfTestFailed(RuntimeError):
    """A unicorn behaviour the runtime relies on has changed; the message names it."""


def self_test(meter: str = "native") -> dict[str, object]:
    """Check the unicorn behaviours the runtime depends on; raise :class:`SelfTestFailed` naming
    the first that changed. Call once at node startup (takes a few milliseconds). Returns facts
    (unicorn version, gas meter) for the startup log."""
    seen: list[tuple[int, int]] = []

    def probe_intr(uch: int, intno: int, _ud: int) -> None:
        pc = ctypes.c_uint64()
        uclib.uc_reg_read(uch, rv.UC_RISCV_REG_PC, ctypes.byref(pc))
        seen.append((intno, int(pc.value)))
        if intno != _INTNO_ECALL:
            uclib.uc_emu_stop(uch)

    def fresh() -> tuple[Any, gasmeter.GasState, list[object]]:
        uc = unicorn.Uc(unicorn.UC_ARCH_RISCV, unicorn.UC_MODE_RISCV64)
        uc.ctl_set_tcg_buffer_size(TCG_BUFFER_BYTES)
        code = _Buffer(abi.PAGE)
        code.view[: len(_PROBE)] = _PROBE
        uclib.uc_mem_map_ptr(uc._uch, abi.CODE_LO, abi.PAGE, _uc_perms(PERM_R | PERM_X), code.addr)
        uc.mem_map(abi.EXIT_ADDR, abi.PAGE, unicorn.UC_PROT_READ | unicorn.UC_PROT_EXEC)
        uc.mem_write(abi.EXIT_ADDR, abi.EXIT_CODE)
        uc.mem_map(abi.UNTIL_ADDR, abi.PAGE, unicorn.UC_PROT_READ | unicorn.UC_PROT_EXEC)
        uc.mem_map(abi.SYS_BASE, abi.PAGE, unicorn.UC_PROT_READ | unicorn.UC_PROT_WRITE)
        gas = gasmeter.GasState()
        gas.stop = _EMU_STOP_ADDR
        gas.exit_addr = abi.EXIT_ADDR
        gas.left = 1_000
        keep: list[object] = [code, gas]
        h = ctypes.c_size_t()
        if meter == "native":
            fn = gasmeter.native_hook()
        else:
            cb = gasmeter.python_hook(uclib.uc_emu_stop)
            keep.append(cb)
            fn = gasmeter.function_address(cb)
        uclib.uc_hook_add(
            uc._uch,
            ctypes.byref(h),
            unicorn.UC_HOOK_BLOCK,
            ctypes.c_void_p(fn),
            ctypes.c_void_p(ctypes.addressof(gas)),
            ctypes.c_uint64(1),
            ctypes.c_uint64(0),
        )
        icb = _HOOK_INTR_CFUNC(probe_intr)
        keep.append(icb)
        uclib.uc_hook_add(
            uc._uch,
            ctypes.byref(h),
            unicorn.UC_HOOK_INTR,
            ctypes.cast(icb, ctypes.c_void_p),
            None,
            ctypes.c_uint64(1),
            ctypes.c_uint64(0),
        )
        return uc, gas, keep

    def start(uc: Any, begin: int) -> int:
        uc.reg_write(rv.UC_RISCV_REG_RA, abi.EXIT_ADDR)
        return int(uclib.uc_emu_start(uc._uch, begin, abi.UNTIL_ADDR, 0, 0))

    def expect(cond: bool, what: str) -> None:
        if not cond:
            raise SelfTestFailed(f"unicorn {unicorn.__version__}: {what}")

    # 1. ecall: INTR hook with intno 8, pc already past the ecall, execution resumes after it.
    uc, gas, keep = fresh()
    err = start(uc, abi.CODE_LO)
    expect(err == _UC_ERR_OK, f"probe run failed: {_uc_strerror(err)}")
    expect(
        seen == [(_INTNO_ECALL, abi.CODE_LO + 8)],
        f"ecall hook saw {seen}, expected intno 8 at pc ecall+4",
    )
    expect(uc.reg_read(rv.UC_RISCV_REG_A0) == 42, "instruction after ecall skipped or repeated")
    expect(gas.exited == 1 and uc.reg_read(rv.UC_RISCV_REG_PC) == abi.EXIT_ADDR,
           "the gas hook did not stop the emulation at the exit block")
    # 2. block hook installed before the first run fired, with 4 bytes per instruction.
    expect(gas.insns == 4, f"block gas hook counted {gas.insns} instructions, expected 4")
    # 3. illegal instruction -> intno 2.
    seen.clear()
    gas.exited = 0
    start(uc, abi.CODE_LO + 0x10)
    expect(
        bool(seen) and seen[0][0] == _INTNO_ILLEGAL,
        f"illegal instruction gave {seen}, expected intno 2",
    )
    # 4. an infinite loop is stopped by the gas hook (count=0 run, gas only).
    gas.left, gas.insns, gas.out_of_gas = 1_000, 0, 0
    err = start(uc, abi.CODE_LO + 0x14)
    expect(gas.out_of_gas == 1 and err == _UC_ERR_OK, "gas hook did not stop an infinite loop")
    expect(1_000 < gas.insns <= 1_002, f"gas overshoot {gas.insns - 1_000} exceeds one block")
    # 5. a store into r-x code faults with WRITE_PROT.
    gas.left, gas.out_of_gas = 1_000, 0
    err = start(uc, abi.CODE_LO + 0x18)
    expect(
        err == unicorn.UC_ERR_WRITE_PROT,
        f"store to r-x page gave {_uc_strerror(err)}, expected WRITE_PROT",
    )
    # 6. misaligned 8-byte loads and stores work (contracts are built to use them).
    gas.left, gas.out_of_gas = 1_000, 0
    uc.reg_write(rv.UC_RISCV_REG_A0, 0x1122334455667788)
    err = start(uc, abi.CODE_LO + 0x24)
    expect(err == _UC_ERR_OK and uc.reg_read(rv.UC_RISCV_REG_A1) == 0x1122334455667788,
           f"misaligned ld/sd failed: {_uc_strerror(err)}")
    del keep
    return {"unicorn": unicorn.__version__, "gas_meter": meter}
