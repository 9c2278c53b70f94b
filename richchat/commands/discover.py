"""``richchat discover``: advertised servers, LAN hosts and local interfaces."""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING

import typer

from richchat.core.constants import DEFAULT_BEACON_PORT

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_TIMEOUT = 3.0
DEFAULT_OS_TIMEOUT = 30.0


def discover(
    timeout: float | None = typer.Option(
        None, "--timeout", "-t", min=0.5, max=3600,
        help=f"Cap for the whole run in seconds (default {DEFAULT_TIMEOUT:g} s, "
        f"{DEFAULT_OS_TIMEOUT:g} s with --os).",
    ),
    interface: str | None = typer.Option(
        None, "--interface", "-i", help="Only this interface (sweep, query, interface table)."
    ),
    no_arp: bool = typer.Option(False, "--no-arp", help="Skip the ARP sweep of the subnets."),
    os_detect: bool = typer.Option(
        False, "--os", help="Guess each host's OS with nmap -O (needs root and nmap)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
    beacon_port: int = typer.Option(
        DEFAULT_BEACON_PORT, "--beacon-port", min=1, max=65535, help="UDP port of the server beacons."
    ),
    broadcast: list[str] | None = typer.Option(
        None, "--broadcast", metavar="ADDR",
        help="Send the active query here (repeatable; default: every interface broadcast).",
    ),
    subnet: list[str] | None = typer.Option(
        None, "--subnet", metavar="CIDR", help="Sweep this subnet instead (repeatable)."
    ),
    no_mdns: bool = typer.Option(False, "--no-mdns", help="Do not browse DNS-SD (mDNS)."),
    listen: float | None = typer.Option(
        None, "--listen", metavar="S", min=0.1, max=3600,
        help="Keep listening S seconds for late beacons and DNS-SD answers instead of finishing "
        "as soon as the sweep is over and the query answered (raises the default --timeout "
        "to fit).",
    ),
) -> None:
    """Find richchat servers, hosts on the LAN and the local interfaces."""
    from richchat.core.discovery import DiscoveryOptions, discover_sync, planned_targets

    no_color = bool(os.environ.get("NO_COLOR"))
    default_timeout = DEFAULT_OS_TIMEOUT if os_detect else DEFAULT_TIMEOUT
    if listen is not None:
        default_timeout = max(default_timeout, listen + 0.5)
    options = DiscoveryOptions(
        timeout=timeout or default_timeout, listen=listen,
        interface=interface, arp=not no_arp, os=os_detect, mdns=not no_mdns,
        beacon_port=beacon_port, broadcast=broadcast or None, subnets=subnet or None,
    )
    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    if options.arp and not subnet:
        large = [t for t in planned_targets(options) if t.too_large]
        if large and interactive:
            from rich.prompt import Confirm

            nets = ", ".join(f"{t.network} ({t.network.num_addresses} addresses)" for t in large)
            if Confirm.ask(f"Sweep {nets}?", console=_stderr(no_color), default=False):
                options = options.model_copy(update={"allow_large": True})
    if sys.stderr.isatty():
        from richchat.core.discovery.progress import StatusProgress

        with StatusProgress(_stderr(no_color)) as progress:
            report = discover_sync(options, progress.update)
    else:
        # rich (0.1 s of imports) is not needed before the results: the run starts sooner
        report = discover_sync(options)
    if json_out:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
        if report.notices:
            from richchat.core.discovery.render import notice_line

            for notice in report.notices:
                _stderr(no_color).print(notice_line(notice), soft_wrap=True)
    else:
        from rich.console import Console

        from richchat.core.discovery.render import print_report

        # Piped output is not cut to 80 columns: MACs and addresses must stay whole.
        width = None if sys.stdout.isatty() else _piped_width(os.environ.get("COLUMNS"))
        out = Console(no_color=no_color, highlight=False, width=width)
        print_report(report, out, _stderr(no_color), report.durations.get("advertised"))
    if report.exit_status:
        raise typer.Exit(report.exit_status)


#: the width of piped tables when COLUMNS does not say a usable one
PIPED_WIDTH = 132
#: the narrowest table width COLUMNS may ask for (narrower: this)
MIN_WIDTH = 20


def _piped_width(columns: str | None) -> int:
    """COLUMNS as the piped tables' width: digits only (anything else, empty or 0: the
    default), at least MIN_WIDTH."""
    from richchat.core.protocol.text import is_digits

    if columns is None or not is_digits(columns.strip(), 6) or int(columns) == 0:
        return PIPED_WIDTH
    return max(MIN_WIDTH, int(columns))


@functools.cache
def _stderr(no_color: bool) -> Console:
    from rich.console import Console

    return Console(stderr=True, no_color=no_color, highlight=False)
