"""``richchat send``: send one message (or each line of stdin) and confirm delivery."""

from __future__ import annotations

import sys
from collections.abc import Iterable

import typer

_ADDRESS = "Server address; default port 5050, IPv6 as [::1]:5050."
_MESSAGE = "The message (words are joined with spaces), or '-' to send each line of stdin."
_AUTO = "If the nickname is taken, add a suffix (_2, _3, ...) instead of failing."
_TIMEOUT = "Seconds to wait for each step: connecting, registering, each message's echo."


def send(
    address: str = typer.Argument(..., metavar="HOST[:PORT]", help=_ADDRESS),
    message: list[str] | None = typer.Argument(None, metavar="[MESSAGE ...|-]", help=_MESSAGE),
    nick: str = typer.Option(..., "--nick", "-n", help="Nickname to send as."),
    room: str = typer.Option("lobby", "--room", "-r", help="Room to send to (joined first)."),
    to: str | None = typer.Option(None, "--to", "-t", help="Send privately to this user."),
    auto_nick: bool = typer.Option(False, "--auto-nick", help=_AUTO),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help=_TIMEOUT),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Send a message; exit 0 only once the server has relayed every line back.

    Exit codes: 3 connection refused, 4 unknown host, 5 nickname refused, 6 timeout,
    7 not a richchat server, 11 connection lost, 1 message refused by the server.
    """
    import asyncio

    from richchat.core.client import parse_address, send_messages
    from richchat.core.errors import UsageError

    words = list(message or [])
    lines: Iterable[str]
    if words == ["-"]:
        lines = sys.stdin  # streamed: each line is sent as it arrives
    elif words:
        lines = [" ".join(words)]
    else:
        raise UsageError("nothing to send", hint="give a MESSAGE, or '-' to read lines from stdin")
    target = parse_address(address)
    result = asyncio.run(
        send_messages(target, nick, lines, room=room, to=to, auto_nick=auto_nick, timeout=timeout)
    )
    if json_out:
        sys.stdout.write(result.model_dump_json() + "\n")
    elif not quiet:
        plural = "" if result.delivered == 1 else "s"
        sys.stderr.write(
            f"sent {result.delivered} message{plural} to {result.target} as {result.nick}\n"
        )
