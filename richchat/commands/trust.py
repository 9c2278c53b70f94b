"""``richchat trust``: the pinned server keys (list, add, forget)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from richchat.commands.options import KNOWN_SERVERS as _FILE

app = typer.Typer(
    name="trust",
    help="Pinned TLS server keys (the known-servers file): list, add, forget.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_ADDRESS = "Server address; default port 5050, IPv6 as [::1]:5050."


@app.command("list")
def list_pins(
    known_servers: Path | None = _FILE,
    json_out: bool = typer.Option(False, "--json", help="Print the pins as JSON on stdout."),
) -> None:
    """Every pinned server: address, key fingerprint, first seen."""
    import json

    from rich.console import Console

    from richchat.core.trust.known import KnownServers
    from richchat.core.trust.render import pins_sheet

    known = KnownServers(known_servers)
    pins = known.pins()
    if json_out:
        sys.stdout.write(json.dumps([
            {"server": p.key, "host": p.host, "port": p.port, "fingerprint": p.fingerprint,
             "first_seen": p.first_seen} for p in pins]) + "\n")
        return
    Console(highlight=False).print(pins_sheet(pins, known.path))


@app.command("add")
def add(
    address: str = typer.Argument(..., metavar="HOST[:PORT]", help=_ADDRESS),
    fingerprint: str = typer.Argument(..., metavar="SHA256:...", help="The server key's fingerprint (richchat server --show-fingerprint prints it)."),
    replace: bool = typer.Option(False, "--replace", help="Replace a pin with another key (after a key change the owner confirmed)."),
    known_servers: Path | None = _FILE,
) -> None:
    """Pin a server's key before the first connection (checked with its owner).

    Exit codes: 2 usage (a bad address or fingerprint), 16 the address is
    pinned to another key (--replace), 18 bad known-servers file.
    """
    from richchat.core.client import parse_address
    from richchat.core.errors import KeyMismatchError, UsageError
    from richchat.core.trust.fingerprint import parse_fingerprint
    from richchat.core.trust.known import KnownServers

    target = parse_address(address)
    try:
        fp = parse_fingerprint(fingerprint)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    known = KnownServers(known_servers)
    try:
        pin = known.add(target.host, target.port, fp, replace=replace)
    except KeyError as exc:
        old = exc.args[0]
        raise KeyMismatchError(
            f"{old.key} is pinned to another key ({old.fingerprint}, since {old.first_seen})",
            hint="if its owner confirms the new key: add --replace, or richchat trust forget first",
        ) from None
    sys.stderr.write(f"{pin.key} {pin.fingerprint} pinned in {known.path}\n")


@app.command("forget")
def forget(
    address: str = typer.Argument(..., metavar="HOST[:PORT]", help=_ADDRESS),
    known_servers: Path | None = _FILE,
) -> None:
    """Remove a server's pin: the next connection is a first contact again."""
    from richchat.core.client import parse_address
    from richchat.core.trust.known import KnownServers

    target = parse_address(address)
    known = KnownServers(known_servers)
    pin = known.forget(target.host, target.port)
    if pin is None:
        sys.stderr.write(f"{target} was not pinned in {known.path}\n")
    else:
        sys.stderr.write(f"forgot {pin.key} ({pin.fingerprint}) in {known.path}\n")
