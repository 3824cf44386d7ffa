"""A certificate authority and server certificates for one lab run (``cryptography``).

Every run gets its own CA; nginx presents a server certificate for ``localhost`` and
``127.0.0.1`` signed by it, and clients trust the run's ``ca.pem`` (never the system store).
Variants make the TLS-failure scenarios: ``expired``, ``wrong-host`` (a certificate for another
name) and ``untrusted`` (signed by a second CA that is not in ``ca.pem``). Keys are ECDSA P-256.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")
WRONG_HOST = "wrong-host.invalid"


@dataclass(frozen=True)
class TlsFiles:
    """Paths written by :func:`write_tls`: the CA clients must trust, nginx's cert and key."""

    ca: Path
    cert: Path
    key: Path


def _name(cn: str) -> x509.Name:
    # X.509 caps a common name at 64 characters; run ids of long lab names exceed it
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dubhe Channel Lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn[:64])])


def make_ca(cn: str, not_before: dt.datetime, not_after: dt.datetime
            ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(cn)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, names: tuple[str, ...],
          ips: tuple[str, ...], not_before: dt.datetime, not_after: dt.datetime
          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate for ``names`` and ``ips`` signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    san += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0] if names else ips[0])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_tls(directory: Path, run_id: str, variant: str = "valid",
              now: dt.datetime | None = None) -> TlsFiles:
    """Write ``ca.pem``, ``server.pem`` and ``server.key`` (mode 0600) into ``directory``."""
    now = now or dt.datetime.now(dt.UTC)
    directory.mkdir(parents=True, exist_ok=True)
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=2)
    ca_cert, ca_key = make_ca(f"Dubhe Lab CA {run_id}", start, end)
    signer_cert, signer_key = ca_cert, ca_key
    names: tuple[str, ...] = SERVER_NAMES
    ips: tuple[str, ...] = SERVER_IPS
    not_before, not_after = start, end
    if variant == "untrusted":
        signer_cert, signer_key = make_ca(f"Untrusted CA {run_id}", start, end)
    elif variant == "expired":
        not_before, not_after = now - dt.timedelta(days=30), now - dt.timedelta(days=1)
    elif variant == "wrong-host":
        names, ips = (WRONG_HOST,), ()
    elif variant != "valid":
        raise ValueError(f"unknown certificate variant {variant!r}")
    cert, key = issue(signer_cert, signer_key, names, ips, not_before, not_after)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca.write_bytes(_pem(ca_cert))
    # nginx wants the chain it sends: the server certificate, then its issuer.
    files.cert.write_bytes(_pem(cert) + _pem(signer_cert))
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(_key_pem(key))
    return files
