"""TLS on the chat port: the key and certificate, the SSL context, and bounded handshakes.

* **Key and certificate.** ``--tls`` without files: on first start an ECDSA P-256 key and a
  self-signed certificate (subjectAltName: this machine's host names and addresses) are
  written to the data directory (``tls-key.pem`` with mode 0600, ``tls-cert.pem``) and reused
  on every later start. A missing certificate next to an existing key is issued again from
  that key, so the fingerprint (and every client's pin) survives. ``--tls-cert FILE
  --tls-key FILE`` use your own (a company CA's, say); clients pin its key all the same.
* **Fingerprint**: ``SHA256:`` + unpadded base64 of the SHA-256 of the DER
  SubjectPublicKeyInfo, as ``ssh-keygen -l`` prints a key's (see
  :mod:`richchat.core.trust.fingerprint`). The start-up line and the log show it.
* **Context**: TLS 1.2 at least, 1.3 preferred (OpenSSL picks the highest both sides have);
  no session tickets (our clients do not resume sessions, and each ticket costs the server an
  encryption per handshake); no renegotiation.
* **The link** (:mod:`richchat.core.server.tls_link`): TLS sits between the TCP transport and
  the connection, an ``ssl.SSLObject`` over memory BIOs, written straight to the socket.
* **Handshakes are bounded** (:class:`HandshakeGate`): a connection that has not finished its
  handshake ``tls_handshake_timeout`` seconds after it was accepted is closed; connections
  still in their handshake count against ``--max-clients`` with the connected ones, and one
  beyond the cap is closed at once, before any cryptography is spent on it. A silent or slow
  handshake costs one socket and a timer, never anyone else's time: the event loop only
  works on bytes that arrive.

The ``cryptography`` package is imported only here, and only when TLS is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from richchat.core.errors import BadFileError
from richchat.core.trust.fingerprint import fingerprint_of_spki

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

log = logging.getLogger("richchat.server")

CERT_FILE = "tls-cert.pem"
KEY_FILE = "tls-key.pem"
#: the generated certificate's lifetime; clients pin the key, so expiry changes nothing for
#: them (and a certificate issued again from the same key keeps every pin)
VALID_DAYS = 3650


@dataclass(frozen=True)
class ServerTls:
    """What the listener needs: the context, and the key's fingerprint to show and announce."""

    context: ssl.SSLContext
    fingerprint: str
    cert_path: Path
    key_path: Path
    #: "generated" (new key now), "reissued" (new certificate for the existing key), "loaded"
    origin: str


# --------------------------------------------------------------------------- files


#: the largest certificate or key file read (a PEM key or chain is a few KB; a CA bundle
#: a few hundred): /dev/zero, or a huge file named by mistake, was read whole into memory
MAX_PEM_BYTES = 4 << 20


def _read(path: Path, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_PEM_BYTES + 1)
        if len(data) > MAX_PEM_BYTES:
            raise BadFileError(f"TLS {what} file {path} is too large (over "
                               f"{MAX_PEM_BYTES >> 20} MiB): not a PEM {what}")
        return data
    except FileNotFoundError:
        raise BadFileError(f"TLS {what} file {path} does not exist") from None
    except IsADirectoryError:
        raise BadFileError(f"TLS {what} file {path} is a directory") from None
    except OSError as exc:
        raise BadFileError(f"cannot read the TLS {what} file {path}: {exc.strerror or exc}",
                           hint="the server must be able to read it") from None


def load_certificate(path: Path) -> Certificate:
    """The first certificate of a PEM file (the server's own; a chain may follow)."""
    from cryptography import x509

    data = _read(path, "certificate")
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise BadFileError(f"TLS certificate file {path} holds no PEM certificate",
                           hint="it must start with -----BEGIN CERTIFICATE-----") from None


def load_private_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization

    data = _read(path, "key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise BadFileError(f"TLS key file {path} is encrypted (has a passphrase)",
                           hint="the server starts unattended: give it an unencrypted key, "
                                "readable by its user only (chmod 600)") from None
    except (ValueError, Exception) as exc:  # UnsupportedAlgorithm too
        raise BadFileError(f"TLS key file {path} holds no usable PEM private key "
                           f"({type(exc).__name__})") from None


