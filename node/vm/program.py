"""A prepared contract: the verified, page-aligned memory image and export table of one ELF.

A :class:`Program` is pure, immutable data (picklable, shareable between threads and processes):
the runtime maps it into unicorn instances, the loader caches it by code hash and persists it
with :meth:`Program.encode` so a restart does not re-verify. Build one with
:func:`node.vm.elf.prepare`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from node.core.codec import DecodeError, Reader, Writer, sha3
from node.vm import abi

PERM_R = 1
PERM_W = 2
PERM_X = 4

_MAGIC = b"DUBHE-PROGRAM"


@dataclass(frozen=True, slots=True)
class Segment:
    """One mapped region: page-aligned ``vaddr`` and ``size``, exact ``perms`` (PERM_* bits), and
    the initial contents ``image`` (``len(image) == size``, zero-filled past the file data)."""

    vaddr: int
    size: int
    perms: int
    image: bytes

    @property
    def writable(self) -> bool:
        return bool(self.perms & PERM_W)

    @property
    def executable(self) -> bool:
        return bool(self.perms & PERM_X)


@dataclass(frozen=True, slots=True)
class Program:
    """A verified contract ready to map.

    ``code_hash`` is SHA3-256 of the ELF bytes; ``exports`` maps method name -> entry address;
    ``elf_size`` is the ELF's length (for cache accounting).
    """

    code_hash: bytes
    segments: tuple[Segment, ...]
    exports: Mapping[str, int]
    elf_size: int

    @property
    def footprint(self) -> int:
        """Bytes this program holds in memory (mapped image + ELF size): the LRU's byte weight."""
        return sum(s.size for s in self.segments) + self.elf_size

    def encode(self) -> bytes:
        """Canonical bytes for the persistent compile cache (tagged with the ABI version)."""
        w = Writer().raw(_MAGIC).u32(abi.ABI_VERSION).raw(self.code_hash).u64(self.elf_size)
        w.u32(len(self.segments))
        for s in self.segments:
            w.u64(s.vaddr).u64(s.size).u8(s.perms).bytes_(s.image)
        w.u32(len(self.exports))
        for name, addr in sorted(self.exports.items()):
            w.str_(name).u64(addr)
        body = w.finish()
        return body + sha3(body)

    @staticmethod
    def decode(raw: bytes, expected_hash: bytes) -> Program:
        """Inverse of :meth:`encode`; raises :class:`DecodeError` if the bytes are corrupt, from
        another ABI version, or for another code hash (the caller then re-verifies the ELF)."""
        if len(raw) < 32 or sha3(raw[:-32]) != raw[-32:]:
            raise DecodeError("program: checksum mismatch")
        r = Reader(raw[:-32])
        if r.raw(len(_MAGIC), "magic") != _MAGIC:
            raise DecodeError("program: bad magic")
        if r.u32("abi_version") != abi.ABI_VERSION:
            raise DecodeError("program: prepared under another ABI version")
        code_hash = r.raw(32, "code_hash")
        if code_hash != expected_hash:
            raise DecodeError("program: code hash mismatch")
        elf_size = r.u64("elf_size")
        segs = []
        for _ in range(r.u32("segments")):
            vaddr, size, perms = r.u64("vaddr"), r.u64("size"), r.u8("perms")
            image = r.bytes_("image", abi.MAX_IMAGE_BYTES)
            if len(image) != size:
                raise DecodeError("program: image size mismatch")
            segs.append(Segment(vaddr, size, perms, image))
        exports = {}
        for _ in range(r.u32("exports")):
            name = r.str_("name", 256)
            exports[name] = r.u64("addr")
        r.end()
        return Program(code_hash, tuple(segs), MappingProxyType(exports), elf_size)

    def __reduce__(self) -> tuple[object, ...]:
        # MappingProxyType does not pickle; ship a plain dict (worker processes rebuild programs).
        return (_rebuild, (self.code_hash, self.segments, dict(self.exports), self.elf_size))


def _rebuild(
    code_hash: bytes, segments: tuple[Segment, ...], exports: dict[str, int], elf_size: int
) -> Program:
    return Program(code_hash, segments, MappingProxyType(exports), elf_size)
