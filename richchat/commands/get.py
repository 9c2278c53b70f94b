"""``richchat get``: download a shared file, verify it, and save it under a safe, new name."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from richchat.commands import options

if TYPE_CHECKING:
    from richchat.core.client import Address
    from richchat.core.sharing import FetchResult
    from richchat.core.transfer import DownloadDir
    from richchat.core.trust.connect import TrustPolicy

_ADDRESS = "Server address; default port 5050, IPv6 as [::1]:5050."
_ID = "The file's id, as its offer shows it (file k3x9q2wz4m1p)."
_OUTPUT = (
    "Where to save: a directory (created if missing), or a new file name (never an existing "
    "file); '-' writes the file to stdout once its SHA-256 matched (not with --json). "
    "Default: $RICHCHAT_DOWNLOAD_DIR, else your downloads folder / richchat."
)
_TOKEN = "A one-time token from /get in a netcat chat: no nickname, no chat connection."
#: what an interrupted download into a directory says (on stderr, and in --json's error)
_RESUME = "run the same command again to resume the download"


def get(
    address: str = typer.Argument(..., metavar="HOST[:PORT]", help=_ADDRESS),
    file_id: str = typer.Argument(..., metavar="FILE_ID", help=_ID),
    output: str | None = typer.Option(None, "--output", "-o", metavar="PATH", help=_OUTPUT),
    nick: str | None = typer.Option(None, "--nick", "-n", help="Nickname to fetch as: a room member, or the sender or addressee of a private file."),
    room: str | None = typer.Option(None, "--room", "-r", help="Join this room first (its files are for its members)."),
    token: str | None = typer.Option(None, "--token", help=_TOKEN),
    auto_nick: bool = typer.Option(False, "--auto-nick", help="If the nickname is taken, add a suffix (_2, _3, ...)."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Seconds to wait for each step (connect, answers, each chunk)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON document on stdout, also when it fails (then with the error and exit code)."),
    tls: bool = options.TLS,
    fingerprint: str | None = options.FINGERPRINT,
    strict: bool = options.STRICT,
    known_servers: Path | None = options.KNOWN_SERVERS,
) -> None:
    """Download a shared file: resumed if an earlier try was cut off, checked
    against its SHA-256, saved under its cleaned name, never over an existing
    file (name (1).ext).

    Exit codes: 2 usage, 3 connection refused, 4 unknown host, 5 nickname
    refused, 6 timeout, 7 not a richchat server, 11 connection lost (run it
    again to resume), 14 server full, 16 server key changed (or a pinned
    server without TLS), 17 unknown key refused (--strict), 18 bad
    known-servers file, 20 no such file (expired, or not yours to fetch; a
    --token used, expired or issued for another file), 21 the data did not
    match its SHA-256 (discarded), 22 the download cannot be written, 24 the
    server (a node of a cluster) takes no nickname now, 130 interrupted.
    TLS is tried first, as with send: the transfer goes over the same
    protection as the chat connection.

    -o - writes the file's bytes to stdout and nothing else (messages go to
    stderr): it is downloaded to a temporary file first and written out only
    once its SHA-256 matched (nothing on stdout otherwise); a download cut off
    starts again from the first byte.
    """
    from richchat.core.errors import RichchatError, UsageError

    to_stdout = output == "-"
    if to_stdout and json_out:
        raise UsageError("-o - and --json both write to stdout: choose one")
    if to_stdout or not json_out:
        _get(address, file_id, output, nick, room, token, auto_nick, timeout, quiet, json_out,
             tls, fingerprint, strict, known_servers)
        return
    # --json: one document on stdout whatever happens (a script always has something to
    # parse): the result, or the error and the exit status
    from richchat.core.exit_codes import ExitStatus
    from richchat.core.sharing import FetchFailure

    def failed(error: str, code: int) -> None:
        from richchat.core.client import parse_address

        server = address
        with contextlib.suppress(RichchatError):
            server = str(parse_address(address))  # as the result names it
        sys.stdout.write(FetchFailure(server=server, id=file_id, error=error,
                                      exit_code=code).model_dump_json() + "\n")

    try:
        _get(address, file_id, output, nick, room, token, auto_nick, timeout, quiet, json_out,
             tls, fingerprint, strict, known_servers)
    except typer.Exit as exc:  # interrupted (_fetch said so on stderr: the same line)
        failed(f"interrupted: {_RESUME}", exc.exit_code)
        raise
    except RichchatError as exc:
        failed(exc.line, int(exc.exit_status))
        raise
    except Exception as exc:  # unexpected: the CLI prints it (exit 1); the document says so
        failed(f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)",
               int(ExitStatus.ERROR))
        raise


def _get(address: str, file_id: str, output: str | None, nick: str | None, room: str | None,
         token: str | None, auto_nick: bool, timeout: float, quiet: bool, json_out: bool,
         tls: bool, fingerprint: str | None, strict: bool, known_servers: Path | None) -> None:
    from richchat.core.client import parse_address
    from richchat.core.errors import UsageError
    from richchat.core.transfer import DownloadDir, default_download_dir
    from richchat.core.transfer_render import fetch_summary
    from richchat.core.trust.connect import command_trust_policy

    if output == "":  # (as a Path, "" would be ".", the current directory)
        raise UsageError("-o needs a directory or a file name, not an empty path")
    if nick is None and token is None:
        raise UsageError("--nick is needed", hint="or --token, from /get in a netcat chat")
    target = parse_address(address)
    trust = command_trust_policy(tls, fingerprint, strict, known_servers)
    if output == "-":
        _to_stdout(target, file_id, nick=nick, room=room, token=token, auto_nick=auto_nick,
                   timeout=timeout, quiet=quiet, trust=trust)
        return
    exact = None
    directory = default_download_dir() if output is None else Path(output).expanduser()
    if output is not None and not (directory.is_dir() or output.endswith(("/", "\\"))):
        directory, exact = directory.parent, directory.name
    where = DownloadDir(directory, exact)
    result = _fetch(target, file_id, where, nick=nick, room=room, token=token,
                    auto_nick=auto_nick, timeout=timeout, trust=trust,
                    bar=not (json_out or quiet),
                    interrupted=_RESUME)
    if json_out:
        sys.stdout.write(result.model_dump_json() + "\n")
    elif not quiet:
        sys.stderr.write(fetch_summary(result) + "\n")


def _fetch(target: Address, file_id: str, where: DownloadDir, *, nick: str | None,
           room: str | None, token: str | None, auto_nick: bool, timeout: float,
           trust: TrustPolicy, bar: bool, interrupted: str) -> FetchResult:
    """The download itself, with a progress bar on a terminal (``bar``: wanted at all);
    Ctrl+C says ``interrupted: <interrupted>`` and exits 130."""
    import asyncio

    from richchat.core.exit_codes import ExitStatus
    from richchat.core.send import Interrupted, until_interrupted
    from richchat.core.sharing import fetch_file
    from richchat.core.transfer_render import ProgressBar

    shown = ProgressBar(sys.stderr) if bar and sys.stderr.isatty() else None
    try:
        return asyncio.run(until_interrupted(fetch_file(
            target, file_id, where, nick=nick, room=room, token=token, auto_nick=auto_nick,
            timeout=timeout, progress=None if shown is None else shown.update, trust=trust,
        )))
    except (Interrupted, KeyboardInterrupt):
        if shown is not None:
            shown.clear()
        sys.stderr.write(f"interrupted: {interrupted}\n")
        raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None
    finally:
        if shown is not None:
            shown.clear()


def _to_stdout(target: Address, file_id: str, *, nick: str | None, room: str | None,
               token: str | None, auto_nick: bool, timeout: float, quiet: bool,
               trust: TrustPolicy) -> None:
    """``-o -``: download into a temporary directory (removed afterwards, whatever happens),
    and only once the file's SHA-256 matched, copy it to stdout."""
    import os
    import shutil
    import tempfile

    from richchat.core.errors import FileAccessError
    from richchat.core.process import CLOSED_OUTPUTS
    from richchat.core.protocol.filenames import human_size, short_sha
    from richchat.core.protocol.text import sanitize_text
    from richchat.core.transfer import DownloadDir

    if "stdout" in CLOSED_OUTPUTS:  # the file would go nowhere, and exit 0 would say it came
        raise FileAccessError("cannot write the file to stdout: standard output is closed",
                              hint="give a directory or a file name with -o, or redirect "
                              "stdout to a file")
    with tempfile.TemporaryDirectory(prefix="richchat-get-") as tmp:
        result = _fetch(target, file_id, DownloadDir(Path(tmp), "download"), nick=nick,
                        room=room, token=token, auto_nick=auto_nick, timeout=timeout,
                        trust=trust, bar=not quiet,
                        interrupted="nothing was written to stdout")
        sys.stdout.flush()
        try:
            with open(result.path, "rb") as fh:
                shutil.copyfileobj(fh, sys.stdout.buffer, 1024 * 1024)
            sys.stdout.flush()
        except BrokenPipeError:
            # the reader went away (| head): stdout is not flushed again at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            raise FileAccessError("cannot write the file to stdout: the reader closed the "
                                  "pipe") from None
        except OSError as exc:
            raise FileAccessError("cannot write the file to stdout: "
                                  f"{exc.strerror or exc}") from None
    if not quiet:
        sys.stderr.write(f"wrote {sanitize_text(result.name)} to stdout "
                         f"({human_size(result.size)}, sha256 {short_sha(result.sha256)} "
                         "verified)\n")
