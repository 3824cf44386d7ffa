"""Transactions: canonical encoding, hashing, signatures, field rules."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.core import keys
from node.core.errors import InvalidTransaction
from node.core.tx import MAX_TX_BYTES, Signer, Transaction, address_of, sign_tx

SIGNER = Signer.from_seed(b"test")
CONTRACT = bytes(19) + b"\x07"

slots = st.binary(min_size=1, max_size=8)
skeys = slots.map(lambda s: keys.storage_key(CONTRACT, s))


@given(
    nonce=st.integers(0, 2**64 - 1),
    method=st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True),
    args=st.binary(max_size=300),
    rs=st.lists(skeys, max_size=5, unique=True),
    ws=st.lists(skeys, max_size=5, unique=True),
    gas=st.integers(1, 1_000_000_000),
)
def test_roundtrip_and_signature(
    nonce: int, method: str, args: bytes, rs: list[bytes], ws: list[bytes], gas: int
) -> None:
    tx = sign_tx(SIGNER, chain_id=7, nonce=nonce, to=CONTRACT, method=method, args=args,
                 read_set=tuple(rs), write_set=tuple(ws), gas_limit=gas)
    back = Transaction.decode(tx.raw)
    assert back == tx
    assert back.raw == tx.raw == back.encode()  # decode keeps the (canonical) bytes it read
    assert back.hash == tx.hash
    assert back.sender == SIGNER.address == address_of(SIGNER.public_key)
    back.verify_signature()


def _tx(**kw: object) -> Transaction:
    base: dict[str, object] = dict(chain_id=1, nonce=0, to=CONTRACT, method="transfer", args=b"x")
    base.update(kw)
    return sign_tx(SIGNER, **base)  # type: ignore[arg-type]


def test_tampered_field_fails_signature() -> None:
    tx = _tx()
    raw = bytearray(tx.raw)
    raw[10] ^= 1  # inside the nonce
    bad = Transaction.decode(bytes(raw))
    with pytest.raises(InvalidTransaction) as e:
        bad.verify_signature()
    assert e.value.cause == "bad_signature"


def test_a_signature_verifies_with_openssl_and_libsodium_alike() -> None:
    """Signed by cryptography (OpenSSL), verified by libsodium: the node's only verifier."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from node.core.tx import DOMAIN

    tx = _tx()
    Ed25519PublicKey.from_public_bytes(tx.public_key).verify(tx.signature,
                                                             DOMAIN + tx.unsigned_bytes())
    tx.verify_signature()
    for bad_key in (bytes(32), b"\x01" + bytes(31)):  # small-order points: refused
        with pytest.raises(InvalidTransaction, match="small_order_key"):
            dataclasses.replace(tx, public_key=bad_key).verify_signature()


def test_other_signer_signature_fails() -> None:
    tx = _tx()
    other = sign_tx(
        Signer.from_seed(b"other"), chain_id=1, nonce=0, to=CONTRACT, method="transfer", args=b"x"
    )
    forged = Transaction.decode(tx.unsigned_bytes() + other.signature)
    with pytest.raises(InvalidTransaction, match="bad_signature"):
        forged.verify_signature()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda raw: raw[:-1], "signature: truncated"),
        (lambda raw: raw + b"\x00", "trailing bytes"),
        (lambda raw: b"\x09" + raw[1:], "unsupported version"),
        (lambda raw: b"", "version: truncated"),
    ],
)
def test_malformed_encodings(mutate: object, message: str) -> None:
    raw = mutate(_tx().raw)  # type: ignore[operator]
    with pytest.raises(InvalidTransaction) as e:
        Transaction.decode(raw)
    assert e.value.cause == "malformed"
    assert message in str(e.value)


def test_oversize_rejected_before_decoding() -> None:
    with pytest.raises(InvalidTransaction) as e:
        Transaction.decode(b"\x01" * (MAX_TX_BYTES + 1))
    assert e.value.cause == "oversize"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"method": "bad-name"}, "method"),
        ({"gas_limit": 0}, "gas_limit"),
        ({"write_set": (b"n" + bytes(20),)}, "write_set[0]: not a storage key"),
        ({"read_set": (keys.storage_key(CONTRACT, b"a"),) * 2}, "read_set: duplicate"),
    ],
)
def test_field_rules(kw: dict[str, object], message: str) -> None:
    tx = _tx(**kw)
    with pytest.raises(InvalidTransaction, match="malformed") as e:
        Transaction.decode(tx.raw)
    assert message in str(e.value)


def test_declared_sets_include_the_nonce_key() -> None:
    k = keys.storage_key(CONTRACT, b"a")
    tx = _tx(read_set=(k,))
    assert keys.nonce_key(SIGNER.address) in tx.declared_writes()
    assert k in tx.declared_reads() and k not in tx.declared_writes()


def test_hash_changes_with_chain_id() -> None:
    assert _tx(chain_id=1).hash != _tx(chain_id=2).hash
