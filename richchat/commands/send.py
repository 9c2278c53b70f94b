"""``richchat send``: send one message (or each line of stdin) and confirm delivery."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from richchat.core.constants import DEFAULT_PORT

if TYPE_CHECKING:
    from richchat.core.trust.connect import TrustPolicy

_ADDRESS = f"Server address; default port {DEFAULT_PORT}, IPv6 as [::1]:{DEFAULT_PORT}."
MAX_MESSAGE_BYTES = 1900  # richchat.core.protocol.text.MAX_MESSAGE_BYTES (a test keeps them equal)
_MESSAGE = (
    "The message (words are joined with spaces), or '-' to send each line of stdin. "
    f"At most {MAX_MESSAGE_BYTES} bytes of text per message."
)
_AUTO = "If the nickname is taken, add a suffix (_2, _3, ...) instead of failing."
_TIMEOUT = "Seconds to wait for each step: connecting, registering, each message's echo."


def _repaired(text: str) -> str:
    """Bytes that are not UTF-8 (an argument with \\xff) replaced by U+FFFD, as the server
    replaces them; on POSIX they reach us as surrogate escapes, which cannot be sent."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _trust_policy(tls: bool, fingerprint: str | None, strict: bool,
                  known_servers: Path | None) -> TrustPolicy:
    from richchat.core.errors import UsageError
    from richchat.core.trust.connect import TrustPolicy
    from richchat.core.trust.fingerprint import parse_fingerprint
    from richchat.core.trust.known import KnownServers, Pin

    expected = None
    if fingerprint is not None:
        try:
            expected = parse_fingerprint(fingerprint)
        except ValueError as exc:
            raise UsageError(f"bad --fingerprint: {exc}") from None
    known = KnownServers(known_servers)

    def pinned(pin: Pin) -> None:
        sys.stderr.write(f"new server {pin.key}: key {pin.fingerprint} pinned in {known.path}\n")

    return TrustPolicy(known, mode="tls" if tls or expected else "auto",
                       unknown="refuse" if strict else "accept-new", fingerprint=expected,
                       on_pinned=pinned)


def send(
    address: str = typer.Argument(..., metavar="HOST[:PORT]", help=_ADDRESS),
    message: list[str] | None = typer.Argument(None, metavar="[MESSAGE ...|-]", help=_MESSAGE),
    nick: str = typer.Option(..., "--nick", "-n", help="Nickname to send as (at most 24 characters)."),
    room: str | None = typer.Option(None, "--room", "-r", help="Room to send to, joined first (default lobby; not with --to)."),
    to: str | None = typer.Option(None, "--to", "-t", help="Send privately to this user (not with --room)."),
    auto_nick: bool = typer.Option(False, "--auto-nick", help=_AUTO),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help=_TIMEOUT),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    tls: bool = typer.Option(False, "--tls", help="Require TLS (without it TLS is tried first, and plaintext only for a server never pinned)."),
    fingerprint: str | None = typer.Option(None, "--fingerprint", metavar="SHA256:...", help="Accept only this server key (and pin it); implies --tls."),
    strict: bool = typer.Option(False, "--strict", help="Refuse a server whose key is not pinned yet (default: pin it, like ssh's accept-new)."),
    known_servers: Path | None = typer.Option(None, "--known-servers", envvar="RICHCHAT_KNOWN_SERVERS", readable=False, metavar="FILE", help="Pinned server keys (default: known_servers in the user config dir)."),
) -> None:
    """Send a message; exit 0 only once the server has relayed every line back.

    Lines are paced to the server's flood limit; on a terminal a progress line shows the
    rate and the time left. TLS is tried first; a new server key is pinned (and printed on
    stderr), a changed one refused before anything is sent. Exit codes: 2 usage (--room with --to, a message over 1900
    bytes), 3 connection refused, 4 unknown host, 5 nickname
    refused, 6 timeout, 7 not a richchat server, 11 connection lost, 14 server full,
    15 some stdin lines refused (too long; the others were sent), 16 server key changed
    (or a pinned server without TLS), 17 unknown key refused (--strict), 18 bad
    known-servers file, 1 message refused by the server, 130 interrupted (what was delivered
    is reported).
    """
    import asyncio

    from richchat.core.client import parse_address
    from richchat.core.errors import UsageError
    from richchat.core.exit_codes import ExitStatus
    from richchat.core.send import (
        Interrupted,
        Oversized,
        RefusedLine,
        SendStatus,
        read_lines,
        send_messages,
        until_interrupted,
    )
    from richchat.core.send_render import (
        ProgressLine,
        interrupted_text,
        refused_text,
        summary_text,
    )

    if room is not None and to is not None:
        raise UsageError("--room and --to cannot be used together",
                         hint="--room sends to a room, --to privately to one user")
    words = [_repaired(word) for word in message or []]
    lines: Iterable[str | Oversized]
    if words == ["-"]:
        lines = read_lines(sys.stdin.fileno()) if sys.stdin else []  # each line as it arrives
    elif words:
        lines = [" ".join(words)]
    else:
        raise UsageError("nothing to send", hint="give a MESSAGE, or '-' to read lines from stdin")
    target = parse_address(address)
    nick = _repaired(nick)
    trust = _trust_policy(tls, fingerprint, strict, known_servers)
    status = SendStatus(server=str(target), nick=nick, target="")
    progress = None
    if not (json_out or quiet) and sys.stderr.isatty():
        progress = ProgressLine(sys.stderr)

    def refused(line: RefusedLine) -> None:
        if progress is not None:
            progress.clear()
        sys.stderr.write(refused_text(line) + "\n")

    try:
        result = asyncio.run(until_interrupted(send_messages(
            target, nick, lines, room=_repaired(room or "lobby"),
            to=None if to is None else _repaired(to), auto_nick=auto_nick, timeout=timeout,
            status=status, on_refused=refused,
            on_progress=None if progress is None else progress.update, trust=trust,
        )))
    except (Interrupted, KeyboardInterrupt):
        if progress is not None:
            progress.clear()
        if json_out:
            sys.stdout.write(status.result(interrupted=True).model_dump_json() + "\n")
        sys.stderr.write(interrupted_text(status) + "\n")
        raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None
    finally:
        if progress is not None:
            progress.clear()
    if json_out:
        sys.stdout.write(result.model_dump_json() + "\n")
    elif not quiet or result.refused:
        sys.stderr.write(summary_text(result) + "\n")
    if result.refused:
        raise typer.Exit(int(ExitStatus.LINES_REFUSED))
