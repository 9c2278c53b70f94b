"""Root Typer app: registers the commands and turns errors into one line and an exit status."""

from __future__ import annotations

import contextlib
import errno
import os
import sys

import typer

from richchat import __version__
from richchat.core.errors import RichchatError
from richchat.core.exit_codes import ExitStatus

app = typer.Typer(
    name="richchat",
    help="LAN chat toolkit: run a chat server, discover servers and hosts, scan ports, chat.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"richchat {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", envvar="RICHCHAT_DEBUG", help="Show tracebacks for unexpected errors."
    ),
) -> None:
    """richchat: chat on your LAN from the terminal."""
    _state["debug"] = debug


def _register() -> None:
    # Command modules are small and import heavy libraries only inside their functions.
    # One line per command: ``app.command("name")(module.function)``.
    # ``short_lived``: commands whose process ends when they return (richchat/core/process.py).
    from richchat.commands import discover, get, join, scan, send, server, trust
    from richchat.core.process import short_lived

    app.command("server")(server.server)
    app.command("discover")(short_lived(discover.discover))
    app.command("scan")(short_lived(scan.scan))
    app.command("join")(join.join)
    # short_help: the docstring's first paragraph spans lines, and the command list would
    # keep its line breaks
    app.command("send", short_help="Send a message, or share a file (--file); exit 0 once "
                "the server confirmed it.")(short_lived(send.send))
    app.add_typer(trust.app, name="trust")
    app.command("get", short_help="Download a shared file: resumed, checked against its "
                "SHA-256, saved under a safe new name.")(short_lived(get.get))


_register()


def _print_error(message: str, hint: str | None = None) -> None:
    from rich.console import Console
    from rich.text import Text

    from richchat.core.protocol.text import sanitize_text

    # messages quote what the user gave (a path, an address) and what a server said: a line
    # break there must not split the line, an escape sequence must not drive the terminal
    console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")), highlight=False)
    line = Text("error: ", style="bold red")
    line.append(sanitize_text(message))
    if hint:
        line.append(f" ({sanitize_text(hint)})", style="dim")
    # stderr on a full disk (2>/dev/full): the error is lost, its exit status must not be
    with contextlib.suppress(OSError):
        console.print(line, soft_wrap=True)


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _quiet_stdout() -> None:
    """Point standard output at the null device: the interpreter's last flush of what could
    not be written would fail again ("Exception ignored ...")."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _null_closed_outputs() -> None:
    """Started with stdout or stderr closed (``>&-``): Python leaves it None, and the first
    line written raised AttributeError after the work was done (a message sent, then said
    "unexpected", exit 1). What goes there is dropped instead, as into a closed pipe; a
    command whose product is its stdout (``get -o -``) checks ``CLOSED_OUTPUTS``."""
    from richchat.core.process import CLOSED_OUTPUTS

    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            CLOSED_OUTPUTS.add(name)
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - for the whole run


def main() -> None:
    """Console-script entry point."""
    _null_closed_outputs()
    try:
        app()
    except RichchatError as exc:
        if _state["debug"]:
            raise
        _print_error(exc.message, exc.hint)
        sys.exit(int(exc.exit_status))
    except KeyboardInterrupt:
        sys.exit(int(ExitStatus.INTERRUPTED))
    except OSError as exc:
        if _state["debug"]:
            raise
        if exc.errno in _DISK_FULL:  # what a command writes itself is checked where it is
            # written: a full disk left here is its output's (stdout to a full file system)
            _quiet_stdout()
            original = exc.__context__
            if isinstance(original, RichchatError):  # it failed writing about a failure:
                _print_error(original.message, original.hint)  # that one comes first
                _print_error(f"cannot write the output either: {exc.strerror}")
                sys.exit(int(original.exit_status))
            _print_error(f"cannot write the output: {exc.strerror}")
            sys.exit(int(ExitStatus.FILE_ERROR))
        _print_error(f"unexpected {type(exc).__name__}: {exc}", "run with --debug for details")
        sys.exit(int(ExitStatus.ERROR))
    except Exception as exc:  # one line, never a traceback unless --debug
        if _state["debug"]:
            raise
        _print_error(f"unexpected {type(exc).__name__}: {exc}", "run with --debug for details")
        sys.exit(int(ExitStatus.ERROR))
