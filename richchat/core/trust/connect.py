"""Open a chat connection with TLS and trust on first use.

:func:`open_trusted` is the transport of :class:`~richchat.core.client.ChatClient` for
``join``, ``send`` and the wizard:

1. TLS first (1.2 at least; 1.3 when the server has it). The certificate is not checked
   against any authority: the key is checked against the pin instead, right after the
   handshake and **before a single chat byte is written**. A changed key, or a pinned server
   that answers without TLS, raises :class:`KeyMismatchError` (nothing is ever sent).
2. An unknown key is decided by the policy: ``accept-new`` (``richchat send``: pinned, and
   said on stderr), ``refuse`` (``send --strict``), or ``ask`` (the chat UI and the wizard:
   :class:`UnknownServerKey` is raised, the connection is closed while the user decides,
   and the caller connects again with the answer in the policy).
3. Plaintext only when the server answered the TLS hello with something that is not TLS
   (a richchat server's plaintext port answers with a TLS alert at once), the address is not
   pinned, and nothing (``--tls``, discovery, a scan) said the server speaks TLS. Timeouts
   and lost connections never fall back: an attacker who can only delay packets cannot push
   anyone to plaintext, and a slow TLS server is not mistaken for a plaintext one.

Light on purpose (``send`` imports it): ssl and the pure fingerprint module only (hashlib
when a certificate is hashed).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from richchat.core.errors import (
    ConnectionLostError,
    KeyMismatchError,
    NoTlsFromPinnedError,
    ProtocolError,
    RichchatError,
    UntrustedServerError,
)
from richchat.core.trust.fingerprint import fingerprint_of_certificate, short
from richchat.core.trust.known import KnownServers, Pin, pin_key

TlsMode = Literal["auto", "tls"]
UnknownKeys = Literal["accept-new", "refuse", "ask"]
TrustKind = Literal["pinned", "new", "once", "explicit", "none"]

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass(frozen=True)
class Security:
    """What protects one connection (the chat UI's header shows it)."""

    encrypted: bool
    version: str | None = None  # "TLSv1.3"
    cipher: str | None = None
    fingerprint: str | None = None
    #: how the key came to be trusted: a stored pin, pinned just now, accepted for this run
    #: only, named by --fingerprint; "none" for plaintext
    trust: TrustKind = "none"

    def describe(self) -> str:
        """``TLS 1.3 · SHA256:AbCdEfGhIjKl… (pinned)`` or ``not encrypted``."""
        if not self.encrypted:
            return "not encrypted"
        version = (self.version or "TLS").replace("TLSv", "TLS ")
        fp = f" · {short(self.fingerprint)}" if self.fingerprint else ""
        how = {"pinned": "pinned", "new": "pinned now", "once": "trusted this time",
               "explicit": "as given"}.get(self.trust, "")
        return f"{version}{fp}" + (f" ({how})" if how else "")


class UnknownServerKey(UntrustedServerError):
    """First contact with a TLS server whose key is not pinned, and the policy is ``ask``.

    The connection is already closed. ``also_pinned_as``: other addresses that trust this
    key (the same server under another name); ``hint``: the fingerprint the server advertised
    (discovery, scan), which only an honest server gets right, but anyone can claim."""

    def __init__(self, host: str, port: int, fingerprint: str, *, also_pinned_as: list[str],
                 hint: str | None, store: str) -> None:
        super().__init__(
            f"{pin_key(host, port)} presents a key never seen before: {fingerprint}",
            hint="check it with the server's owner (richchat server --show-fingerprint), "
                 f"then: richchat trust add {pin_key(host, port)} {fingerprint}",
        )
        self.host, self.port, self.fingerprint = host, port, fingerprint
        self.also_pinned_as = also_pinned_as
        self.advertised = hint
        self.store = store


@dataclass
class TrustPolicy:
    """How a client decides about the keys servers present (one per command run)."""

    known: KnownServers
    mode: TlsMode = "auto"
    unknown: UnknownKeys = "ask"
    #: ``--fingerprint``: the only key accepted (a match is pinned, replacing an older pin)
    fingerprint: str | None = None
    #: an advertised fingerprint (discovery, scan): shown to the user, never trusted as such
    hint: str | None = None
    #: keys the user trusted for this run only ("trust this time"), by pin key
    once: dict[str, str] = field(default_factory=dict)
    #: called when a new pin was written (``send`` says so on stderr)
    on_pinned: Callable[[Pin], None] | None = None

    def trust_once(self, host: str, port: int, fingerprint: str) -> None:
        self.once[pin_key(host, port)] = fingerprint

    def remember(self, host: str, port: int, fingerprint: str) -> Pin:
        """Pin ``fingerprint``; :class:`KeyMismatchError` if another key was pinned for the
        address meanwhile (another process: a load balancer in front of two nodes)."""
        try:
            return self.known.add(host, port, fingerprint)
        except KeyError as exc:
            raise changed_key(pin_key(host, port), exc.args[0], fingerprint,
                              self.known) from None


def changed_key(key: str, pin: Pin, presented: str, known: KnownServers) -> KeyMismatchError:
    """The error for a presented key that is not the pinned one."""
    return KeyMismatchError(
        f"the key of {key} has CHANGED: pinned {pin.fingerprint} (since "
        f"{pin.first_seen}), presented {presented}. Someone may be posing as the server "
        "(a man in the middle), or it got a new key; nothing was sent",
        hint=f"pin stored in {known.path}; if the owner confirms the new key: "
             f"richchat trust forget {key}, then connect again",
    )


def client_context() -> ssl.SSLContext:
    """TLS 1.2+, no certificate authority: the pin is the check (see the module text)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


_CONTEXT: ssl.SSLContext | None = None


def _context() -> ssl.SSLContext:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = client_context()
    return _CONTEXT


def _close_now(writer: asyncio.StreamWriter) -> None:
    """Close without a chat byte (TLS sends its close_notify alert, nothing else)."""
    with contextlib.suppress(Exception):
        writer.close()


async def open_trusted(host: str, port: int, policy: TrustPolicy, timeout: float,
                       limit: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Security]:
    """Connect to ``host:port`` as ``policy`` says; return the streams and their security.

    Raises :class:`KeyMismatchError`, :class:`UnknownServerKey` (policy ``ask``),
    :class:`UntrustedServerError` (policy ``refuse``), :class:`ProtocolError` (TLS required
    but not spoken), or what ``asyncio.open_connection`` raises (refused, unknown host...;
    ``asyncio.TimeoutError`` after ``timeout``)."""
    pin = policy.known.get(host, port)  # a corrupt file raises BadFileError before any packet
    key = pin_key(host, port)
    #: a key trusted "this time only" binds the rest of the run as a pin does (a reconnection
    #: of the chat UI, a transfer connection): never plaintext, never another key
    once = policy.once.get(key)
    must_tls = (policy.mode == "tls" or pin is not None or policy.fingerprint is not None
                or once is not None)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=_context(), limit=limit,
                                    server_hostname=_server_name(host),
                                    ssl_handshake_timeout=timeout),
            timeout,
        )
    except ConnectionResetError:
        # Closed before the handshake ended: a TLS server at its connection cap does this;
        # not a sign of plaintext (no fallback), nor of an impostor.
        raise ConnectionLostError(
            f"{key} closed the connection during the TLS handshake",
            hint="the server may be full: try again later",
        ) from None
    except ssl.SSLError as exc:
        # The peer answered, and not in TLS (a plaintext server), or refused our TLS.
        if pin is not None:
            raise NoTlsFromPinnedError(
                f"{key} did not complete a TLS handshake ({_reason(exc)}), but its key is "
                f"pinned ({pin.fingerprint}): someone may be posing as it; nothing was sent, "
                "and richchat never falls back to plaintext for a pinned server",
                hint=f"pin stored in {policy.known.path}; if the server really dropped TLS: "
                     f"richchat trust forget {key}",
            ) from None
        if once is not None:
            raise NoTlsFromPinnedError(
                f"{key} did not complete a TLS handshake ({_reason(exc)}), but you trusted its "
                f"key ({once}) for this session: someone may be posing as it; nothing was "
                "sent, and richchat never falls back to plaintext for a server met with TLS",
                hint="if the server really dropped TLS: quit and connect again",
            ) from None
        if must_tls:
            raise ProtocolError(
                f"{key} does not speak TLS ({_reason(exc)})",
                hint="it may be a plaintext richchat server: leave out --tls",
            ) from None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=limit), timeout)
        return reader, writer, Security(encrypted=False)
    try:
        security = _check(writer, host, port, policy, pin)
    except BaseException:
        _close_now(writer)
        raise
    return reader, writer, security


def _server_name(host: str) -> str:
    """The name the TLS hello carries (SNI): the host name, or ``""`` (none) for an IP
    address, which TLS never names (RFC 6066; OpenSSL leaves it out either way). Nothing is
    checked against it (the pin is the check); ``""`` also spares loading the ``idna`` codec
    that ``ssl`` would encode the address with (2-3 ms of a ``richchat send``)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return ""


def _reason(exc: ssl.SSLError) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason).lower().replace("_", " ") if reason else str(exc)


