"""Signed transactions: fields, canonical encoding, hash, Ed25519 signing and verification.

Wire form: the canonical encoding of :class:`Transaction` (see :mod:`node.core.codec`), hex in
JSON. The signature covers ``DOMAIN + unsigned encoding`` (which includes the chain id, so a
transaction cannot be replayed on another chain). The sender's address is the last 20 bytes of
SHA3-256 of its 32-byte Ed25519 public key; the hash is SHA3-256 of the full signed encoding.

Signing uses ``cryptography`` (OpenSSL); verification uses libsodium (PyNaCl), which is about
twice as fast here and releases the GIL, so admission can verify a list of transactions on
several threads at once. Ed25519 signatures are deterministic, so both agree on every honest
signature; libsodium is the stricter of the two (it also refuses small-order public keys and
non-canonical encodings), and it is the only verifier the node uses. Those strict rules are also
checked on their own at decode time (:mod:`node.core.ed25519`), so a refusal names its cause
(``small_order_key``, ``non_canonical_key``, ``small_order_signature``,
``non_canonical_signature``) instead of a bare ``bad_signature``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError

from node.core import ed25519, keys
from node.core.codec import DecodeError, Reader, Writer, sha3
from node.core.errors import InvalidTransaction

DOMAIN = b"DUBHE-TX-v1\x00"
VERSION = 1

MAX_TX_BYTES = 128 * 1024
MAX_ARGS_BYTES = 64 * 1024
MAX_SET_LEN = 128  # Solana's MAX_TX_ACCOUNT_LOCKS
MAX_METHOD_LEN = 64
MAX_GAS_LIMIT = 1_000_000_000
_METHOD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STRICT = {
    "non_canonical_key": "public_key: not a canonical Ed25519 point encoding (y >= p)",
    "small_order_key": "public_key: a small-order Ed25519 point (it would verify any message)",
    "non_canonical_signature": "signature: not canonical (S >= L or R's y >= p)",
    "small_order_signature": "signature: R is a small-order Ed25519 point",
}


def address_of(public_key: bytes) -> bytes:
    """20-byte address derived from a 32-byte Ed25519 public key."""
    return sha3(public_key)[-keys.ADDRESS_LEN :]


@dataclass(frozen=True)
class Transaction:
    """A signed transaction. Construct with :func:`sign_tx` or :meth:`decode`.

    ``read_set`` / ``write_set`` are full state keys (:mod:`node.core.keys`); schedulers that need
    declarations use them, and every strategy rejects an access outside them identically.
    """

    chain_id: int
    nonce: int
    to: bytes
    method: str
    args: bytes
    read_set: tuple[bytes, ...]
    write_set: tuple[bytes, ...]
    gas_limit: int
    public_key: bytes
    signature: bytes = field(default=b"", compare=True)

    # -- encoding -------------------------------------------------------------------------
    def unsigned_bytes(self) -> bytes:
        return (
            Writer()
            .u8(VERSION)
            .u64(self.chain_id)
            .u64(self.nonce)
            .raw(self.to)
            .str_(self.method)
            .bytes_(self.args)
            .bytes_list(self.read_set)
            .bytes_list(self.write_set)
            .u64(self.gas_limit)
            .raw(self.public_key)
            .finish()
        )

    def encode(self) -> bytes:
        return self.unsigned_bytes() + self.signature

    @cached_property
    def raw(self) -> bytes:
        return self.encode()

    @cached_property
    def hash(self) -> bytes:
        return sha3(self.raw)

    @cached_property
    def sender(self) -> bytes:
        return address_of(self.public_key)

    @staticmethod
    def decode(raw: bytes) -> Transaction:
        """Decode and check the structure (not the signature or nonce).

        Raises :class:`InvalidTransaction` whose cause names the problem.
        """
        if len(raw) > MAX_TX_BYTES:
            raise InvalidTransaction(
                "oversize", f"{len(raw)} bytes exceed the maximum {MAX_TX_BYTES}"
            )
        try:
            r = Reader(raw)
            version = r.u8("version")
            if version != VERSION:
                raise DecodeError(f"version: unsupported version {version}")
            tx = Transaction(
                chain_id=r.u64("chain_id"),
                nonce=r.u64("nonce"),
                to=r.raw(keys.ADDRESS_LEN, "to"),
                method=r.str_("method", MAX_METHOD_LEN),
                args=r.bytes_("args", MAX_ARGS_BYTES),
                read_set=r.bytes_list("read_set", MAX_SET_LEN, keys.MAX_KEY_LEN),
                write_set=r.bytes_list("write_set", MAX_SET_LEN, keys.MAX_KEY_LEN),
                gas_limit=r.u64("gas_limit"),
                public_key=r.raw(32, "public_key"),
                signature=r.raw(64, "signature"),
            )
            r.end()
        except DecodeError as e:
            raise InvalidTransaction("malformed", str(e)) from None
        tx.check_fields()
        # The encoding is canonical (fixed-width integers, length-prefixed fields, strict UTF-8,
        # nothing trailing): re-encoding gives ``raw`` back, so keep it rather than rebuild it.
        tx.__dict__["raw"] = bytes(raw)
        return tx

    def check_fields(self) -> None:
        """Field-level rules beyond the encoding; raises :class:`InvalidTransaction`."""
        if not _METHOD_RE.match(self.method):
            raise InvalidTransaction(
                "malformed", "method: must be an identifier [A-Za-z_][A-Za-z0-9_]*"
            )
        if not 0 < self.gas_limit <= MAX_GAS_LIMIT:
            raise InvalidTransaction("malformed", f"gas_limit: must be 1..{MAX_GAS_LIMIT}")
        for name, ks in (("read_set", self.read_set), ("write_set", self.write_set)):
            for i, k in enumerate(ks):
                if not keys.is_storage_key(k):
                    raise InvalidTransaction(
                        "malformed", f"{name}[{i}]: not a storage key (b's' + contract(20) + slot)"
                    )
            if len(set(ks)) != len(ks):
                raise InvalidTransaction("malformed", f"{name}: duplicate keys")
        if len(self.signature) != 64:
            raise InvalidTransaction("malformed", "signature: must be 64 bytes")
        if len(self.public_key) != 32:
            raise InvalidTransaction("malformed", "public_key: must be 32 bytes")
        cause = ed25519.key_problem(self.public_key)
        if cause is not None:
            raise InvalidTransaction(cause, _STRICT[cause])
        cause = ed25519.signature_problem(self.signature)
        if cause is not None:
            raise InvalidTransaction(cause, _STRICT[cause])

    def verify_signature(self) -> None:
        """Raises ``InvalidTransaction("bad_signature")`` unless the signature verifies (or the
        strict-encoding cause, see the module docstring). Safe to call from several threads
        (libsodium releases the GIL)."""
        raw = self.raw
        if len(self.signature) != 64 or len(self.public_key) != 32:
            raise InvalidTransaction("bad_signature", "signature does not verify")
        cause = ed25519.key_problem(self.public_key) or ed25519.signature_problem(self.signature)
        if cause is not None:
            raise InvalidTransaction(cause, _STRICT[cause])
        try:
            crypto_sign_open(self.signature + DOMAIN + raw[:-64], self.public_key)
        except (BadSignatureError, NaclValueError, ValueError):
            raise InvalidTransaction("bad_signature", "signature does not verify") from None

    @cached_property
    def _reads(self) -> frozenset[bytes]:
        return (
            frozenset(self.read_set)
            | frozenset(self.write_set)
            | frozenset(keys.implicit_keys(self.sender))
        )

    @cached_property
    def _writes(self) -> frozenset[bytes]:
        return frozenset(self.write_set) | frozenset(keys.implicit_keys(self.sender))

    def declared_reads(self) -> frozenset[bytes]:
        """Keys the transaction may read: its declared sets plus the implicit nonce key (cached)."""
        return self._reads

    def declared_writes(self) -> frozenset[bytes]:
        """Keys the transaction may write: its write set plus the implicit nonce key (cached)."""
        return self._writes


class Signer:
    """An Ed25519 key pair that signs transactions (clients, demos, tests)."""

    def __init__(self, private: Ed25519PrivateKey | None = None) -> None:
        self._sk = private or Ed25519PrivateKey.generate()
        self.public_key = self._sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.address = address_of(self.public_key)

    @classmethod
    def from_seed(cls, seed: bytes) -> Signer:
        """Deterministic key from a seed (hashed to 32 bytes): for tests, demos and workloads."""
        return cls(Ed25519PrivateKey.from_private_bytes(sha3(b"dubhe-key" + seed)))

    def sign(self, message: bytes) -> bytes:
        return self._sk.sign(message)


def sign_tx(
    signer: Signer,
    *,
    chain_id: int,
    nonce: int,
    to: bytes,
    method: str,
    args: bytes = b"",
    read_set: tuple[bytes, ...] = (),
    write_set: tuple[bytes, ...] = (),
    gas_limit: int = 1_000_000,
) -> Transaction:
    unsigned = Transaction(
        chain_id=chain_id,
        nonce=nonce,
        to=to,
        method=method,
        args=args,
        read_set=tuple(read_set),
        write_set=tuple(write_set),
        gas_limit=gas_limit,
        public_key=signer.public_key,
    )
    return dataclasses.replace(unsigned, signature=signer.sign(DOMAIN + unsigned.unsigned_bytes()))
