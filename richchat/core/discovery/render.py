"""Rich tables for a DiscoveryReport: Advertised, Discovered, Local Interface."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.table import Table
from rich.text import Text

from richchat.core.discovery.models import AdvertisedServer, DiscoveryReport, Notice


def _t(value: object) -> Text:
    return Text("" if value is None else str(value))


def _widest(values: list[str | None]) -> int | None:
    """The width of the longest value: an address column is never narrower, so that a piped
    table (80 columns) never splits an address across lines; free text folds instead."""
    return max((len(v) for v in values if v), default=None)


class _Fitted:
    """A table built when the width it gets is known: address columns keep their addresses
    whole when that fits, and fold (never crop) on a narrower terminal."""

    def __init__(self, build: Callable[[int | None], Table]) -> None:
        self.build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Table]:
        yield self.build(options.max_width)


def _mins(widths: list[int | None], columns: int, width: int | None) -> list[int | None]:
    """``widths`` as columns' minimum widths if they fit in ``width`` beside the table's
    ``columns`` borders and paddings (3 a column, one more) and a little room for the free-text
    columns; else no minimum."""
    need = sum(w or 0 for w in widths) + 3 * columns + 1 + 8
    return widths if width is None or need <= width else [None] * len(widths)


def chats(servers: list[AdvertisedServer]) -> list[list[AdvertisedServer]]:
    """Servers grouped by the chat they serve (the nodes of a cluster together), in the order
    they were found."""
    groups: dict[str, list[AdvertisedServer]] = {}
    for s in servers:
        groups.setdefault(s.chat_key, []).append(s)
    return list(groups.values())


def advertised_table(report: DiscoveryReport, timeout: float | None = None) -> Table:
    table = Table(title="Advertised", title_justify="left", expand=False)
    with_key = any(s.fingerprint for s in report.servers)
    cols = ["Name", "Address", "Port", "Users", "TLS"]
    if with_key:
        cols.append("Key fingerprint (hint)")
    for col in [*cols, "Found via", "Server id"]:
        table.add_column(col, justify="right" if col in ("Port", "Users") else "left",
                         overflow="fold")
    for chat in chats(report.servers):
        s = chat[0]
        tls = Text("yes", style="green") if s.tls else Text("no", style="yellow")
        if len(chat) == 1 and s.cluster is None:
            row = [_t(s.name), _t(s.address), _t(s.port), _t(s.users), tls]
            if with_key:
                row.append(_t(s.fingerprint))
            table.add_row(*row, _t(", ".join(s.found_via)), _t(s.server_id))
            continue
        # the nodes of one cluster are one chat: one row, every node's address (and key)
        via = list(dict.fromkeys(v for n in chat for v in n.found_via))
        users = max((n.users for n in chat if n.users is not None), default=None)
        nodes = f"{len(chat)} node{'s' if len(chat) > 1 else ''}"
        row = [_t(f"{s.cluster} (cluster, {nodes})"), _t("\n".join(n.address for n in chat)),
               _t("\n".join(str(n.port) for n in chat)), _t(users), tls]
        if with_key:
            row.append(_t("\n".join(n.fingerprint or "" for n in chat)))
        table.add_row(*row, _t(", ".join(via)), _t(s.cluster_id))
    if with_key:
        table.caption = ("a fingerprint here is what the server claims: compare it with the "
                         "one shown when you first connect")
    if not report.servers:
        # the time it waited is measured to the 0.1 ms: a tenth of a second is enough here
        table.caption = "no richchat server answered" + (
            f" within {round(timeout, 1):g} s" if timeout else "")
    return table


def discovered_table(report: DiscoveryReport, width: int | None = None) -> Table:
    table = Table(title="Discovered", title_justify="left")
    with_os = any(h.os is not None for h in report.hosts)
    cols = ["IP", "MAC", "Vendor", "Interface", "Source"]
    if with_os:
        cols += ["OS", "Accuracy"]
    ip_min, mac_min = _mins([_widest([h.ip for h in report.hosts]),
                             _widest([h.mac for h in report.hosts])], len(cols), width)
    widths = {"IP": ip_min, "MAC": mac_min}
    for col in cols:
        table.add_column(col, justify="right" if col == "Accuracy" else "left",
                         min_width=widths.get(col), overflow="fold")
    for h in report.hosts:
        row = [_t(h.ip), _t(h.mac), _t(h.vendor), _t(h.interface), _t(h.source)]
        if with_os:
            row += [_t(h.os.name if h.os else None),
                    _t(f"{h.os.accuracy}%" if h.os else None)]
        table.add_row(*row)
    if not report.hosts:
        table.caption = "no hosts found"
    return table


def interfaces_table(report: DiscoveryReport, width: int | None = None) -> Table:
    table = Table(title="Local Interface", title_justify="left")
    rows = []
    for i in report.interfaces:
        addrs = "\n".join(
            f"{a.address}/{a.prefixlen}" if a.prefixlen is not None else a.address
            for a in i.addresses
        )
        default = f"yes, via\n{i.gateway}" if i.is_default and i.gateway else (
            "yes" if i.is_default else "")
        v4 = next((a for a in i.addresses if a.family == "ipv4"), None)
        netmask = i.netmask or (v4.netmask if v4 else None)
        bcast = i.broadcast or (v4.broadcast if v4 else None)
        mask_bcast = "\n".join(v for v in (netmask, bcast) if v)
        rows.append((i.name, addrs, i.mac, mask_bcast, default))
    # Fits 80 columns (discover piped or captured): the IPv6 addresses fold, while a MAC, a
    # netmask, a broadcast or a gateway is never split across lines.
    mac_width, mask_width, gw_width = _mins([
        _widest([r[2] for r in rows]),
        _widest([line for r in rows for line in r[3].splitlines()]),
        _widest([line for r in rows for line in r[4].splitlines()])], 5, width)
    table.add_column("Name", no_wrap=True)
    table.add_column("Addresses", overflow="fold")
    table.add_column("MAC", min_width=mac_width, overflow="fold")
    table.add_column("Netmask\nbroadcast", min_width=mask_width, overflow="fold")
    table.add_column("Default\nroute", min_width=gw_width, overflow="fold")
    for row in rows:
        table.add_row(*(_t(v) for v in row))
    return table


def report_renderable(report: DiscoveryReport, timeout: float | None = None) -> RenderableType:
    return Group(advertised_table(report, timeout), Text(""),
                 _Fitted(lambda width: discovered_table(report, width)), Text(""),
                 _Fitted(lambda width: interfaces_table(report, width)))


def notice_line(notice: Notice) -> Text:
    style = "bold red" if notice.exit_status else "bold yellow"
    line = Text("error: " if notice.exit_status else "warning: ", style=style)
    line.append(notice.message)
    if notice.hint:
        line.append(f" ({notice.hint})", style="dim")
    return line


def print_report(report: DiscoveryReport, out: Console, err: Console,
                 timeout: float | None = None) -> None:
    out.print(report_renderable(report, timeout))
    for notice in report.notices:
        err.print(notice_line(notice), soft_wrap=True)
