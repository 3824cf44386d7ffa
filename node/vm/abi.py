"""The contract ABI shared by the loader, the runtime and ``contracts/abi.h``: memory map, syscall
numbers, limits and the gas schedule. Pure constants; see ``docs/vm-abi.md`` for the prose.

Changing any value here changes consensus (gas, faults): bump :data:`ABI_VERSION` and rebuild.
"""

from __future__ import annotations

import struct

from node.vm import reference

#: Part of the persistent compile-cache key: a cached program prepared under another ABI is ignored.
ABI_VERSION = 1

PAGE = 0x1000

# -- memory map ---------------------------------------------------------------------------------
#: Host entry stub (loads sp/a0/a1/entry from the syscall page, sets ra to the exit address and
#: jumps to the method). Mapped r-x; metered like contract code.
STUB_BASE = 0x1000
#: The exit page (r-x): a method returns to EXIT_ADDR (``j .``); the gas hook stops the emulation
#: when that block starts. It must not share a page with the stub or with UNTIL_ADDR: unicorn
#: invalidates translated code in the page of the ``until`` address on every ``emu_start``.
EXIT_ADDR = 0x2000
#: The ``until`` address given to unicorn (r-x page, never reached).
UNTIL_ADDR = 0x3000
#: ``j .`` (jal zero, 0): what sits at EXIT_ADDR, in case the stop request lands a block late.
EXIT_CODE = struct.pack("<I", 0x0000006F)
#: ELF PT_LOAD segments must lie inside [CODE_LO, CODE_HI).
CODE_LO = 0x10000
CODE_HI = 0x100000
#: Syscall block page (rw-): {nr, a0..a3, ret} at offset 0, entry parameters at ENTRY_OFF.
SYS_BASE = 0x100000
SYS_SIZE = PAGE
#: Read-only input region holding the call's args.
INPUT_BASE = 0x101000
INPUT_SIZE = 0x10000
#: Output area (rw-): the return buffer and the event log, written by the guest without a
#: syscall (abi.h's dubhe_set_return / dubhe_emit) and read by the host when the call ends.
RET_BASE = 0x120000
RET_SIZE = 0x1000
EVENT_BASE = 0x121000
EVENT_SIZE = 0x2000
#: Storage write log (rw-): abi.h's dubhe_storage_write/delete append here without a syscall; the
#: host applies the log, in order, at the next storage syscall and when the call ends.
WLOG_BASE = 0x123000
WLOG_SIZE = 0x2000
#: Stack (rw-), 32 KiB ending at 0x80000000; sp starts 16 bytes below the top. Zeroed before every
#: call, so its size is a per-call cost (64 KiB measured +0.6 us per call); overflowing it is a
#: FAULT (unmapped page below).
STACK_BASE = 0x7FFF8000
STACK_SIZE = 0x8000

# Offsets inside the syscall page (must match contracts/abi.h and the entry stub below).
SYS_NR_OFF = 0
SYS_ARGS_OFF = 8
SYS_RET_OFF = 40
ENTRY_OFF = 64  # entry pc, sp, a0 (input ptr), a1 (input len): 4 x u64 little-endian
#: Call context written by the host before every call (read it instead of making a syscall):
#: caller(20) self(20) block_number(u64) timestamp_ms(u64) chain_id(u64).
CONTEXT_OFF = 96
#: Output header: return length, event-log records, event-log bytes used, write-log records,
#: write-log bytes used (5 x u64).
OUT_OFF = 192
OUT = struct.Struct("<5Q")
#: Event-log record: n_topics (u8), 3 pad bytes, data_len (u32), topics, data; padded to 8 bytes.
EVENT_HDR = struct.Struct("<BxxxI")
#: Write-log record: slot_len (u8), op (u8: 1 write, 2 delete), 2 pad bytes, value_len (u32),
#: slot (padded to 8 bytes), value; the record is padded to 8 bytes.
WRITE_HDR = struct.Struct("<BBxxI")
WLOG_WRITE = 1
WLOG_DELETE = 2
MAX_LOGGED_WRITES = 256
SYSBLOCK = struct.Struct("<5Q")  # nr, a0..a3
RET = struct.Struct("<Q")
ENTRY = struct.Struct("<4Q")
ENTRY_AND_CONTEXT = struct.Struct("<4Q20s20s3Q")

#: The entry stub: ``lui t0,0x100; ld t1,64(t0); ld sp,72(t0); ld a0,80(t0); ld a1,88(t0);
#: lui ra,0x2; jr t1``.
STUB_CODE = struct.pack(
    "<7I", 0x001002B7, 0x0402B303, 0x0482B103, 0x0502B503, 0x0582B583, 0x000020B7, 0x00030067
)

# -- syscalls -----------------------------------------------------------------------------------
SYS_STORAGE_READ = 1
SYS_STORAGE_WRITE = 2
SYS_STORAGE_DELETE = 3
SYS_INPUT = 4
SYS_SET_RETURN = 5
SYS_EMIT_EVENT = 6
SYS_CALLER = 7
SYS_SELF = 8
SYS_BLOCK_NUMBER = 9
SYS_TIMESTAMP = 10
SYS_REVERT = 11
SYS_EXIT = 12

MAX_SLOT_LEN = 96
MAX_VALUE_LEN = 4096
MAX_RETURN_LEN = RET_SIZE
MAX_EVENT_DATA = 4096
MAX_TOPICS = 4
MAX_REASON_LEN = 256
MAX_EVENTS = 64

# -- gas ----------------------------------------------------------------------------------------
#: Storage and event costs are the reference executor's, so the schedules agree on syscalls; the
#: VM additionally charges GAS_PER_INSN per executed instruction and GAS_SYSCALL for the rest.
GAS_TX_BASE = reference.GAS_TX_BASE
GAS_STORAGE_READ = reference.GAS_STORAGE_READ
GAS_STORAGE_WRITE = reference.GAS_STORAGE_WRITE
GAS_STORAGE_DELETE = reference.GAS_STORAGE_WRITE
GAS_EVENT = reference.GAS_EVENT
GAS_SYSCALL = 10
GAS_PER_INSN = 1

SYSCALL_GAS: dict[int, int] = {
    SYS_STORAGE_READ: GAS_STORAGE_READ,
    SYS_STORAGE_WRITE: GAS_STORAGE_WRITE,
    SYS_STORAGE_DELETE: GAS_STORAGE_DELETE,
    SYS_EMIT_EVENT: GAS_EVENT,
}
MAX_SYSCALL = SYS_EXIT

# -- loader limits ------------------------------------------------------------------------------
MAX_ELF_BYTES = 256 * 1024
MAX_IMAGE_BYTES = 512 * 1024  # sum of page-rounded PT_LOAD sizes
