"""Strict Ed25519: small-order and non-canonical keys and signatures are refused with a cause
naming the problem, as libsodium's strict verification refuses them (node.core.ed25519)."""

from __future__ import annotations

import dataclasses

import pytest
from nacl.bindings import crypto_sign_open

from node.core import ed25519
from node.core.errors import InvalidTransaction
from node.core.tx import Signer, Transaction, sign_tx

#: The 8 points of the Ed25519 torsion subgroup E[8], canonically encoded (the well-known list:
#: identity, the point of order 2, two of order 4, four of order 8).
SMALL_ORDER_POINTS = [
    bytes.fromhex(h)
    for h in (
        "0100000000000000000000000000000000000000000000000000000000000000",  # identity
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
        "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
        "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  # order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
    )
]
#: Non-canonical spellings (y >= p): p (y = 0), p + 1 (y = 1), and the largest, 2**255 - 1.
NON_CANONICAL_POINTS = [
    (ed25519.P + k).to_bytes(32, "little") for k in (0, 1, 2, 18)
] + [((ed25519.P + 1) | 1 << 255).to_bytes(32, "little")]

SIGNER = Signer.from_seed(b"strict")
CONTRACT = bytes(19) + b"\x07"


def _tx() -> Transaction:
    return sign_tx(SIGNER, chain_id=1, nonce=0, to=CONTRACT, method="transfer", args=b"x")


def _with(tx: Transaction, **kw: bytes) -> bytes:
    """``tx`` re-encoded with replaced key/signature bytes (what a forger would send)."""
    return dataclasses.replace(tx, **kw).encode()


def test_the_list_is_the_torsion_subgroup() -> None:
    assert len(set(SMALL_ORDER_POINTS)) == 8
    for p in SMALL_ORDER_POINTS:
        assert ed25519.has_small_order(p) and ed25519.is_canonical_point(p)


@pytest.mark.parametrize("point", SMALL_ORDER_POINTS, ids=lambda b: b.hex()[:8])
def test_small_order_public_key_refused_at_decode(point: bytes) -> None:
    # The forgery: key = a small-order point, R = the identity, S = 0 "verifies" for
    # any message under plain RFC 8032 cofactored checks.
    forged_sig = b"\x01" + bytes(31) + bytes(32)
    raw = _with(_tx(), public_key=point, signature=forged_sig)
    with pytest.raises(InvalidTransaction) as e:
        Transaction.decode(raw)
    assert e.value.cause == "small_order_key"
    assert e.value.data == {"cause": "small_order_key"}


@pytest.mark.parametrize("point", NON_CANONICAL_POINTS, ids=lambda b: b.hex()[:8])
def test_non_canonical_public_key_refused(point: bytes) -> None:
    with pytest.raises(InvalidTransaction) as e:
        Transaction.decode(_with(_tx(), public_key=point))
    assert e.value.cause == "non_canonical_key"


@pytest.mark.parametrize("point", SMALL_ORDER_POINTS, ids=lambda b: b.hex()[:8])
def test_small_order_r_refused(point: bytes) -> None:
    tx = _tx()
    with pytest.raises(InvalidTransaction) as e:
        Transaction.decode(_with(tx, signature=point + tx.signature[32:]))
    assert e.value.cause == "small_order_signature"


def test_non_canonical_s_refused_though_it_verifies_mod_l() -> None:
    """S + L is the same scalar mod L: a second valid-looking signature for one transaction
    (malleability). Refused as non-canonical."""
    tx = _tx()
    s = int.from_bytes(tx.signature[32:], "little") + ed25519.L
    assert s < 2**256
    malleated = tx.signature[:32] + s.to_bytes(32, "little")
    with pytest.raises(InvalidTransaction) as e:
        Transaction.decode(_with(tx, signature=malleated))
    assert e.value.cause == "non_canonical_signature"


def test_non_canonical_r_refused() -> None:
    tx = _tx()
    with pytest.raises(InvalidTransaction) as e:
        Transaction.decode(_with(tx, signature=NON_CANONICAL_POINTS[2] + tx.signature[32:]))
    assert e.value.cause == "non_canonical_signature"


def test_honest_signatures_pass_and_libsodium_agrees() -> None:
    """Every check agrees with libsodium on the refusals it makes: nothing strict refuses an
    honest key, and libsodium refuses what the strict checks refuse."""
    for seed in range(50):
        tx = sign_tx(Signer.from_seed(bytes([seed])), chain_id=1, nonce=seed, to=CONTRACT,
                     method="m")
        Transaction.decode(tx.raw).verify_signature()
    for point in SMALL_ORDER_POINTS:
        with pytest.raises(Exception, match="forged or corrupt"):
            crypto_sign_open(b"\x01" + bytes(31) + bytes(32) + b"any message", point)