def _check(writer: asyncio.StreamWriter, host: str, port: int, policy: TrustPolicy,
           pin: Pin | None) -> Security:
    sslobj = writer.get_extra_info("ssl_object")
    der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
    key = pin_key(host, port)
    if not der:
        raise ProtocolError(f"{key} presented no certificate")
    try:
        presented = fingerprint_of_certificate(der)
    except ValueError as exc:
        raise ProtocolError(f"{key} presented a certificate we cannot read: {exc}") from None
    cipher = sslobj.cipher()

    def secure(trust: TrustKind) -> Security:
        return Security(True, sslobj.version(), cipher[0] if cipher else None, presented, trust)

    if policy.fingerprint is not None:
        if presented != policy.fingerprint:
            raise KeyMismatchError(
                f"{key} presents the key {presented}, not the one --fingerprint names "
                f"({policy.fingerprint}): someone may be posing as it; nothing was sent"
            )
        policy.known.add(host, port, presented, replace=True)
        return secure("explicit")
    if pin is not None:
        if presented == pin.fingerprint:
            return secure("pinned")
        raise changed_key(key, pin, presented, policy.known)
    once = policy.once.get(key)
    if once is not None:
        if presented == once:
            return secure("once")
        raise KeyMismatchError(
            f"the key of {key} has CHANGED: trusted this time {once}, presented {presented}. "
            "Someone may be posing as the server (a man in the middle), or it got a new key; "
            "nothing was sent",
            hint="if the owner confirms the new key: quit and connect again",
        )
    if policy.unknown == "accept-new":
        # raises the changed key if another process pinned another one since we looked
        new = policy.remember(host, port, presented)
        if policy.on_pinned is not None:
            policy.on_pinned(new)
        return secure("new")
    if policy.unknown == "refuse":
        raise UntrustedServerError(
            f"{key} presents a key that is not pinned ({presented}), and --strict refuses "
            "unknown servers; nothing was sent",
            hint=f"after checking it with the server's owner: richchat trust add {key} "
                 f"{presented}",
        )
    raise UnknownServerKey(
        host, port, presented,
        also_pinned_as=[p.key for p in policy.known.with_fingerprint(presented)],
        hint=policy.hint, store=str(policy.known.path),
    )


