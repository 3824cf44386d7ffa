"""ELF verification: a table of broken images, each rejected with its own error; the committed
ELFs verify; a rebuild with the cross toolchain is byte-identical to the committed files."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from node.vm import abi
from node.vm.elf import ElfRejected, prepare
from node.vm.genesis import CONTRACTS, contract_elf, contracts_dir, native_token_elf
from node.vm.program import PERM_R, PERM_W, PERM_X, Program

GOOD = contract_elf("native_token")
PHOFF = struct.unpack_from("<Q", GOOD, 32)[0]


def patch(off: int, fmt: str, value: int) -> Callable[[bytes], bytes]:
    def f(b: bytes) -> bytes:
        out = bytearray(b)
        struct.pack_into(fmt, out, off, value)
        return bytes(out)

    return f


def ph(index: int, field: int, fmt: str, value: int) -> Callable[[bytes], bytes]:
    return patch(PHOFF + 56 * index + field, fmt, value)


def flags_or(bit: int) -> Callable[[bytes], bytes]:
    return patch(48, "<I", struct.unpack_from("<I", GOOD, 48)[0] | bit)


def first_code_word(value: int) -> Callable[[bytes], bytes]:
    off = struct.unpack_from("<Q", GOOD, PHOFF + 8)[0]
    return patch(off, "<I", value)


BROKEN: list[tuple[str, Callable[[bytes], bytes], str]] = [
    ("not-elf", lambda b: b"#!/bin/sh\necho hi\n", "not an ELF file"),
    ("truncated-header", lambda b: b[:40], "truncated ELF header"),
    ("oversize-file", lambda b: b + bytes(abi.MAX_ELF_BYTES), "oversize ELF"),
    ("elf32", patch(4, "B", 1), "not a 64-bit ELF"),
    ("big-endian", patch(5, "B", 2), "not little-endian"),
    ("x86-64", patch(18, "<H", 62), "not a RISC-V ELF"),
    ("shared-object", patch(16, "<H", 3), "not a static executable"),
    ("rvc-flag", flags_or(0x1), "compressed instructions (EF_RISCV_RVC)"),
    ("float-abi-single", flags_or(0x2), "hardware-float ABI"),
    ("float-abi-double", flags_or(0x4), "hardware-float ABI"),
    ("rve", flags_or(0x8), "RV64E"),
    ("w+x-segment", ph(0, 4, "<I", 7), "is writable and executable (W+X)"),
    ("below-code-window", ph(0, 16, "<Q", 0x0), "outside the code window"),
    ("above-code-window", ph(2, 16, "<Q", 0xFFFF000), "outside the code window"),
    ("oversize-image", ph(0, 40, "<Q", abi.MAX_IMAGE_BYTES + 1), "oversize image"),
    ("filesz>memsz", ph(0, 32, "<Q", 0x100000), "exceeds p_memsz"),
    ("data-past-eof", ph(0, 8, "<Q", 0x100000), "past end of file"),
    ("shared-page", ph(1, 16, "<Q", 0x10800), "shares a page"),
    ("compressed-code", first_code_word(0x0001), "non-32-bit instruction"),
    ("stripped", lambda b: b.replace(b".symtab\x00", b".symtaX\x00"), "no symbol table"),
    ("bad-phoff", patch(32, "<Q", 2**40), "malformed ELF"),
]


@pytest.mark.parametrize(("name", "mutate", "error"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_elf_rejected(name: str, mutate: Callable[[bytes], bytes], error: str) -> None:
    with pytest.raises(ElfRejected) as info:
        prepare(mutate(GOOD))
    assert error in str(info.value), f"{name}: {info.value}"


@pytest.mark.parametrize("name", CONTRACTS)
def test_committed_contracts_verify(name: str) -> None:
    p = prepare(contract_elf(name))
    assert p.exports and all(n.isidentifier() for n in p.exports)
    assert "memcpy" not in p.exports  # hidden helpers are not methods
    for s in p.segments:
        assert s.vaddr % abi.PAGE == 0 and s.size % abi.PAGE == 0 and len(s.image) == s.size
        assert not (s.perms & PERM_W and s.perms & PERM_X)
        assert s.perms & PERM_R


def test_program_roundtrip_and_corruption() -> None:
    p = prepare(native_token_elf(bytes(range(20))))
    raw = p.encode()
    q = Program.decode(raw, p.code_hash)
    assert q == p
    with pytest.raises(ValueError, match="code hash mismatch"):
        Program.decode(raw, bytes(32))
    with pytest.raises(ValueError, match="checksum"):
        Program.decode(raw[:-1] + bytes([raw[-1] ^ 1]), p.code_hash)


def test_mint_authority_patch_changes_code_hash() -> None:
    a, b = prepare(native_token_elf(b"\x01" * 20)), prepare(native_token_elf(b"\x02" * 20))
    assert a.code_hash != b.code_hash
    data_a = next(s for s in a.segments if s.perms & PERM_W).image
    assert b"\x01" * 20 in data_a


@pytest.mark.skipif(
    shutil.which("riscv64-unknown-elf-gcc") is None, reason="no riscv64-unknown-elf-gcc"
)
def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    src = contracts_dir().parent
    work = tmp_path / "contracts"
    shutil.copytree(src, work, ignore=shutil.ignore_patterns("build"))
    proc = subprocess.run(
        ["make", "-s", "-C", str(work)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    for name in CONTRACTS:
        built = (work / "build" / f"{name}.elf").read_bytes()
        assert built == contract_elf(name), (
            f"{name}.elf differs from the committed build; run make -C contracts"
        )
