"""Transactions at their edges: known-answer vectors (RFC 8032's key -> address, a transaction's
encoding, signature and hash, field by field), every limit at N-1, N and N+1, and the field rules
decode cannot reach (lengths of a transaction built in code)."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.core import keys
from node.core.errors import InvalidTransaction
from node.core.tx import (
    DOMAIN,
    MAX_ARGS_BYTES,
    MAX_GAS_LIMIT,
    MAX_METHOD_LEN,
    MAX_SET_LEN,
    MAX_TX_BYTES,
    Signer,
    Transaction,
    address_of,
    sign_tx,
)

SIGNER = Signer.from_seed(b"test")
CONTRACT = bytes(19) + b"\x07"


def _tx(**kw: object) -> Transaction:
    base: dict[str, object] = dict(chain_id=1, nonce=0, to=CONTRACT, method="transfer", args=b"x")
    base.update(kw)
    return sign_tx(SIGNER, **base)  # type: ignore[arg-type]


# -- known answers: another implementation can check itself against these ---------------------

RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")


def test_known_answer_key_to_address() -> None:
    """RFC 8032's first test key: address = the last 20 bytes of SHA3-256(public key)."""
    signer = Signer(Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET))
    assert signer.public_key == RFC8032_PUBLIC
    assert address_of(RFC8032_PUBLIC).hex() == "5232fcef6f76c5d5eb6a0663bacf8ccccf0d092b"
    assert signer.address == address_of(RFC8032_PUBLIC)


def test_known_answer_transaction_encoding_signature_and_hash() -> None:
    """The wire form field by field (node.core.codec), the deterministic Ed25519 signature over
    DOMAIN + unsigned bytes, and the hash (SHA3-256 of the signed encoding)."""
    signer = Signer(Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET))
    ka, kb = keys.storage_key(CONTRACT, b"a"), keys.storage_key(CONTRACT, b"b")
    tx = sign_tx(signer, chain_id=7, nonce=3, to=CONTRACT, method="transfer", args=b"\x01\x02",
                 read_set=(ka,), write_set=(kb,), gas_limit=50_000)

    def u32(n: int) -> bytes:
        return n.to_bytes(4, "big")

    unsigned = (b"\x01"  # version
                + (7).to_bytes(8, "big") + (3).to_bytes(8, "big")  # chain id, nonce
                + CONTRACT  # to: 20 bytes, no length
                + u32(8) + b"transfer" + u32(2) + b"\x01\x02"  # method, args
                + u32(1) + u32(len(ka)) + ka + u32(1) + u32(len(kb)) + kb  # read, write sets
                + (50_000).to_bytes(8, "big") + RFC8032_PUBLIC)  # gas limit, public key
    assert tx.unsigned_bytes() == unsigned
    assert DOMAIN == b"DUBHE-TX-v1\x00"
    assert tx.signature.hex() == (
        "385eba61f025a397e7abc2f1c4c60160f82153075b4d1e002186976cdd922c95"
        "e73f4f098dada70413edfd8645df2a8811b6cbce18b49ca5ff66e9564a46190b")
    assert tx.raw == tx.encode() == unsigned + tx.signature
    assert tx.hash.hex() == "bc30bce26e7f09c86dc565cda8dc9a9792abaf62da409e3d3c8dc93d820317aa"
    back = Transaction.decode(tx.raw)
    assert back == tx and back.hash == tx.hash and back.sender == signer.address
    back.verify_signature()


# -- every limit at N-1, N, N+1 ---------------------------------------------------------------

def test_the_size_limit_is_checked_before_decoding_at_its_edge() -> None:
    for n in (MAX_TX_BYTES - 1, MAX_TX_BYTES):  # within the limit: decoded, then malformed
        with pytest.raises(InvalidTransaction) as e:
            Transaction.decode(b"\x01" * n)
        assert e.value.cause == "malformed"
    with pytest.raises(InvalidTransaction) as e:
        Transaction.decode(b"\x01" * (MAX_TX_BYTES + 1))
    assert e.value.cause == "oversize"
    assert str(e.value).endswith(f"{MAX_TX_BYTES + 1} bytes exceed the maximum {MAX_TX_BYTES}")


@pytest.mark.parametrize(("gas", "ok"), [(0, False), (1, True), (2, True),
                                         (MAX_GAS_LIMIT - 1, True), (MAX_GAS_LIMIT, True),
                                         (MAX_GAS_LIMIT + 1, False)])