def _spki(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def certificate_fingerprint(cert: Certificate) -> str:
    return fingerprint_of_spki(_spki(cert.public_key()))


def machine_names() -> tuple[list[str], list[str]]:
    """This machine's host names and addresses, for the certificate's subjectAltName.

    Local only: the host name, its ``.local`` mDNS name, ``localhost``, and every interface
    address (no DNS look-up)."""
    host = socket.gethostname().strip().rstrip(".")
    names = [n for n in dict.fromkeys([host.lower(), f"{host.split('.')[0].lower()}.local",
                                       "localhost"]) if n and n != ".local"]
    addresses = ["127.0.0.1", "::1"]
    try:
        from richchat.core.discovery.interfaces import list_interfaces

        for iface in list_interfaces():
            for addr in iface.addresses:
                addresses.append(addr.address.split("%", 1)[0])
    except Exception as exc:  # no netifaces: the loopback names still go in
        log.debug("interface addresses unavailable for the certificate: %s", exc)
    return names, list(dict.fromkeys(addresses))


def issue_certificate(key: Any, names: list[str], addresses: list[str]) -> Certificate:
    """A self-signed certificate for ``key`` (ECDSA-SHA256), valid for VALID_DAYS."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "richchat"),
        x509.NameAttribute(NameOID.COMMON_NAME, (names[0] if names else "richchat")[:64]),
    ])
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    for addr in addresses:
        with contextlib.suppress(ValueError):
            alt.append(x509.IPAddress(ipaddress.ip_address(addr)))
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a file that must not exist yet (O_EXCL), with ``mode`` from the start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _pem_cert(cert: Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def ensure_generated(data_dir: Path) -> str:
    """The data directory's key and certificate exist afterwards; returns what was done:
    "loaded" (both there), "generated" (a new key), "reissued" (a certificate for the key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    cert_path, key_path = data_dir / CERT_FILE, data_dir / KEY_FILE
    if cert_path.exists() and key_path.exists():
        return "loaded"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadFileError(f"cannot create {data_dir} for the TLS key: "
                           f"{exc.strerror or exc}") from None
    if cert_path.exists() and not key_path.exists():
        raise BadFileError(
            f"TLS certificate {cert_path} is there but its key {key_path} is missing",
            hint="restore the key, or delete the certificate to get a new key "
                 "(every client will see a changed key)",
        )
    origin = "reissued"
    try:
        if not key_path.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            try:
                _write_new(key_path, pem, 0o600)
                origin = "generated"
            except FileExistsError:  # another process made it meanwhile: use that one
                key = load_private_key(key_path)
        else:
            key = load_private_key(key_path)
        names, addresses = machine_names()
        with contextlib.suppress(FileExistsError):
            _write_new(cert_path, _pem_cert(issue_certificate(key, names, addresses)), 0o644)
    except OSError as exc:
        raise BadFileError(f"cannot write the TLS key and certificate in {data_dir}: "
                           f"{exc.strerror or exc}") from None
    return origin


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.num_tickets = 0
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    try:
        ctx.load_cert_chain(cert_path, key_path)
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or getattr(exc, "reason", "") == \
                "KEY_VALUES_MISMATCH":
            raise BadFileError(f"the TLS key {key_path} does not belong to the certificate "
                               f"{cert_path}", hint="give the key the certificate was issued "
                               "for") from None
        raise BadFileError(f"cannot use the TLS certificate {cert_path} with the key "
                           f"{key_path}: {exc.reason or exc}") from None
    except OSError as exc:
        raise BadFileError(f"cannot read the TLS certificate or key: "
                           f"{exc.strerror or exc}") from None
    return ctx


def load_server_tls(data_dir: Path, cert: Path | None = None,
                    key: Path | None = None) -> ServerTls:
    """The TLS set-up for a server: its own files, or the data directory's (made if missing).

    Every problem with the files is a :class:`BadFileError` with one clear line."""
    if (cert is None) != (key is None):
        from richchat.core.errors import UsageError

        raise UsageError("--tls-cert and --tls-key go together",
                         hint="give both, or neither for a generated key")
    if cert is None or key is None:
        origin = ensure_generated(data_dir)
        cert, key = data_dir / CERT_FILE, data_dir / KEY_FILE
    else:
        origin = "loaded"
    certificate = load_certificate(cert)
    private_key = load_private_key(key)
    if _spki(private_key.public_key()) != _spki(certificate.public_key()):
        raise BadFileError(f"the TLS key {key} does not belong to the certificate {cert}",
                           hint="give the key the certificate was issued for")
    context = server_context(cert, key)
    return ServerTls(context, certificate_fingerprint(certificate), cert, key, origin)


# --------------------------------------------------------------------------- handshakes


class HandshakeGate:
    """Counts connections in their TLS handshake; refuses new ones beyond the connection cap.

    :meth:`factory` makes the listener's protocol factory: every accepted connection gets a
    :class:`~richchat.core.server.tls_link.TlsLink` around its connection, counted from the
    accept until its handshake ends (done, failed or timed out: the link calls back). At the
    cap (connected clients plus handshakes under way) the new connection is closed at once,
    before any cryptography is spent on it.
    """

    def __init__(self, cap: int, population: Callable[[], int]) -> None:
        self.cap = cap
        self.population = population  # connections past their handshake (the hub's)
        self.pending = 0  # handshakes under way
        self.started = 0
        self.finished = 0  # handshakes that ended, whatever the outcome
        self.failed = 0  # of those: failed, timed out, or closed before the end
        self.refused = 0  # closed at once: the cap was reached
        self._warned_at = -1e9
        self._links: set[asyncio.BaseProtocol] = set()  # the handshakes under way

    def factory(self, context: ssl.SSLContext, app: Callable[[], asyncio.Protocol],
                timeout: float) -> Callable[[], asyncio.BaseProtocol]:
        from richchat.core.server.tls_link import TlsLink

        def accept() -> asyncio.BaseProtocol:
            if self.pending + self.population() >= self.cap:
                self.refused += 1
                self._warn_full()
                return _Refuse()
            self.pending += 1
            self.started += 1
            link = TlsLink(context, app(), timeout=timeout, on_handshake_done=self._done)
            self._links.add(link)
            return link

        return accept

    def _done(self, link: asyncio.BaseProtocol, ok: bool) -> None:
        self._links.discard(link)
        self.pending -= 1
        self.finished += 1
        if not ok:
            self.failed += 1

    def abort_all(self) -> None:
        """Close every connection still in its handshake (the server is stopping)."""
        for link in list(self._links):
            link.abort()  # type: ignore[attr-defined]

    def _warn_full(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._warned_at >= 5.0:  # a flood gets one line per 5 s
            self._warned_at = loop.time()
            log.warning(
                "refused a connection: server full (%d connected, %d in TLS handshake, cap %d;"
                " %d refused so far)", self.population(), self.pending, self.cap, self.refused,
            )


class _Refuse(asyncio.Protocol):
    """Closes the connection as soon as it is made (the server is full)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).abort()
