"""Options several commands share, defined once (the same flag, help text and variable
everywhere): how a client connects to a server (TLS, pinning)."""

from __future__ import annotations

import typer

TLS = typer.Option(
    False, "--tls",
    help="Require TLS (without it TLS is tried first, and plaintext only for a server never pinned).",
)
FINGERPRINT = typer.Option(
    None, "--fingerprint", metavar="SHA256:...",
    help="Accept only this server key (and pin it); implies --tls.",
)
STRICT = typer.Option(
    False, "--strict",
    help="Refuse a server whose key is not pinned yet (default: pin it, like ssh's accept-new).",
)
KNOWN_SERVERS = typer.Option(
    None, "--known-servers", envvar="RICHCHAT_KNOWN_SERVERS", metavar="FILE", readable=False,
    help="Pinned server keys (default: known_servers in the user config dir).",
)
