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
) -> None:
    """Chat in the terminal: join a richchat server (or pick one with the wizard)."""
    from richchat.core.client import parse_address

    if address is None:
        from richchat.core.wizard import run_wizard

        picked = run_wizard(nick=nick, timeout=timeout)
        if picked is None:
            raise typer.Exit(0)
        target, nick = picked
    else:
        target = parse_address(address)

    from richchat.core.tui import ChatApp

    ChatApp(target, nick, timeout=timeout).run()
