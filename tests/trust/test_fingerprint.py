"""Fingerprints: the pure DER reader agrees with cryptography and with openssl's recipe."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from richchat.core.trust.fingerprint import (
    BadCertificate,
    fingerprint_of_certificate,
    is_fingerprint,
    parse_fingerprint,
    short,
    spki_from_certificate,
)
from tests.tlskit import openssl_fingerprint, openssl_keypair

KEYS = {
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}
_KEY_CACHE = {name: make() for name, make in KEYS.items()}


def _cert(key: object, cn: str, sans: list[str], version_1: bool = False) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key())  # type: ignore[attr-defined]
               .serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1)))
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    algo = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algo).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]


def _expected(key: object) -> str:
    spki = key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + base64.b64encode(hashlib.sha256(spki).digest()).decode().rstrip("=")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key_name=st.sampled_from(sorted(KEYS)),
    cn=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF,
                                      blacklist_categories=("Cs",)), min_size=1, max_size=64),
    sans=st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,30}(\.[a-z]{2,8}){0,3}", fullmatch=True),
                  max_size=40),
)
def test_der_reader_matches_cryptography(key_name: str, cn: str, sans: list[str]) -> None:
    """Long names and many SANs push lengths into the multi-byte DER forms."""
    key = _KEY_CACHE[key_name]
    der = _cert(key, cn, sans)
    assert fingerprint_of_certificate(der) == _expected(key)


def test_matches_openssl_recipe(tmp_path: Path) -> None:
    """What docs/security.md tells users to run gives the same text."""
    for kind in ("ec", "rsa", "ed25519"):
        pair = openssl_keypair(tmp_path, kind, kind=kind)
        der = x509.load_pem_x509_certificate(pair.cert.read_bytes()).public_bytes(
            serialization.Encoding.DER)
        assert fingerprint_of_certificate(der) == openssl_fingerprint(pair.cert)


def test_same_key_new_certificate_same_fingerprint() -> None:
    key = _KEY_CACHE["p256"]
    assert fingerprint_of_certificate(_cert(key, "a", ["a"])) == fingerprint_of_certificate(
        _cert(key, "b", ["b", "c"]))


@pytest.mark.parametrize("data", [b"", b"\x30", b"\x02\x01\x00", b"\x30\x84\xff\xff\xff\xff",
                                  b"\x30\x03\x30\x01\x00", b"not a certificate at all"])
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(BadCertificate):
        spki_from_certificate(data)


@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    with contextlib.suppress(BadCertificate):
        spki_from_certificate(data)


def test_truncated_certificate_is_refused() -> None:
    der = _cert(_KEY_CACHE["p256"], "x", ["x"])
    for cut in (10, 50, len(der) // 2):
        with pytest.raises(BadCertificate):
            spki_from_certificate(der[:cut])


def test_parse_fingerprint_forms() -> None:
    body = "A" * 42 + "E"
    assert parse_fingerprint(f"SHA256:{body}") == f"SHA256:{body}"
    assert parse_fingerprint(f"  sha256:{body}=  ") == f"SHA256:{body}"
    for bad in ("", "SHA256:", f"MD5:{body}", f"SHA256:{body[:-1]}", f"SHA256:{body}x",
                f"SHA256:{body[:-1]}!", "SHA256:" + "A" * 44):
        with pytest.raises(ValueError):
            parse_fingerprint(bad)
        assert not is_fingerprint(bad)


def test_short() -> None:
    fp = "SHA256:" + "abcdefghijkl" + "A" * 31
    assert short(fp) == "SHA256:abcdefghijkl…"
    assert short("weird") == "weird"
