"""``richchat join``: the terminal chat client."""

from __future__ import annotations

from pathlib import Path

import typer

from richchat.commands import options
from richchat.core.constants import DEFAULT_PORT


def join(
    address: str | None = typer.Argument(
        None, metavar="[HOST[:PORT]]",
        help=f"Server to join (default port {DEFAULT_PORT}; IPv6 as [::1]:{DEFAULT_PORT}). Without it, a wizard "
        "finds servers and hosts on the network.",
    ),
    nick: str | None = typer.Option(None, "--nick", "-n", help="Your nickname (asked if omitted)."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds to wait on connect, and for the server to answer while connected."),
    tls: bool = options.TLS,
    fingerprint: str | None = options.FINGERPRINT,
    known_servers: Path | None = options.KNOWN_SERVERS,
    download_dir: Path | None = typer.Option(
        None, "--download-dir", envvar="RICHCHAT_DOWNLOAD_DIR",
        help="Where /get saves shared files (default: your downloads folder / richchat).",
    ),
    alternate: list[str] | None = typer.Option(
        None, "--alternate", "-a", metavar="HOST[:PORT]",
        help="Another node of the same chat (a cluster), where the chat reconnects if its node goes away (repeatable; the wizard finds them).",
    ),
) -> None:
    """Chat in the terminal: join a richchat server (or pick one with the wizard).

    TLS is tried first; the first time a server shows its key you are asked whether to trust
    it, and a changed key is refused (exit 16) before anything is sent.

    Exit codes: 0 quit (/quit, Ctrl+C in the chat), 2 usage, 3 connection
    refused, 4 unknown host, 6 timeout, 7 not a richchat server (or no TLS
    with --tls), 11 connection lost, 14 server full, 16 server key changed
    (or a pinned server without TLS), 17 unknown key refused at the prompt,
    18 bad known-servers file, 130 interrupted (Ctrl+C in the wizard).
    """
    import sys

    from richchat.core.client import parse_address
    from richchat.core.errors import UsageError
    from richchat.core.trust.connect import command_trust_policy

    trust = command_trust_policy(tls, fingerprint, False, known_servers, ask=True)

    if address is not None:
        target = parse_address(address)
    alternates = [parse_address(a) for a in alternate or ()]
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "richchat join needs a terminal" if address else
            "no server address given and no terminal for the wizard",
            hint="for scripts use: richchat send HOST[:PORT] --nick NAME MESSAGE",
        )
    if address is None:
        from richchat.core.wizard import run_wizard

        try:
            picked = run_wizard(nick=nick, timeout=timeout, trust=trust, alternates=alternates)
        except KeyboardInterrupt:  # Ctrl+C at any step: leave at once, no traceback
            from richchat.core.exit_codes import ExitStatus

            raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None
        if picked is None:
            raise typer.Exit(0)
        target, nick = picked

    from richchat.core.tui import ChatApp

    app = ChatApp(target, nick, timeout=timeout, fail_fast=True, trust=trust,
                  download_dir=download_dir, alternates=alternates)
    app.run()
    if app.failure is not None:
        raise app.failure
