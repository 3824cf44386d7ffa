"""The committed contract ELFs and the genesis system contracts.

ELFs are built by ``make -C contracts`` into ``contracts/build/`` (committed);
``DUBHE_CONTRACTS_DIR`` points elsewhere (e.g. an installed copy).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from node.core import keys
from node.core.tx import Signer
from node.vm.reference import MINT_AUTHORITY_SEED

#: Contracts shipped in contracts/build (name -> file stem).
CONTRACTS = ("native_token", "counter", "erc20", "objects", "hotspot", "compute", "faults")
MINT_AUTHORITY_SYMBOL = "dubhe_mint_authority"


def contracts_dir() -> Path:
    env = os.environ.get("DUBHE_CONTRACTS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "contracts" / "build"


def contract_elf(name: str) -> bytes:
    """The committed ELF of contract ``name`` (see :data:`CONTRACTS`)."""
    path = contracts_dir() / f"{name}.elf"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"contract ELF {path} not found; run `make -C contracts` or set DUBHE_CONTRACTS_DIR"
        ) from None


def default_mint_authority() -> bytes:
    """The dev mint authority (``Signer.from_seed(MINT_AUTHORITY_SEED)``)."""
    return Signer.from_seed(MINT_AUTHORITY_SEED).address


def patch_symbol(elf: bytes, symbol: str, value: bytes) -> bytes:
    """``elf`` with the initial bytes of data ``symbol`` replaced by ``value`` (same size)."""
    f = ELFFile(io.BytesIO(elf))
    symtab = f.get_section_by_name(".symtab")
    syms = symtab.iter_symbols() if isinstance(symtab, SymbolTableSection) else iter(())
    sym = next((s for s in syms if s.name == symbol), None)
    if sym is None or sym["st_size"] != len(value):
        raise ValueError(f"symbol {symbol!r} of {len(value)} bytes not found in the ELF")
    addr = sym["st_value"]
    for seg in f.iter_segments():
        if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= addr < seg["p_vaddr"] + seg["p_filesz"]:
            off = seg["p_offset"] + addr - seg["p_vaddr"]
            return elf[:off] + value + elf[off + len(value) :]
    raise ValueError(f"symbol {symbol!r} is not in initialised data")


def native_token_elf(mint_authority: bytes) -> bytes:
    """The native token ELF with ``mint_authority`` baked in (the code hash depends on it)."""
    if len(mint_authority) != keys.ADDRESS_LEN:
        raise ValueError("mint authority must be a 20-byte address")
    return patch_symbol(contract_elf("native_token"), MINT_AUTHORITY_SYMBOL, mint_authority)


def genesis_contracts(mint_authority: bytes | None = None) -> list[tuple[bytes, bytes]]:
    """``(address, ELF bytes)`` to write under ``keys.code_key(address)`` at genesis: the native
    token at ``keys.NATIVE_TOKEN`` (minting by ``mint_authority``, default
    :func:`default_mint_authority`) and the counter demo at ``keys.COUNTER_DEMO``."""
    auth = default_mint_authority() if mint_authority is None else mint_authority
    return [
        (keys.NATIVE_TOKEN, native_token_elf(auth)),
        (keys.COUNTER_DEMO, contract_elf("counter")),
    ]
