"""`richchat scan`: which TCP ports of a host are open, and which are joinable chat servers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer


def scan(
    host: str = typer.Argument(..., help="Host name, IPv4 or IPv6 address to scan."),
    ports: str = typer.Option(
        "-", "--ports", "-p", metavar="PORTS",
        help="Ports like nmap: 22,80,5000-6000; -p- (the default) is all 65535.",
    ),
    timeout: float = typer.Option(
        1.0, "--timeout", min=0.01,
        help="Longest wait for one connect, in seconds (the first pass adapts it to the RTT).",
    ),
    concurrency: Optional[int] = typer.Option(
        None, "--concurrency", min=1,
        help="Most connects in flight (default: sized from the open-file limit).",
    ),
    syn: bool = typer.Option(
        False, "--syn", help="Stateless SYN scan through a raw socket (root or CAP_NET_RAW)."
    ),
    probe: bool = typer.Option(
        True, "--probe/--no-probe", help="Identify the services on open ports (default on)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Write the ScanReport as JSON to stdout."),
) -> None:
    """Scan a host's TCP ports; open ports that are richchat servers are marked joinable."""
    import os
    import sys

    from richchat.core.exit_codes import ExitStatus
    from richchat.core.scanner import parse_ports
    from richchat.core.scanner.runner import run_scan

    if TYPE_CHECKING:
        from rich.console import Console

    port_list = parse_ports(ports)
    host = _check_host(host)
    no_color = bool(os.environ.get("NO_COLOR"))
    err: Console | None = None
    if sys.stderr.isatty() or os.environ.get("TTY_COMPATIBLE") or "FORCE_COLOR" in os.environ:
        # rich decides (it honours these variables); otherwise there is no progress bar
        # to draw, and a --json scan never imports rich at all.
        from rich.console import Console

        err = Console(stderr=True, no_color=no_color, highlight=False)
    report = run_scan(host, port_list, timeout=timeout, concurrency=concurrency, syn=syn,
                      probe=probe, progress=err)
    if json_out:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        from rich.console import Console

        from richchat.core.scanner.render import report_renderable

        Console(no_color=no_color, highlight=False).print(report_renderable(report))
    sys.stdout.flush()
    if report.interrupted:
        raise typer.Exit(int(ExitStatus.INTERRUPTED))


def _check_host(host: str) -> str:
    """What cannot be a host is a usage error, never handed to the resolver (which would ask
    DNS for ``127.0.0.1:5050``): a port (the form ``join`` takes), a network, nothing."""
    import ipaddress
    import unicodedata

    from richchat.core.errors import UsageError

    text = host.strip()
    if not text:
        raise UsageError("empty host", hint="richchat scan HOST, e.g. richchat scan 192.168.1.20")
    name, port = text, None
    if text.startswith("[") and "]" in text:
        name, rest = text[1:].split("]", 1)
        if rest and not rest.startswith(":"):
            raise UsageError(f"bad host {text!r}", hint="IPv6 looks like ::1 or [::1]")
        port = rest[1:] if rest else None
    elif text.count(":") == 1:
        name, port = text.split(":")
    elif ":" in text:
        try:
            ipaddress.IPv6Address(text.split("%", 1)[0])
        except ValueError:
            raise UsageError(f"bad host {text!r}: not an IPv6 address",
                             hint="IPv6 looks like ::1 or [::1]; the ports go in -p") from None
    if port is not None:
        shown = f"[{name}]" if ":" in name else name
        raise UsageError(f"bad host {text!r}: scan takes the ports in -p",
                         hint=f"richchat scan {shown} -p {port or 'PORTS'}")
    if "/" in text:
        raise UsageError(f"bad host {text!r}: scan takes one host, not a network",
                         hint="to find the hosts and chat servers of a network: richchat discover")
    if any(ch in "#\\" or ch.isspace() or unicodedata.category(ch)[0] in "CZ" for ch in name):
        raise UsageError(f"bad host {text!r}: a host has no spaces, control characters, "
                         "'/', '\\' or '#'")
    return text
