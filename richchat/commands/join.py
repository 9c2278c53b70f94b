"""``richchat join``: the terminal chat client."""

from __future__ import annotations

import typer


def join(
    address: str | None = typer.Argument(
        None, metavar="[HOST[:PORT]]",
        help="Server to join (default port 5050; IPv6 as [::1]:5050). Without it, a wizard "
        "finds servers and hosts on the network.",
    ),
    nick: str | None = typer.Option(None, "--nick", "-n", help="Your nickname (asked if omitted)."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds to wait on connect."),
    alternate: list[str] | None = typer.Option(
        None, "--alternate", "-a", metavar="HOST[:PORT]",
        help="Another node of the same chat (a cluster), where the chat reconnects if its node goes away (repeatable; the wizard finds them).",
    ),
) -> None:
    """Chat in the terminal: join a richchat server (or pick one with the wizard)."""
    import sys

    from richchat.core.client import parse_address
    from richchat.core.errors import UsageError

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
            picked = run_wizard(nick=nick, timeout=timeout, alternates=alternates)
        except KeyboardInterrupt:  # Ctrl+C at any step: leave at once, no traceback
            from richchat.core.exit_codes import ExitStatus

            raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None
        if picked is None:
            raise typer.Exit(0)
        target, nick = picked

    from richchat.core.tui import ChatApp

    app = ChatApp(target, nick, timeout=timeout, fail_fast=True, alternates=alternates)
    app.run()
    if app.failure is not None:
        raise app.failure
