"""The run's CA and server certificates, checked with the ssl module as a client would."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from lab.nginx.tls import WRONG_HOST, write_tls


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def test_valid_certificate_for_localhost_signed_by_the_run_ca(tmp_path: Path) -> None:
    files = write_tls(tmp_path, "r1")
    cert = _cert(files.cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    ca = _cert(files.ca)
    cert.verify_directly_issued_by(ca)
    assert files.key.stat().st_mode & 0o077 == 0
    ctx = ssl.create_default_context(cafile=str(files.ca))  # the CA loads as a trust anchor
    assert ctx.cert_store_stats()["x509_ca"] == 1


def test_each_run_has_its_own_ca(tmp_path: Path) -> None:
    a, b = write_tls(tmp_path / "a", "a"), write_tls(tmp_path / "b", "b")
    assert a.ca.read_bytes() != b.ca.read_bytes()


def test_variants(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    expired = _cert(write_tls(tmp_path / "e", "e", "expired", now).cert)
    assert expired.not_valid_after_utc < now
    wrong = _cert(write_tls(tmp_path / "w", "w", "wrong-host").cert)
    names = wrong.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [WRONG_HOST]
    untrusted = write_tls(tmp_path / "u", "u", "untrusted")
    with pytest.raises(ValueError):
        _cert(untrusted.cert).verify_directly_issued_by(_cert(untrusted.ca))
    with pytest.raises(ValueError, match="unknown certificate variant"):
        write_tls(tmp_path / "x", "x", "shiny")