def is_trust_error(exc: RichchatError) -> bool:
    """Errors no reconnection can fix: the user must act (a changed key, a refused one)."""
    return isinstance(exc, (KeyMismatchError, UntrustedServerError))


def command_trust_policy(tls: bool, fingerprint: str | None, strict: bool,
                         known_servers: Path | None, *, ask: bool = False) -> TrustPolicy:
    """The trust policy of a command's ``--tls``, ``--fingerprint``, ``--strict``,
    ``--known-servers``. One-shot commands (``send``, ``get``) pin a new key (like ssh's
    accept-new) and say so on stderr, unless ``--strict`` refuses it; ``ask`` (``join``): the
    user is asked about a new key."""
    from richchat.core.errors import UsageError
    from richchat.core.trust.fingerprint import parse_fingerprint

    expected = None
    if fingerprint is not None:
        try:
            expected = parse_fingerprint(fingerprint)
        except ValueError as exc:
            raise UsageError(f"bad --fingerprint: {exc}") from None
    known = KnownServers(known_servers)

    def pinned(pin: Pin) -> None:
        sys.stderr.write(f"new server {pin.key}: key {pin.fingerprint} pinned in {known.path}\n")

    mode: TlsMode = "tls" if tls or expected else "auto"
    if ask:
        return TrustPolicy(known, mode=mode, unknown="ask", fingerprint=expected)
    return TrustPolicy(known, mode=mode, unknown="refuse" if strict else "accept-new",
                       fingerprint=expected, on_pinned=pinned)
