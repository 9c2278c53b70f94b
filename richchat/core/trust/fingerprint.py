"""Key fingerprints: ``SHA256:`` + unpadded base64 of the SHA-256 of the public key.

The hashed bytes are the DER ``SubjectPublicKeyInfo`` of the certificate (the public key and
its algorithm), not the certificate: a pin survives re-issuing the certificate with the same
key (a new expiry date, other host names). The text form is the one ``ssh-keygen -l`` prints.
The same value from a certificate file with openssl::

    openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform DER \\
        | openssl dgst -sha256 -binary | base64 | tr -d '='

Pure: a certificate's ``SubjectPublicKeyInfo`` is found with a minimal DER reader (a
certificate is a SEQUENCE whose first element, the TBSCertificate, holds it as its seventh
element, after an optional version), so clients never import ``cryptography``. A test checks
it against ``cryptography`` and openssl on many certificates. ``hashlib`` is imported when a
certificate is hashed: reading and checking a fingerprint (every ``richchat send`` reads the
known-servers file) does not need it, nor does a send over plaintext.
"""

from __future__ import annotations

import base64
import binascii
import re

PREFIX = "SHA256:"
_B64_LEN = 43  # 32 bytes in base64, without the '=' padding
_FORMAT = re.compile(r"^[A-Za-z0-9+/]{43}=?$")


class BadCertificate(ValueError):
    """The bytes are not a DER X.509 certificate this reader understands."""


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the content, end of the element) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise BadCertificate("truncated DER element")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise BadCertificate("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise BadCertificate("truncated DER element")
    return tag, pos, end


_SEQUENCE = 0x30
_VERSION = 0xA0  # [0] EXPLICIT Version


def spki_from_certificate(der: bytes) -> bytes:
    """The DER ``SubjectPublicKeyInfo`` (whole element) of a DER X.509 certificate."""
    tag, start, _end = _tlv(der, 0)
    if tag != _SEQUENCE:
        raise BadCertificate("not a certificate (no outer SEQUENCE)")
    tag, pos, tbs_end = _tlv(der, start)
    if tag != _SEQUENCE:
        raise BadCertificate("not a certificate (no TBSCertificate)")
    # version? serialNumber signature issuer validity subject subjectPublicKeyInfo
    tag, _, end = _tlv(der, pos)
    if tag == _VERSION:
        pos = end
    for _ in range(5):
        _, _, pos = _tlv(der, pos)
        if pos > tbs_end:
            raise BadCertificate("truncated TBSCertificate")
    tag, _, end = _tlv(der, pos)
    if tag != _SEQUENCE or end > tbs_end:
        raise BadCertificate("no SubjectPublicKeyInfo where one belongs")
    return der[pos:end]


def fingerprint_of_spki(spki_der: bytes) -> str:
    import hashlib

    return fingerprint_of_digest(hashlib.sha256(spki_der).digest())


def fingerprint_of_certificate(der: bytes) -> str:
    """The fingerprint of a DER certificate's public key."""
    return fingerprint_of_spki(spki_from_certificate(der))


def parse_fingerprint(text: str) -> str:
    """A fingerprint as users type it, in canonical form; ValueError if it is not one.

    ``SHA256:`` may be written in any case; a trailing ``=`` (padded base64) is accepted.
    """
    text = text.strip()
    if text[:7].upper() != PREFIX.upper():
        raise ValueError(f"{text[:20]!r} is not a fingerprint: it starts with SHA256:")
    body = text[7:]
    if not _FORMAT.match(body):
        raise ValueError(
            f"{text[:60]!r} is not a fingerprint: SHA256: is followed by 43 base64 characters"
        )
    body = body.rstrip("=")
    try:
        digest = base64.b64decode(body + "=", validate=True)
        if len(digest) != 32:
            raise ValueError("not 32 bytes")
    except (binascii.Error, ValueError):
        raise ValueError(f"{text[:60]!r} is not a SHA-256 fingerprint") from None
    # canonical: 43 characters carry 258 bits, and the decoder ignores the last 2; kept as
    # typed, a last character with them set named the right key but never equalled it
    return fingerprint_of_digest(digest)


def fingerprint_of_digest(digest: bytes) -> str:
    return PREFIX + base64.b64encode(digest).decode("ascii").rstrip("=")


def is_fingerprint(text: str) -> bool:
    try:
        parse_fingerprint(text)
    except ValueError:
        return False
    return True


def short(fingerprint: str, chars: int = 12) -> str:
    """``SHA256:AbCdEfGhIjKl…``: enough to recognise a key at a glance (a header)."""
    if not fingerprint.startswith(PREFIX) or len(fingerprint) <= len(PREFIX) + chars:
        return fingerprint
    return fingerprint[: len(PREFIX) + chars] + "…"
