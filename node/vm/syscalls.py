"""Syscall semantics: what each ``ecall`` does to the call's environment, and how the memory
logs (return buffer, event log, storage write log) written by ``abi.h`` without syscalls are
turned into the same effects.

The backend decodes the syscall block, charges :data:`node.vm.abi.SYSCALL_GAS`, and calls the
handler from :data:`HANDLERS` with the guest memory and the :class:`CallEnv`. Handlers return the
value for ``ret``, or raise :class:`Stop` (revert / exit / fault / out of gas: the call ends) or
:class:`~node.core.access.UndeclaredAccess` (from the state). When a call ends, the backend calls
:func:`apply_write_log` and :func:`finish`. Nothing here touches unicorn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from node.core import keys
from node.core.access import TxState
from node.core.execution import BlockContext, Event, TxStatus
from node.vm import abi


class GuestMemory(Protocol):
    """Bounds-checked access to the guest's mapped memory; raises :class:`Stop` (FAULT).

    ``out`` is the syscall page (for the output header at ``abi.OUT_OFF``), ``ret_view`` the
    return buffer, ``log_view`` the event log and ``wlog_view`` the storage write log."""

    out: memoryview
    ret_view: memoryview
    log_view: memoryview
    wlog_view: memoryview

    def charge(self, gas: int) -> None:
        """Charge ``gas``; raises :class:`Stop` (OUT_OF_GAS) when it runs out."""
        ...

    def read(self, ptr: int, n: int) -> bytes: ...

    def write(self, ptr: int, data: bytes, cap: int) -> None:
        """Check ``[ptr, ptr+cap)`` is writable guest memory, then copy ``data`` (<= cap) there."""
        ...

    def writable(self, ptr: int, cap: int) -> tuple[memoryview, int]:
        """Check ``[ptr, ptr+cap)`` (cap > 0) is writable; returns (view, offset of ptr)."""
        ...


class Stop(Exception):
    """Ends the call with ``status`` (SUCCESS for exit(0)) and ``reason``."""

    def __init__(self, status: TxStatus, reason: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def fault(reason: str) -> Stop:
    return Stop(TxStatus.FAULT, reason)


class CallEnv:
    """Everything a call can observe or produce besides memory. Mutable; one per call."""

    __slots__ = ("address", "caller", "ctx", "events", "input", "prefix", "return_data", "state")

    def __init__(
        self, state: TxState, address: bytes, caller: bytes, ctx: BlockContext, input_: bytes
    ) -> None:
        self.state = state
        self.address = address
        self.caller = caller
        self.ctx = ctx
        self.input = input_
        self.prefix = keys.STORAGE + address  # storage keys are scoped to the contract
        self.events: list[Event] = []
        self.return_data = b""


def _slot(mem: GuestMemory, env: CallEnv, ptr: int, n: int, name: str) -> bytes:
    if not 0 < n <= abi.MAX_SLOT_LEN:
        raise fault(f"{name}: slot length {n} not in 1..{abi.MAX_SLOT_LEN}")
    return env.prefix + mem.read(ptr, n)


def _storage_read(mem: GuestMemory, env: CallEnv, a0: int, a1: int, a2: int, a3: int) -> int:
    apply_write_log(mem, env)  # the read must see (and come after) the buffered writes
    if not 0 < a1 <= abi.MAX_SLOT_LEN:
        raise fault(f"storage_read: slot length {a1} not in 1..{abi.MAX_SLOT_LEN}")
    key = env.prefix + mem.read(a0, a1)
    if a3:  # check the whole output buffer before touching state
        view, off = mem.writable(a2, a3)
    value = env.state.get(key)
    if value is None:
        return -1
    if a3:
        n = len(value) if len(value) < a3 else a3
        view[off : off + n] = value[:n]
    return len(value)


def _storage_write(mem: GuestMemory, env: CallEnv, a0: int, a1: int, a2: int, a3: int) -> int:
    apply_write_log(mem, env)
    if not 0 < a1 <= abi.MAX_SLOT_LEN:
        raise fault(f"storage_write: slot length {a1} not in 1..{abi.MAX_SLOT_LEN}")
    if a3 > abi.MAX_VALUE_LEN:
        raise fault(f"storage_write: value length {a3} exceeds {abi.MAX_VALUE_LEN}")
    env.state.put(env.prefix + mem.read(a0, a1), mem.read(a2, a3))
    return 0


def _storage_delete(mem: GuestMemory, env: CallEnv, a0: int, a1: int, a2: int, a3: int) -> int:
    apply_write_log(mem, env)
    env.state.delete(_slot(mem, env, a0, a1, "storage_delete"))
    return 0


def apply_write_log(mem: GuestMemory, env: CallEnv, *, charge: bool = True) -> None:
    """Apply the buffered storage writes/deletes to ``env.state`` in order, charging each like
    its syscall (unless ``charge`` is false: the call already ran out of gas), then empty the
    log. Effects and errors are exactly those of the syscalls at the points they were logged:
    malformed records FAULT, an undeclared key raises ``UndeclaredAccess``."""
    out = mem.out
    ret_len, ev_count, ev_used, count, used = abi.OUT.unpack_from(out, abi.OUT_OFF)
    if count == 0 and used == 0:
        return
    if count > abi.MAX_LOGGED_WRITES or used > abi.WLOG_SIZE:
        raise fault(f"corrupt write log: {count} records, {used} bytes")
    log = mem.wlog_view
    prefix = env.prefix
    state = env.state
    off = 0
    for i in range(count):
        if off + 8 > used:
            raise fault(f"corrupt write log: record {i} header past the used bytes")
        slot_len, op, value_len = abi.WRITE_HDR.unpack_from(log, off)
        s = off + 8
        v = s + ((slot_len + 7) & ~7)  # the value starts 8-aligned after the slot
        end = v + value_len
        if not 0 < slot_len <= abi.MAX_SLOT_LEN or end > used or value_len > abi.MAX_VALUE_LEN or (
            op != abi.WLOG_WRITE and (op != abi.WLOG_DELETE or value_len)
        ):
            raise fault(
                f"corrupt write log: record {i} (op {op}, slot {slot_len}, value {value_len} bytes)"
            )
        if charge:
            mem.charge(abi.GAS_STORAGE_WRITE)
        key = prefix + log[s : s + slot_len].tobytes()
        if op == abi.WLOG_WRITE:
            state.put(key, log[v:end].tobytes())
        else:
            state.delete(key)
        off = (end + 7) & ~7
    if off != used:
        raise fault(f"corrupt write log: {used} bytes used, records end at {off}")
    abi.OUT.pack_into(out, abi.OUT_OFF, ret_len, ev_count, ev_used, 0, 0)


def _input(mem: GuestMemory, env: CallEnv, a0: int, a1: int, a2: int, a3: int) -> int:
    if a1:
        mem.write(a0, env.input[:a1], a1)
    return len(env.input)


def _set_return(mem: GuestMemory, env: CallEnv, a0: int, a1: int, a2: int, a3: int) -> int:
    # Same effect as abi.h's syscall-free dubhe_set_return: fill the return buffer.
    if a1 > abi.MAX_RETURN_LEN:
        raise fault(f"set_return: length {a1} exceeds {abi.MAX_RETURN_LEN}")
    mem.ret_view[:a1] = mem.read(a0, a1)
    abi.RET.pack_into(mem.out, abi.OUT_OFF, a1)
    return 0


def _emit_event(mem: GuestMemory, env: CallEnv, a0: int, a1: int, a2: int, a3: int) -> int:
    # The guest makes this syscall when an event does not fit the log: turn the log into events
    # first so the order is kept, then append this one directly.
    flush_event_log(mem, env)
    if a1 > abi.MAX_TOPICS:
        raise fault(f"emit_event: {a1} topics exceed {abi.MAX_TOPICS}")
    if a3 > abi.MAX_EVENT_DATA:
        raise fault(f"emit_event: data length {a3} exceeds {abi.MAX_EVENT_DATA}")
    if len(env.events) >= abi.MAX_EVENTS:
        raise fault(f"emit_event: more than {abi.MAX_EVENTS} events")
    raw = mem.read(a0, 32 * a1)
    topics = tuple([raw[i : i + 32] for i in range(0, len(raw), 32)])
    env.events.append(Event(env.address, topics, mem.read(a2, a3)))
    return 0


def pending_log_events(mem: GuestMemory) -> int:
    """Records the guest claims are in the event log (for charging gas; capped)."""
    count = abi.OUT.unpack_from(mem.out, abi.OUT_OFF)[1]
    return int(min(count, abi.MAX_EVENTS + 1))


def flush_event_log(mem: GuestMemory, env: CallEnv) -> int:
    """Append the log's records to ``env.events``, empty the log, return how many. The log is
    guest-written memory: anything malformed is a FAULT naming it."""
    ret_len, count, used, w_count, w_used = abi.OUT.unpack_from(mem.out, abi.OUT_OFF)
    if count == 0 and used == 0:
        return 0
    if count > abi.MAX_EVENTS or len(env.events) + count > abi.MAX_EVENTS:
        raise fault(f"emit_event: more than {abi.MAX_EVENTS} events")
    if used > abi.EVENT_SIZE:
        raise fault(f"corrupt event log: {used} bytes used exceed {abi.EVENT_SIZE}")
    log = mem.log_view
    off = 0
    for i in range(count):
        if off + 8 > used:
            raise fault(f"corrupt event log: record {i} header past the used bytes")
        n_topics, data_len = abi.EVENT_HDR.unpack_from(log, off)
        end = off + 8 + 32 * n_topics + data_len
        if n_topics > abi.MAX_TOPICS or data_len > abi.MAX_EVENT_DATA or end > used:
            raise fault(f"corrupt event log: record {i} ({n_topics} topics, {data_len} data bytes)")
        t = off + 8
        topics = tuple([log[t + 32 * k : t + 32 * k + 32].tobytes() for k in range(n_topics)])
        d = t + 32 * n_topics
        env.events.append(Event(env.address, topics, log[d : d + data_len].tobytes()))
        off = (end + 7) & ~7
    if off != used:
        raise fault(f"corrupt event log: {used} bytes used, records end at {off}")
    abi.OUT.pack_into(mem.out, abi.OUT_OFF, ret_len, 0, 0, w_count, w_used)
    return int(count)


def finish(mem: GuestMemory, env: CallEnv) -> int:
    """At a successful end: collect the return buffer and the event log into ``env``; returns
    the number of log events (to charge). Raises :class:`Stop` (FAULT) if either is malformed."""
    ret_len = abi.OUT.unpack_from(mem.out, abi.OUT_OFF)[0]
    if ret_len > abi.MAX_RETURN_LEN:
        raise fault(f"set_return: length {ret_len} exceeds {abi.MAX_RETURN_LEN}")
    env.return_data = mem.ret_view[:ret_len].tobytes()
    return flush_event_log(mem, env)


def _caller(mem: GuestMemory, env: CallEnv, a0: int, a1: int, a2: int, a3: int) -> int:
    mem.write(a0, env.caller, 20)
    return 0


def _self(mem: GuestMemory, env: CallEnv, a0: int, a1: int, a2: int, a3: int) -> int:
    mem.write(a0, env.address, 20)
    return 0


def _block_number(mem: GuestMemory, env: CallEnv, a0: int, a1: int, a2: int, a3: int) -> int:
    return env.ctx.number


def _timestamp(mem: GuestMemory, env: CallEnv, a0: int, a1: int, a2: int, a3: int) -> int:
    return env.ctx.timestamp_ms


def _revert(mem: GuestMemory, env: CallEnv, a0: int, a1: int, a2: int, a3: int) -> int:
    if a1 > abi.MAX_REASON_LEN:
        raise fault(f"revert: reason length {a1} exceeds {abi.MAX_REASON_LEN}")
    raise Stop(TxStatus.REVERT, mem.read(a0, a1).decode("utf-8", "replace"))


def _exit(mem: GuestMemory, env: CallEnv, a0: int, a1: int, a2: int, a3: int) -> int:
    if a0 == 0:
        raise Stop(TxStatus.SUCCESS)
    raise Stop(TxStatus.REVERT, f"exit code {a0}")


Handler = Callable[[GuestMemory, CallEnv, int, int, int, int], int]

HANDLERS: dict[int, Handler] = {
    abi.SYS_STORAGE_READ: _storage_read,
    abi.SYS_STORAGE_WRITE: _storage_write,
    abi.SYS_STORAGE_DELETE: _storage_delete,
    abi.SYS_INPUT: _input,
    abi.SYS_SET_RETURN: _set_return,
    abi.SYS_EMIT_EVENT: _emit_event,
    abi.SYS_CALLER: _caller,
    abi.SYS_SELF: _self,
    abi.SYS_BLOCK_NUMBER: _block_number,
    abi.SYS_TIMESTAMP: _timestamp,
    abi.SYS_REVERT: _revert,
    abi.SYS_EXIT: _exit,
}
