"""ELF verification and preparation: contract bytes in, :class:`~node.vm.program.Program` out.

:func:`prepare` is the deploy-time gate. It accepts only static little-endian RV64 executables
without compressed instructions or a hardware-float ABI, whose PT_LOAD segments fit the code
window, are never writable and executable at once, and share no page; it raises
:class:`ElfRejected` naming the first problem. Anything it accepts can be mapped with exact
permissions by the runtime.
"""

from __future__ import annotations

import io
import re
from types import MappingProxyType

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from node.core.codec import sha3
from node.vm import abi
from node.vm.program import PERM_R, PERM_W, PERM_X, Program, Segment

EM_RISCV = 243
EF_RISCV_RVC = 0x1
EF_RISCV_FLOAT_ABI = 0x6
EF_RISCV_RVE = 0x8
PF_X, PF_W, PF_R = 1, 2, 4

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CodeUnavailable(Exception):
    """A resolver could not obtain a contract's code (for example its L1 is unreachable); the VM
    reverts the transaction with this message."""


class ElfRejected(ValueError):
    """The code is not an acceptable contract; ``str(e)`` names what is wrong."""


def _page_down(x: int) -> int:
    return x & ~(abi.PAGE - 1)


def _page_up(x: int) -> int:
    return (x + abi.PAGE - 1) & ~(abi.PAGE - 1)


def prepare(code: bytes) -> Program:
    """Verify ``code`` and build its :class:`Program`. Raises :class:`ElfRejected`."""
    if len(code) > abi.MAX_ELF_BYTES:
        raise ElfRejected(f"oversize ELF: {len(code)} bytes exceed the limit {abi.MAX_ELF_BYTES}")
    if code[:4] != b"\x7fELF":
        raise ElfRejected("not an ELF file (bad magic)")
    # Header checks on raw bytes first, so the message names the real problem even when
    # pyelftools would choke on a foreign layout.
    if len(code) < 64:
        raise ElfRejected("truncated ELF header")
    if code[4] != 2:
        raise ElfRejected(f"not a 64-bit ELF (EI_CLASS={code[4]}); contracts must be RV64")
    if code[5] != 1:
        raise ElfRejected("not little-endian (EI_DATA); RISC-V contracts are little-endian")
    try:
        elf = ELFFile(io.BytesIO(code))
        return _prepare(elf, code)
    except ElfRejected:
        raise
    except (ELFError, ValueError, KeyError, IndexError, AssertionError, EOFError) as e:
        raise ElfRejected(f"malformed ELF: {e}") from None


def _prepare(elf: ELFFile, code: bytes) -> Program:
    h = elf.header
    if h["e_machine"] != "EM_RISCV":
        raise ElfRejected(f"not a RISC-V ELF (e_machine={h['e_machine']})")
    if h["e_type"] != "ET_EXEC":
        raise ElfRejected(f"not a static executable (e_type={h['e_type']}); link with -static")
    flags = int(h["e_flags"])
    if flags & EF_RISCV_RVC:
        raise ElfRejected("compressed instructions (EF_RISCV_RVC): build with -march=rv64im")
    if flags & EF_RISCV_FLOAT_ABI:
        raise ElfRejected("hardware-float ABI (EF_RISCV_FLOAT_ABI): build with -mabi=lp64")
    if flags & EF_RISCV_RVE:
        raise ElfRejected("RV64E ABI (EF_RISCV_RVE) is not supported")

    segs: list[Segment] = []
    total = 0
    for i, ph in enumerate(elf.iter_segments()):
        ptype = ph["p_type"]
        if ptype in ("PT_INTERP", "PT_DYNAMIC"):
            raise ElfRejected(f"segment {i}: {ptype}: dynamic ELFs are not supported; link -static")
        if ptype != "PT_LOAD" or ph["p_memsz"] == 0:
            continue
        vaddr, memsz, filesz, off = ph["p_vaddr"], ph["p_memsz"], ph["p_filesz"], ph["p_offset"]
        pflags = ph["p_flags"]
        if pflags & PF_W and pflags & PF_X:
            raise ElfRejected(f"segment {i} at 0x{vaddr:x} is writable and executable (W+X)")
        if filesz > memsz:
            raise ElfRejected(f"segment {i}: p_filesz {filesz} exceeds p_memsz {memsz}")
        if off + filesz > len(code):
            raise ElfRejected(f"segment {i}: file data [{off}, {off + filesz}) past end of file")
        lo, hi = _page_down(vaddr), _page_up(vaddr + memsz)
        if lo < abi.CODE_LO or hi > abi.CODE_HI:
            raise ElfRejected(
                f"segment {i} [0x{vaddr:x}, 0x{vaddr + memsz:x}) outside the code window "
                f"[0x{abi.CODE_LO:x}, 0x{abi.CODE_HI:x})"
            )
        for j, other in enumerate(segs):
            if lo < other.vaddr + other.size and other.vaddr < hi:
                raise ElfRejected(
                    f"segment {i} shares a page with an earlier segment ({j}); align segments "
                    "to 4 KiB so each page has exact permissions"
                )
        total += hi - lo
        if total > abi.MAX_IMAGE_BYTES:
            raise ElfRejected(f"oversize image: mapped size exceeds {abi.MAX_IMAGE_BYTES} bytes")
        perms = (PERM_R if pflags & PF_R else 0) | (PERM_W if pflags & PF_W else 0)
        perms |= PERM_X if pflags & PF_X else 0
        if perms & PERM_X and not perms & PERM_R:
            perms |= (
                PERM_R  # unicorn fetches through the read path; execute-only is not expressible
            )
        image = bytearray(hi - lo)
        image[vaddr - lo : vaddr - lo + filesz] = code[off : off + filesz]
        if perms & PERM_X:
            _check_code(i, vaddr, code[off : off + filesz])
        segs.append(Segment(lo, hi - lo, perms, bytes(image)))
    if not segs:
        raise ElfRejected("no loadable segments (PT_LOAD)")

    symtab = elf.get_section_by_name(".symtab")
    if not isinstance(symtab, SymbolTableSection):
        raise ElfRejected("no symbol table (.symtab): methods are called by name; do not strip")
    exports: dict[str, int] = {}
    for sym in symtab.iter_symbols():
        info, other = sym["st_info"], sym["st_other"]
        if (
            info["type"] != "STT_FUNC"
            or info["bind"] != "STB_GLOBAL"
            or other["visibility"] != "STV_DEFAULT"
        ):
            continue
        addr = int(sym["st_value"])
        if not _NAME.match(sym.name):
            continue
        if addr % 4 or not any(s.executable and s.vaddr <= addr < s.vaddr + s.size for s in segs):
            raise ElfRejected(
                f"exported function {sym.name!r} at 0x{addr:x} is not in executable code"
            )
        exports[sym.name] = addr
    if not exports:
        raise ElfRejected("no exported methods (global default-visibility functions)")
    return Program(sha3(code), tuple(segs), MappingProxyType(exports), len(code))


def _check_code(index: int, vaddr: int, text: bytes) -> None:
    # Belt and braces for a lying e_flags: every aligned word of RV64IM code is a 32-bit encoding
    # (low bits 0b11). The CPU model would otherwise run 16-bit RVC instructions.
    if vaddr % 4:
        raise ElfRejected(
            f"segment {index}: executable segment at 0x{vaddr:x} is not 4-byte aligned"
        )
    for k in range(0, len(text) - len(text) % 4, 4):
        if text[k] & 3 != 3:
            raise ElfRejected(
                f"segment {index}: non-32-bit instruction at 0x{vaddr + k:x} (compressed code "
                "is not supported)"
            )
