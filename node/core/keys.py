"""The state keyspace: every key a transaction can read or write.

State is one flat map ``bytes -> bytes``. Keys are built here and nowhere else:

* contract storage: ``b"s" + contract(20) + slot`` (slot: 1..96 bytes chosen by the contract);
* account nonce:   ``b"n" + address(20)`` (written by the node for every included transaction);
* contract code:   ``b"c" + address(20)`` (the contract's ELF bytes; written by deploys).

Declared read/write sets in transactions list *storage keys* in this full form, so schedulers can
compare them without knowing contracts. The sender's nonce key is implicitly read and written by
every transaction (see :func:`implicit_keys`).
"""

from __future__ import annotations

ADDRESS_LEN = 20
MAX_SLOT_LEN = 96
MAX_KEY_LEN = 1 + ADDRESS_LEN + MAX_SLOT_LEN

STORAGE = b"s"
NONCE = b"n"
CODE = b"c"

#: The native token, a system contract deployed at genesis.
NATIVE_TOKEN = bytes(19) + b"\x01"
#: Address of the built-in counter demo contract (seed's "counter demo").
COUNTER_DEMO = bytes(19) + b"\x02"


def storage_key(contract: bytes, slot: bytes) -> bytes:
    if len(contract) != ADDRESS_LEN:
        raise ValueError("contract address must be 20 bytes")
    if not 1 <= len(slot) <= MAX_SLOT_LEN:
        raise ValueError(f"storage slot must be 1..{MAX_SLOT_LEN} bytes")
    return STORAGE + contract + slot


def nonce_key(address: bytes) -> bytes:
    return NONCE + address


def code_key(address: bytes) -> bytes:
    return CODE + address


def balance_key(owner: bytes) -> bytes:
    """Storage key of ``owner``'s native-token balance (8-byte big-endian value)."""
    return storage_key(NATIVE_TOKEN, b"b" + owner)


def is_storage_key(key: bytes) -> bool:
    return len(key) > 1 + ADDRESS_LEN and key[:1] == STORAGE and len(key) <= MAX_KEY_LEN


def implicit_keys(sender: bytes) -> tuple[bytes, ...]:
    """Keys every transaction of ``sender`` touches without declaring them."""
    return (nonce_key(sender),)
