"""Rich tables for a DiscoveryReport: Advertised, Discovered, Local Interface."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.table import Table
from rich.text import Text

from richchat.core.discovery.models import AdvertisedServer, DiscoveryReport, Notice


def _t(value: object) -> Text:
    return Text("" if value is None else str(value))


@dataclass
class _Col:
    header: str
    #: an address, a MAC, a port, a count: kept whole when the table fits so
    keep: bool = False
    right: bool = False


#: the least room a free-text column gets beside columns kept whole
FREE_TEXT_MIN = 6
#: below this many characters a column (every column folding) the table is shown as a list
FOLD_MIN = 8


@dataclass
class _Sheet:
    """One of discover's tables, laid out when the width it gets is known:

    * wide enough: a table whose kept columns (addresses, MACs, ports) are never split;
    * narrower: a table where every column folds;
    * narrower still (a tiny pane): a list, ``Header: value`` a line, rows apart, so that no
      value is dropped, which a table of 1-character columns would do.

    Never is anything cropped."""

    title: str
    cols: list[_Col]
    rows: list[list[Text]] = field(default_factory=list)
    caption: str | None = None

    def _widest(self, i: int) -> int:
        return max((len(line) for row in self.rows for line in row[i].plain.splitlines()),
                   default=0)

    def _header(self, i: int) -> int:
        """The longest word of column ``i``'s header: never folded mid-word in a table laid
        out for its values."""
        return max((len(word) for word in self.cols[i].header.split()), default=0)

    def table(self, keep: bool) -> Table:
        table = Table(title=self.title, title_justify="left", caption=self.caption)
        for i, col in enumerate(self.cols):
            # (only a column kept whole gets a minimum width, and it does not wrap: rich
            # takes the room it lacks from wrapping columns only, and crops a table whose
            # wrapping columns have minimum widths too)
            whole = keep and col.keep and self._widest(i) > 0
            table.add_column(col.header, justify="right" if col.right else "left",
                             min_width=max(self._widest(i), self._header(i)) if whole else None,
                             no_wrap=whole, overflow="fold")
        for row in self.rows:
            table.add_row(*row)
        return table

    def stacked(self) -> RenderableType:
        parts: list[RenderableType] = [Text(self.title, style="italic")]
        for row in self.rows:
            parts.append(Text(""))
            for col, cell in zip(self.cols, row, strict=True):
                if cell.plain:
                    line = Text(f"{col.header.replace(chr(10), ' ')}: ", style="bold")
                    # lines are items, but an indented line belongs to the one before
                    # (an address's broadcast)
                    items: list[Text] = []
                    for part in cell.split("\n"):
                        if items and part.plain.startswith(" "):
                            items[-1] = Text.assemble(items[-1], " (", part.plain.strip(), ")")
                        else:
                            items.append(part)
                    line.append_text(Text(", ").join(items))
                    parts.append(line)
        if self.caption:
            parts += [Text(""), Text(self.caption, style="italic")]
        return Group(*parts)

    def __rich_console__(self, console: Console,
                         options: ConsoleOptions) -> Iterator[RenderableType]:
        width = options.max_width
        # each column: its content, 2 of padding and 1 of border; one more border at the end
        kept = 1 + sum(max(self._widest(i) if c.keep else FREE_TEXT_MIN, self._header(i)) + 3
                       for i, c in enumerate(self.cols))
        folded = 1 + (FOLD_MIN + 3) * len(self.cols)
        if kept <= width:
            yield self.table(True)
        elif folded <= width:
            yield self.table(False)
        else:
            yield self.stacked()


def chats(servers: list[AdvertisedServer]) -> list[list[AdvertisedServer]]:
    """Servers grouped by the chat they serve (the nodes of a cluster together), in the order
    they were found."""
    groups: dict[str, list[AdvertisedServer]] = {}
    for s in servers:
        groups.setdefault(s.chat_key, []).append(s)
    return list(groups.values())


def advertised_sheet(report: DiscoveryReport, timeout: float | None = None) -> _Sheet:
    with_key = any(s.fingerprint for s in report.servers)
    cols = [_Col("Name"), _Col("Address", keep=True), _Col("Port", keep=True, right=True),
            _Col("Users", keep=True, right=True), _Col("TLS", keep=True)]
    if with_key:
        cols.append(_Col("Key fingerprint (hint)"))
    sheet = _Sheet("Advertised", [*cols, _Col("Found via"), _Col("Server id")])
    for chat in chats(report.servers):
        s = chat[0]
        tls = Text("yes", style="green") if s.tls else Text("no", style="yellow")
        if len(chat) == 1 and s.cluster is None:
            row = [_t(s.name), _t(s.address), _t(s.port), _t(s.users), tls]
            if with_key:
                row.append(_t(s.fingerprint))
            sheet.rows.append([*row, _t(", ".join(s.found_via)), _t(s.server_id)])
            continue
        # the nodes of one cluster are one chat: one row, every node's address (and key)
        via = list(dict.fromkeys(v for n in chat for v in n.found_via))
        users = max((n.users for n in chat if n.users is not None), default=None)
        nodes = f"{len(chat)} node{'s' if len(chat) > 1 else ''}"
        row = [_t(f"{s.cluster} (cluster, {nodes})"), _t("\n".join(n.address for n in chat)),
               _t("\n".join(str(n.port) for n in chat)), _t(users), tls]
        if with_key:
            row.append(_t("\n".join(n.fingerprint or "" for n in chat)))
        sheet.rows.append([*row, _t(", ".join(via)), _t(s.cluster_id)])
    if with_key:
        sheet.caption = ("a fingerprint here is what the server claims: compare it with the "
                         "one shown when you first connect")
    if not report.servers:
        # the time it waited is measured to the 0.1 ms: a tenth of a second is enough here
        sheet.caption = "no richchat server answered" + (
            f" within {round(timeout, 1):g} s" if timeout else "")
    return sheet


def advertised_table(report: DiscoveryReport, timeout: float | None = None) -> Table:
    """The Advertised table, laid out for a wide terminal."""
    return advertised_sheet(report, timeout).table(True)


def discovered_sheet(report: DiscoveryReport) -> _Sheet:
    with_os = any(h.os is not None for h in report.hosts)
    cols = [_Col("IP", keep=True), _Col("MAC", keep=True), _Col("Vendor"), _Col("Interface"),
            _Col("Source")]
    if with_os:
        cols += [_Col("OS"), _Col("Accuracy", right=True)]
    sheet = _Sheet("Discovered", cols)
    for h in report.hosts:
        row = [_t(h.ip), _t(h.mac), _t(h.vendor), _t(h.interface), _t(h.source)]
        if with_os:
            row += [_t(h.os.name if h.os else None),
                    _t(f"{h.os.accuracy}%" if h.os else None)]
        sheet.rows.append(row)
    if not report.hosts:
        sheet.caption = "no hosts found"
    return sheet


def _address(address: str, prefixlen: int | None) -> str:
    # an IPv6 scope (fe80::1%eth0) repeats the interface the row is about
    address = address.split("%", 1)[0]
    return f"{address}/{prefixlen}" if prefixlen is not None else address


def interfaces_sheet(report: DiscoveryReport) -> _Sheet:
    """Two columns, as ``ip address`` shows them, so that at 80 columns no address is split:
    under the interface's name its MAC and default route; each IPv4 address with its
    broadcast address under it (the netmask is the prefix length), then the IPv6 ones."""
    sheet = _Sheet("Local Interface", [_Col("Interface", keep=True), _Col("Addresses", keep=True)])
    for i in report.interfaces:
        left = [i.name]
        if i.mac:
            left.append(i.mac)
        if i.is_default:
            left.append("default route")
            left += [f"via {_address(gw, None)}" for gw in (i.gateway, i.gateway6) if gw]
        lines = []
        for a in i.addresses:
            if a.family == "ipv4":
                lines.append(_address(a.address, a.prefixlen))
                bcast = a.broadcast or (i.broadcast if len(lines) == 1 else None)
                if bcast:
                    lines.append(f"  broadcast {bcast}")
        lines += [_address(a.address, a.prefixlen) for a in i.addresses if a.family != "ipv4"]
        sheet.rows.append([_t("\n".join(left)), _t("\n".join(lines))])
    return sheet


def report_renderable(report: DiscoveryReport, timeout: float | None = None) -> RenderableType:
    return Group(advertised_sheet(report, timeout), Text(""), discovered_sheet(report),
                 Text(""), interfaces_sheet(report))


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
