"""Rich tables for a DiscoveryReport: Advertised, Discovered, Local Interface."""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from richchat.core.discovery.models import AdvertisedServer, DiscoveryReport, Notice
from richchat.core.sheet import Col as _Col
from richchat.core.sheet import Sheet as _Sheet


def _t(value: object) -> Text:
    return Text("" if value is None else str(value))


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
