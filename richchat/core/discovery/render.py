"""Rich tables for a DiscoveryReport: Advertised, Discovered, Local Interface."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.table import Table
from rich.text import Text

from richchat.core.discovery.models import AdvertisedServer, DiscoveryReport, Notice


def _t(value: object) -> Text:
    return Text("" if value is None else str(value))


def _widest(values: list[str | None], keep: bool = True) -> int | None:
    """The width of the longest value, as a column's minimum width when ``keep``: an address
    column is then never narrower, so that a piped table (80 columns) never splits an address
    across lines; free-text columns fold instead."""
    if not keep:
        return None
    return max((len(line) for v in values if v for line in v.splitlines()), default=None)


#: the least room a free-text column gets beside columns kept whole (it folds below that)
FREE_TEXT_MIN = 6


class _Fitted:
    """A table built when the width it gets is known: its address columns keep every address
    whole if the table fits so, else (a narrow terminal) every column may fold; never is a
    column cropped."""

    def __init__(self, build: Callable[[bool], Table]) -> None:
        self.build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Table]:
        table = self.build(True)
        # each column: its content, 2 of padding and 1 of border; one more border at the end
        need = 1 + sum((c.min_width or FREE_TEXT_MIN) + 3 for c in table.columns)
        yield table if need <= options.max_width else self.build(False)


def chats(servers: list[AdvertisedServer]) -> list[list[AdvertisedServer]]:
    """Servers grouped by the chat they serve (the nodes of a cluster together), in the order
    they were found."""
    groups: dict[str, list[AdvertisedServer]] = {}
    for s in servers:
        groups.setdefault(s.chat_key, []).append(s)
    return list(groups.values())


def advertised_table(report: DiscoveryReport, timeout: float | None = None,
                     keep: bool = True) -> Table:
    table = Table(title="Advertised", title_justify="left", expand=False)
    # kept whole: an address, a port, a count (the rest folds)
    kept = {"Address": _widest([s.address for s in report.servers], keep),
            "Port": _widest([str(s.port) for s in report.servers], keep),
            "Users": _widest([str(s.users) for s in report.servers if s.users is not None],
                             keep),
            "TLS": _widest(["yes"] if report.servers else [], keep)}
    with_key = any(s.fingerprint for s in report.servers)
    cols = ["Name", "Address", "Port", "Users", "TLS"]
    if with_key:
        cols.append("Key fingerprint (hint)")
    for col in [*cols, "Found via", "Server id"]:
        table.add_column(col, justify="right" if col in ("Port", "Users") else "left",
                         min_width=kept.get(col), no_wrap=kept.get(col) is not None,
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


def discovered_table(report: DiscoveryReport, keep: bool = True) -> Table:
    table = Table(title="Discovered", title_justify="left")
    with_os = any(h.os is not None for h in report.hosts)
    cols = ["IP", "MAC", "Vendor", "Interface", "Source"]
    if with_os:
        cols += ["OS", "Accuracy"]
    widths = {"IP": _widest([h.ip for h in report.hosts], keep),
              "MAC": _widest([h.mac for h in report.hosts], keep)}
    for col in cols:
        table.add_column(col, justify="right" if col == "Accuracy" else "left",
                         min_width=widths.get(col), no_wrap=col in widths and keep,
                         overflow="fold")
    for h in report.hosts:
        row = [_t(h.ip), _t(h.mac), _t(h.vendor), _t(h.interface), _t(h.source)]
        if with_os:
            row += [_t(h.os.name if h.os else None),
                    _t(f"{h.os.accuracy}%" if h.os else None)]
        table.add_row(*row)
    if not report.hosts:
        table.caption = "no hosts found"
    return table


def interfaces_table(report: DiscoveryReport, keep: bool = True) -> Table:
    """Four columns, so that at 80 columns no address is split: the default route is said
    under the interface's name, the netmask and broadcast share a column."""
    table = Table(title="Local Interface", title_justify="left")
    rows = []
    for i in report.interfaces:
        ipv4 = [f"{a.address}/{a.prefixlen}" if a.prefixlen is not None else a.address
                for a in i.addresses if a.family == "ipv4"]
        others = [f"{a.address}/{a.prefixlen}" if a.prefixlen is not None else a.address
                  for a in i.addresses if a.family != "ipv4"]
        name = i.name
        if i.is_default:
            name += f"\ndefault route\nvia {i.gateway}" if i.gateway else "\ndefault route"
        v4 = next((a for a in i.addresses if a.family == "ipv4"), None)
        netmask = i.netmask or (v4.netmask if v4 else None)
        bcast = i.broadcast or (v4.broadcast if v4 else None)
        mask_bcast = "\n".join(v for v in (netmask, bcast) if v)
        rows.append((name, ipv4, others, i.mac, mask_bcast))
    # the IPv4 addresses are kept whole, the IPv6 ones (long, link-local ones longer) fold
    # (a column kept whole is also no_wrap: rich then takes the room it lacks from the others)
    table.add_column("Interface", min_width=_widest([r[0] for r in rows], keep),
                     no_wrap=keep, overflow="fold")
    table.add_column("Addresses", min_width=_widest([a for r in rows for a in r[1]], keep),
                     overflow="fold")
    table.add_column("MAC", min_width=_widest([r[3] for r in rows], keep), no_wrap=keep,
                     overflow="fold")
    table.add_column("Netmask\nbroadcast", min_width=_widest([r[4] for r in rows], keep),
                     no_wrap=keep, overflow="fold")
    for name, ipv4, others, mac, mask_bcast in rows:
        table.add_row(_t(name), _t("\n".join(ipv4 + others)), _t(mac), _t(mask_bcast))
    return table


def report_renderable(report: DiscoveryReport, timeout: float | None = None) -> RenderableType:
    return Group(_Fitted(lambda keep: advertised_table(report, timeout, keep)), Text(""),
                 _Fitted(lambda keep: discovered_table(report, keep)), Text(""),
                 _Fitted(lambda keep: interfaces_table(report, keep)))


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
