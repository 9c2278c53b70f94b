"""``richchat send``: send one message (or each line of stdin) and confirm delivery."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from richchat.commands import options
from richchat.core.constants import DEFAULT_PORT

if TYPE_CHECKING:
    from pydantic import BaseModel

    from richchat.core.send import SendStatus
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


def _room(room: str | None) -> str:
    """The room to send to: the lobby without --room; an empty --room "$UNSET" stays empty
    (a usage error, as for get), never the lobby, where everyone would read it."""
    return "lobby" if room is None else room


def send(
    address: str = typer.Argument(..., metavar="HOST[:PORT]", help=_ADDRESS),
    message: list[str] | None = typer.Argument(None, metavar="[MESSAGE ...|-]", help=_MESSAGE),
    file: str | None = typer.Option(None, "--file", "-f", metavar="PATH", help="Share this file instead of sending a message (exit 0 once the server verified it; see 'Sharing files' in the README). A regular file: not a directory, nor a /proc or /sys file (copy it first)."),
    nick: str = typer.Option(..., "--nick", "-n", help="Nickname to send as (at most 24 characters)."),
    room: str | None = typer.Option(None, "--room", "-r", help="Room to send to, joined first (default lobby; not with --to)."),
    to: str | None = typer.Option(None, "--to", "-t", help="Send privately to this user (not with --room)."),
    auto_nick: bool = typer.Option(False, "--auto-nick", help=_AUTO),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help=_TIMEOUT),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON document on stdout, also when it fails (then with the error and exit code)."),
    tls: bool = options.TLS,
    fingerprint: str | None = options.FINGERPRINT,
    strict: bool = options.STRICT,
    known_servers: Path | None = options.KNOWN_SERVERS,
) -> None:
    """Send a message, or share a file (--file); exit 0 only once the server has
    relayed every line back, or verified the whole file.

    Lines are paced to the server's flood limit; on a terminal a progress line
    shows the rate and the time left. With --file, a progress bar shows hashing
    and uploading; running the same command again resumes an upload cut off.
    TLS is tried first; a new server key is pinned (and printed on stderr), a
    changed one refused before anything is sent.

    Exit codes: 1 message refused by the server (or a --file: --to a user not
    online), 2 usage (--room with --to,
    a message over 1900 bytes, an empty --file), 3 connection refused, 4 unknown host,
    5 nickname refused, 6 timeout, 7 not a richchat server, 11 connection lost,
    14 server full, 15 some stdin lines refused (too long; the others were sent),
    16 server key changed (or a pinned server without TLS), 17 unknown key
    refused (--strict), 18 bad known-servers file, 19 file larger than the
    server takes (nothing sent), 20 the server shares no files, 21 the file
    changed while it was sent, 22 the file (or stdin, with -) cannot be read,
    or is no regular file (a directory; a /proc or /sys file, whose size is not its content),
    24 the server (a node of a cluster) takes no nickname or message now (its
    Redis is away), 130 interrupted (what was delivered is reported).
    """
    from richchat.core.errors import RichchatError
    from richchat.core.exit_codes import ExitStatus
    from richchat.core.send import Interrupted, SendStatus
    from richchat.core.send_render import interrupted_text

    # --json: one document on stdout whatever happens, so a script always has something to
    # parse: what was delivered (or shared), and the error and exit status when it failed
    status = SendStatus(server=address, nick=nick,
                        target=f"@{to}" if to is not None else _room(room))

    def failed(error: str, code: int, *, interrupted: bool = False) -> None:
        if not json_out:
            return
        if file is None:
            _json(status.result(interrupted=interrupted, error=error, exit_code=code))
        else:
            from richchat.core.sharing import ShareFailure

            _json(ShareFailure(server=status.server, nick=status.nick, target=status.target,
                               name=Path(file).name, error=error, exit_code=code))

    try:
        code = _send(address, message, file, nick, room, to, auto_nick, timeout, quiet,
                     json_out, tls, fingerprint, strict, known_servers, status)
    except typer.Exit:
        raise
    except RichchatError as exc:
        failed(exc.line, int(exc.exit_status))
        raise
    except (Interrupted, KeyboardInterrupt):
        # the document's error is the line on stderr, as for the errors above
        said = interrupted_text(status) if file is None else _interrupted_share()
        failed(said, int(ExitStatus.INTERRUPTED), interrupted=True)
        sys.stderr.write(said + "\n")
        raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None
    except Exception as exc:  # unexpected: the CLI prints it (exit 1); the document says so
        failed(f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)",
               int(ExitStatus.ERROR))
        raise
    if code:
        raise typer.Exit(code)


def _interrupted_share() -> str:
    """What an interrupted ``send --file`` tells: not shared, unless every byte had already
    reached the server (it then verifies and shares the file all the same)."""
    from richchat.core.transfer import LAST_UPLOAD

    if LAST_UPLOAD.delivered:
        return ("interrupted, but every byte of the file had reached the server: it shares "
                "the file once it has verified it")
    return ("interrupted: the file was not shared (run the same command again to resume the "
            "upload)")


def _json(result: BaseModel) -> None:
    sys.stdout.write(result.model_dump_json() + "\n")


def _send(address: str, message: list[str] | None, file: str | None, nick: str,
          room: str | None, to: str | None, auto_nick: bool, timeout: float, quiet: bool,
          json_out: bool, tls: bool, fingerprint: str | None, strict: bool,
          known_servers: Path | None, status: SendStatus) -> int:
    """The send itself; ``status`` says what got through when it raises. Returns the exit
    status of a send that ran to its end (0, or 15 when stdin lines were refused)."""
    import asyncio

    from richchat.core.client import parse_address
    from richchat.core.errors import UsageError
    from richchat.core.exit_codes import ExitStatus
    from richchat.core.send import (
        Oversized,
        RefusedLine,
        read_lines,
        send_messages,
        until_interrupted,
    )
    from richchat.core.send_render import ProgressLine, refused_text, summary_text
    from richchat.core.trust.connect import command_trust_policy

    if room is not None and to is not None:
        raise UsageError("--room and --to cannot be used together",
                         hint="--room sends to a room, --to privately to one user")
    if file is not None:
        if message:
            raise UsageError("--file shares a file: give no MESSAGE with it")
        if file == "":  # (as a Path, "" would be ".", the current directory)
            raise UsageError("--file needs a file to share, not an empty path")
        _share(address, nick, Path(file), room, to, auto_nick, timeout, quiet, json_out,
               command_trust_policy(tls, fingerprint, strict, known_servers), status)
        return 0
    words = [_repaired(word) for word in message or []]
    lines: Iterable[str | Oversized]
    if words == ["-"]:
        lines = read_lines(sys.stdin.fileno()) if sys.stdin else []  # each line as it arrives
    elif words:
        lines = [" ".join(words)]
    else:
        raise UsageError("nothing to send", hint="give a MESSAGE, or '-' to read lines from stdin")
    target = parse_address(address)
    nick = status.nick = _repaired(nick)
    status.server = str(target)
    trust = command_trust_policy(tls, fingerprint, strict, known_servers)
    progress = None
    if not (json_out or quiet) and sys.stderr.isatty():
        progress = ProgressLine(sys.stderr)

    def refused(line: RefusedLine) -> None:
        if progress is not None:
            progress.clear()
        sys.stderr.write(refused_text(line) + "\n")

    try:
        asyncio.run(until_interrupted(send_messages(
            target, nick, lines, room=_repaired(_room(room)),
            to=None if to is None else _repaired(to), auto_nick=auto_nick, timeout=timeout,
            status=status, on_refused=refused,
            on_progress=None if progress is None else progress.update, trust=trust,
        )))
    finally:
        if progress is not None:
            progress.clear()
    code = int(ExitStatus.LINES_REFUSED) if status.refused else 0
    result = status.result(exit_code=code)
    if json_out:
        _json(result)
    elif not quiet or result.refused:
        sys.stderr.write(summary_text(result) + "\n")
    return code


def _share(address: str, nick: str, file: Path, room: str | None, to: str | None,
           auto_nick: bool, timeout: float, quiet: bool, json_out: bool,
           trust: TrustPolicy, status: SendStatus) -> None:
    """``send --file``: one core call, a progress bar on a terminal, the summary."""
    import asyncio

    from richchat.core.client import parse_address
    from richchat.core.send import until_interrupted
    from richchat.core.sharing import share_file
    from richchat.core.transfer_render import ProgressBar, share_summary

    target = parse_address(address)
    nick = status.nick = _repaired(nick)
    status.server = str(target)
    bar = ProgressBar(sys.stderr) if not (json_out or quiet) and sys.stderr.isatty() else None
    try:
        result = asyncio.run(until_interrupted(share_file(
            target, nick, file, room=_repaired(_room(room)),
            to=None if to is None else _repaired(to), auto_nick=auto_nick, timeout=timeout,
            progress=None if bar is None else bar.update, trust=trust,
        )))
    finally:
        if bar is not None:
            bar.clear()
    if json_out:
        _json(result)
    elif not quiet:
        sys.stderr.write(share_summary(result, str(target)) + "\n")