def test_the_gas_limit_is_1_to_max(gas: int, ok: bool) -> None:
    raw = _tx(gas_limit=gas).raw
    if ok:
        assert Transaction.decode(raw).gas_limit == gas
    else:
        with pytest.raises(InvalidTransaction, match="malformed") as e:
            Transaction.decode(raw)
        assert f"gas_limit: must be 1..{MAX_GAS_LIMIT}" in str(e.value)


@pytest.mark.parametrize(("field", "limit", "make"), [
    ("method", MAX_METHOD_LEN, lambda n: {"method": "m" * n}),
    ("args", MAX_ARGS_BYTES, lambda n: {"args": bytes(n)}),
    ("read_set", MAX_SET_LEN,
     lambda n: {"read_set": tuple(keys.storage_key(CONTRACT, i.to_bytes(2, "big"))
                                  for i in range(n))}),
    ("write_set", MAX_SET_LEN,
     lambda n: {"write_set": tuple(keys.storage_key(CONTRACT, i.to_bytes(2, "big"))
                                   for i in range(n))}),
])
def test_field_length_limits_admit_n_and_refuse_n_plus_1(field: str, limit: int,
                                                         make: object) -> None:
    for n in (limit - 1, limit):
        tx = _tx(**make(n))  # type: ignore[operator]
        assert Transaction.decode(tx.raw) == tx
    with pytest.raises(InvalidTransaction, match="malformed") as e:
        Transaction.decode(_tx(**make(limit + 1)).raw)  # type: ignore[operator]
    message = str(e.value)
    assert message.startswith(f"malformed: {field}: ") and f"the maximum {limit}" in message


def test_storage_keys_in_the_sets_are_checked_one_by_one_with_their_index() -> None:
    good = keys.storage_key(CONTRACT, b"a")
    for name in ("read_set", "write_set"):
        tx = _tx(**{name: (good, keys.nonce_key(SIGNER.address))})
        with pytest.raises(InvalidTransaction, match="malformed") as e:
            Transaction.decode(tx.raw)
        assert f"{name}[1]: not a storage key" in str(e.value)
        tx = _tx(**{name: (good, keys.storage_key(CONTRACT, b"b"), good)})
        with pytest.raises(InvalidTransaction, match=f"{name}: duplicate keys"):
            Transaction.decode(tx.raw)


def test_signature_and_key_lengths_are_checked_on_the_fields() -> None:
    """decode always reads 64 + 32 bytes (a short one is truncated, see above), so the length
    rules guard transactions built in code: check_fields and verify_signature refuse them."""
    tx = _tx()
    for short in (dataclasses.replace(tx, signature=tx.signature[:63]),
                  dataclasses.replace(tx, signature=tx.signature + b"\x00")):
        with pytest.raises(InvalidTransaction, match="signature: must be 64 bytes"):
            short.check_fields()
        with pytest.raises(InvalidTransaction, match="bad_signature"):
            short.verify_signature()
    for key in (tx.public_key[:31], tx.public_key + b"\x00"):
        bad = dataclasses.replace(tx, public_key=key)
        with pytest.raises(InvalidTransaction, match="public_key: must be 32 bytes"):
            bad.check_fields()
        with pytest.raises(InvalidTransaction, match="bad_signature"):
            bad.verify_signature()
    with pytest.raises(InvalidTransaction, match="method: must be an identifier"):
        dataclasses.replace(tx, method="9lives").check_fields()
    tx.check_fields()  # the honest one passes


def test_declared_reads_cover_the_write_set_too() -> None:
    r, w = keys.storage_key(CONTRACT, b"r"), keys.storage_key(CONTRACT, b"w")
    tx = _tx(read_set=(r,), write_set=(w,))
    nonce = keys.nonce_key(SIGNER.address)
    assert tx.declared_reads() == {r, w, nonce}
    assert tx.declared_writes() == {w, nonce}


