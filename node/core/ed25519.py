"""Strict Ed25519 encoding checks, as libsodium's ``crypto_sign_verify_detached`` makes them.

Ed25519 as specified (RFC 8032) lets some odd keys and signatures through: a *small-order*
public key (one of the 8 points of the curve's torsion subgroup, the identity included) with a
small-order ``R`` and ``S = 0`` "verifies" for every message, so whoever picks such a key can
"sign" anything as its address; non-canonical encodings of the same point or scalar give one
transaction several valid byte forms (malleability). libsodium refuses all of them, and so does
the node, before any signature arithmetic and with a cause that names the problem:

* ``non_canonical_key``: the public key's y coordinate is not reduced (y >= p);
* ``small_order_key``: the public key is a small-order point;
* ``non_canonical_signature``: ``S`` is not reduced (S >= L), or ``R``'s y is not reduced;
* ``small_order_signature``: ``R`` is a small-order point.

Pure and cheap (byte comparisons and one integer compare); stdlib only.
"""

from __future__ import annotations

#: The field prime p = 2**255 - 19.
P = 2**255 - 19
#: The order L of the prime-order subgroup (the base point's order).
L = 2**252 + 27742317777372353535851937790883648493

#: Encodings (y, sign bit cleared) of every point of order 1, 2, 4 or 8, canonical or not:
#: libsodium's ``has_small_order`` list. Comparing with the sign bit cleared covers the sign
#: variants, so this catches all 8 torsion points and their non-canonical spellings.
SMALL_ORDER_Y: frozenset[bytes] = frozenset(
    bytes.fromhex(h)
    for h in (
        # y = 0: the two points of order 4, (+-sqrt(-1), 0)
        "0000000000000000000000000000000000000000000000000000000000000000",
        # y = 1: the identity (order 1)
        "0100000000000000000000000000000000000000000000000000000000000000",
        # the points of order 8 (two y values, each with two x signs)
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        # y = p - 1: the point of order 2, (0, -1)
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        # y = p and y = p + 1: non-canonical spellings of y = 0 and y = 1
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
)


def _y(encoded: bytes) -> bytes:
    """The 32-byte encoding with the x sign bit (bit 255) cleared."""
    return encoded[:31] + bytes((encoded[31] & 0x7F,))


def is_canonical_point(encoded: bytes) -> bool:
    """False when the encoded y coordinate is not reduced modulo p (y >= p)."""
    return int.from_bytes(_y(encoded), "little") < P


def has_small_order(encoded: bytes) -> bool:
    """True for an encoding of a point of order 1, 2, 4 or 8 (any spelling)."""
    return _y(encoded) in SMALL_ORDER_Y


def key_problem(public_key: bytes) -> str | None:
    """The cause refusing ``public_key`` (32 bytes), or None when it is acceptable."""
    if not is_canonical_point(public_key):
        return "non_canonical_key"
    if has_small_order(public_key):
        return "small_order_key"
    return None


def signature_problem(signature: bytes) -> str | None:
    """The cause refusing ``signature`` (64 bytes: R then S), or None when its encoding is
    acceptable (whether it verifies is a separate question)."""
    r, s = signature[:32], signature[32:]
    if int.from_bytes(s, "little") >= L or not is_canonical_point(r):
        return "non_canonical_signature"
    if has_small_order(r):
        return "small_order_signature"
    return None