def test_a_truncated_encoding_names_the_field_it_stopped_in() -> None:
    k = keys.storage_key(CONTRACT, b"a")
    tx = _tx(read_set=(k,), write_set=(keys.storage_key(CONTRACT, b"b"),), args=b"xy")
    raw = tx.raw
    fields = []  # (name, end offset of the field)
    pos = 1 + 8
    fields.append(("chain_id", pos))
    pos += 8
    fields.append(("nonce", pos))
    pos += 20
    fields.append(("to", pos))
    pos += 4 + len("transfer")
    fields.append(("method", pos))
    pos += 4 + 2
    fields.append(("args", pos))
    pos += 4 + 4 + len(k)
    fields.append(("read_set", pos - len(k) - 4))  # its count
    fields.append(("read_set[0]", pos))
    pos += 4 + 4 + len(k)
    fields.append(("write_set", pos - len(k) - 4))
    fields.append(("write_set[0]", pos))
    pos += 8
    fields.append(("gas_limit", pos))
    pos += 32
    fields.append(("public_key", pos))
    assert pos + 64 == len(raw)
    for name, end in fields:
        with pytest.raises(InvalidTransaction) as e:
            Transaction.decode(raw[: end - 1])
        assert str(e.value).startswith(f"malformed: {name}: truncated"), (name, str(e.value))


def test_signers_and_sign_tx_defaults() -> None:
    assert Signer().address != Signer().address  # a fresh random key each
    seeded = Signer.from_seed(b"test")  # deterministic: SHA3-256(b"dubhe-key" + seed)
    assert seeded.public_key.hex() == (
        "2a29524a377916a55400447fdc1d0aedae73ab47748a9fdefece67bf7a12ed01")
    assert seeded.address == address_of(seeded.public_key)
    tx = sign_tx(seeded, chain_id=1, nonce=0, to=CONTRACT, method="m")
    assert (tx.args, tx.read_set, tx.write_set, tx.gas_limit) == (b"", (), (), 1_000_000)
    assert tx.public_key == seeded.public_key
    Transaction.decode(tx.raw).verify_signature()


def test_strict_refusals_say_what_is_wrong() -> None:
    from node.core import ed25519

    tx = _tx()
    small = dataclasses.replace(tx, public_key=bytes.fromhex("01" + "00" * 31))
    for check in (small.check_fields, small.verify_signature):
        with pytest.raises(InvalidTransaction) as e:
            check()
        assert str(e.value) == ("small_order_key: public_key: a small-order Ed25519 point "
                                "(it would verify any message)")
    high_s = dataclasses.replace(tx, signature=tx.signature[:32] + ed25519.L.to_bytes(32,
                                                                                     "little"))
    for check in (high_s.check_fields, high_s.verify_signature):
        with pytest.raises(InvalidTransaction) as e:
            check()
        assert str(e.value) == ("non_canonical_signature: signature: not canonical "
                                "(S >= L or R's y >= p)")
    with pytest.raises(InvalidTransaction) as e:
        dataclasses.replace(tx, signature=tx.signature[:63]).verify_signature()
    assert str(e.value) == "bad_signature: signature does not verify"


def test_every_field_refusal_is_malformed_with_its_exact_message() -> None:
    tx = _tx()
    nonce_key = keys.nonce_key(SIGNER.address)
    k = keys.storage_key(CONTRACT, b"a")
    cases = [
        (dataclasses.replace(tx, method="9lives"),
         "method: must be an identifier [A-Za-z_][A-Za-z0-9_]*"),
        (dataclasses.replace(tx, gas_limit=0), "gas_limit: must be 1..1000000000"),
        (dataclasses.replace(tx, write_set=(k, nonce_key)),
         "write_set[1]: not a storage key (b's' + contract(20) + slot)"),
        (dataclasses.replace(tx, read_set=(k, k)), "read_set: duplicate keys"),
        (dataclasses.replace(tx, signature=tx.signature[:10]), "signature: must be 64 bytes"),
        (dataclasses.replace(tx, public_key=tx.public_key[:10]), "public_key: must be 32 bytes"),
    ]
    for bad, message in cases:
        with pytest.raises(InvalidTransaction) as e:
            bad.check_fields()
        assert (e.value.cause, str(e.value)) == ("malformed", f"malformed: {message}")


def test_a_signature_that_does_not_verify_says_so() -> None:
    tx = _tx()
    other = sign_tx(Signer.from_seed(b"other"), chain_id=1, nonce=0, to=CONTRACT,
                    method="transfer", args=b"x")
    forged = Transaction.decode(tx.unsigned_bytes() + other.signature)
    with pytest.raises(InvalidTransaction) as e:
        forged.verify_signature()
    assert (e.value.cause, str(e.value)) == ("bad_signature",
                                             "bad_signature: signature does not verify")
