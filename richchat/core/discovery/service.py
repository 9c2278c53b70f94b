"""One discovery run: advertised servers, LAN hosts and local interfaces, concurrently.

``await discover(options)`` is the single entry point (the CLI and the join wizard use it);
``discover_sync(options)`` calls it from synchronous code. What could not be done becomes a
:class:`Notice` (one line + the fix), and the report's ``exit_status`` says how the CLI should
exit after printing it.

When it is done: the run ends as soon as every source has done its work, ``options.timeout``
being only the upper bound:

* ARP: the sweep has ended (one request per address, the silent ones asked again after
  0.25 s, then 0.5 s for late replies; the MAC vendor database loads meanwhile, once the
  first requests are out and zeroconf is imported: see :class:`_StartOrder`);
* UDP: the active query has been answered and no new server came for ``ANSWER_GRACE`` (0.3 s)
  after the last one; unanswered, ``UNANSWERED_WAIT`` after its last retry (at 1 s);
* DNS-SD: browsing has had its ``MDNS_WINDOW`` (0.8 s) and the instances seen are resolved;
* ``--os``: nmap has finished (it starts on the hosts that answered the sweep's first requests,
  while the sweep goes on; hosts found later get a run of their own).

``options.listen`` (``--listen S``) keeps the UDP and DNS-SD listeners open for S seconds
instead, for servers that only send their periodic beacon.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import threading
import time
from collections.abc import Callable

from richchat.core.discovery.interfaces import (
    MAX_AUTO_PREFIX,
    SweepTarget,
    broadcast_addresses,
    list_interfaces,
    sweep_targets,
)
from richchat.core.discovery.listen import ServerTable, listen_udp, source_filter
from richchat.core.discovery.models import (
    AdvertisedServer,
    DiscoveredHost,
    DiscoveryOptions,
    DiscoveryReport,
    LocalInterface,
    Notice,
    OsGuess,
)
from richchat.core.errors import UsageError
from richchat.core.exit_codes import ExitStatus

#: ``progress(source, text)``: called from the event loop as sources advance.
Progress = Callable[[str, str], None]

#: Time kept back at the end of the run to close sockets and build the report.
_MARGIN = 0.15
#: With --os the long part is nmap: listen for advertised servers only this long.
LISTEN_WITH_OS = 3.0
#: Wait for ARP replies after the last request of a sweep.
ARP_REPLY_WAIT = 0.5


#: Longest a CPU-heavy start waits for the one before it (normally 10-250 ms).
HOLD_BACK = 0.5


def _noop(_source: str, _text: str) -> None:
    return None


class _StartOrder:
    """The order of a run's CPU-heavy starts: the ARP sweep's first requests, then zeroconf's
    import, then scapy's MAC vendor database.

    The process has one GIL. Sending a /24's requests takes about 10 ms, but each ``send()``
    gives up the GIL and, while another thread computes, waits up to 5 ms to get it back:
    with the vendor database loading in a thread and zeroconf importing on the event loop,
    the first pass took 150 ms and every later step of the sweep started that much later
    (measured). DNS-SD's window (``MDNS_WINDOW``) starts once zeroconf is imported (0.1-0.25
    s of CPU), so that import is on the critical path; the vendor database (0.2-0.5 s) is
    needed only when the sweep is over, and loads while the sweep and DNS-SD wait. Each start
    waits for the one before it at most :data:`HOLD_BACK`.
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._sent = threading.Event()
        self._sent_on_loop = asyncio.Event()
        self._imported = threading.Event()

    def requests_sent(self) -> None:
        """The sweep's first requests are out, or there is no sweep (any thread)."""
        if self._sent.is_set():
            return
        self._sent.set()
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self.loop.call_soon_threadsafe(self._sent_on_loop.set)

    def mdns_imported(self) -> None:
        """zeroconf is imported, or DNS-SD is not browsed."""
        self._imported.set()

    async def before_mdns(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._sent_on_loop.wait(), HOLD_BACK)

    def before_vendors(self) -> None:
        """In the vendor database's thread."""
        self._sent.wait(HOLD_BACK)
        self._imported.wait(HOLD_BACK)


def _validate(options: DiscoveryOptions, interfaces: list[LocalInterface]) -> None:
    if options.interface is not None and not interfaces:
        raise UsageError(f"no such network interface: {options.interface}",
                         hint="see the Local Interface table of `richchat discover --no-arp`")
    for addr in options.broadcast or []:
        try:
            ip = ipaddress.IPv4Address(addr)
        except ValueError:
            raise UsageError(f"--broadcast needs an IPv4 address, not {addr!r}") from None
        if ip == ipaddress.IPv4Address("255.255.255.255"):
            raise UsageError("--broadcast 255.255.255.255 is not allowed",
                             hint="use the subnet broadcast address, e.g. 192.168.1.255")
    for cidr in options.subnets or []:
        try:
            net = ipaddress.IPv4Network(cidr, strict=False)
        except ValueError:
            raise UsageError(f"--subnet needs an IPv4 CIDR like 192.168.1.0/24, not {cidr!r}") \
                from None
        if net.prefixlen < 16:
            raise UsageError(f"--subnet {cidr} is larger than a /16; sweep smaller pieces")


def planned_targets(options: DiscoveryOptions) -> list[SweepTarget]:
    """The subnets an ARP sweep with these options would cover (for confirmation prompts)."""
    interfaces = list_interfaces(options.interface)
    _validate(options, interfaces)
    return sweep_targets(interfaces, options.subnets, options.interface)


def _interface_networks(interfaces: list[LocalInterface]) -> list[ipaddress.IPv4Network]:
    nets = []
    for iface in interfaces:
        for addr in iface.addresses:
            if addr.family == "ipv4" and addr.prefixlen is not None:
                nets.append(ipaddress.IPv4Interface(f"{addr.address}/{addr.prefixlen}").network)
    return nets


async def _advertised(
    options: DiscoveryOptions, interfaces: list[LocalInterface], deadline: float,
    started: float, progress: Progress, order: _StartOrder,
) -> tuple[list[AdvertisedServer], list[Notice]]:
    notices: list[Notice] = []

    def on_new(server: AdvertisedServer) -> None:
        progress("advertised", f"found {server.name} at {server.address}:{server.port}")

    table = ServerTable(started, on_new)
    broadcast = options.broadcast if options.broadcast is not None else broadcast_addresses(
        interfaces)
    if options.broadcast is None and any(i.loopback for i in interfaces) and options.interface:
        broadcast = ["127.255.255.255"]  # --interface lo: discover servers on this machine
    accept = source_filter(_interface_networks(interfaces) if options.interface else None)
    if not broadcast:
        notices.append(Notice(source="advertised",
                              message="no IPv4 broadcast address to send the discovery query to",
                              hint="pass --broadcast ADDR"))
    progress("advertised", "listening for beacons, query sent")
    linger = options.listen is not None
    jobs = [listen_udp(table, beacon_port=options.beacon_port, broadcast=broadcast,
                       deadline=deadline, accept=accept, linger=linger)]
    if options.mdns:
        from richchat.core.discovery.mdns import MDNS_WINDOW

        mdns_ifaces = None
        if options.interface is not None:
            mdns_ifaces = [a.address for i in interfaces for a in i.addresses if a.family == "ipv4"]
        window = None if linger else MDNS_WINDOW
        jobs.append(_mdns_guarded(table, deadline, mdns_ifaces, accept, notices, window, order))
    results = await asyncio.gather(*jobs)
    notices.extend(results[0] or [])
    return table.result(), notices


async def _mdns_guarded(table: ServerTable, deadline: float, ifaces: list[str] | None,
                        accept: Callable[[str], bool], notices: list[Notice],
                        window: float | None, order: _StartOrder) -> list[Notice]:
    await order.before_mdns()
    try:
        import zeroconf.asyncio  # noqa: F401  (the CPU-heavy part of DNS-SD's start)
    except ImportError:
        pass  # browse_mdns says so below
    finally:
        order.mdns_imported()
    from richchat.core.discovery.mdns import browse_mdns

    try:
        await browse_mdns(table, deadline=deadline, interfaces=ifaces, accept=accept,
                          window=window)
    except Exception as exc:
        notices.append(Notice(source="mdns", message=f"DNS-SD browsing failed: {exc}"))
    return []


async def _hosts(
    options: DiscoveryOptions, interfaces: list[LocalInterface], deadline: float,
    progress: Progress, durations: dict[str, float], order: _StartOrder,
) -> tuple[list[DiscoveredHost], list[Notice]]:
    try:
        return await _hosts_found(options, interfaces, deadline, progress, durations, order)
    finally:
        order.requests_sent()  # no sweep, or it failed: nothing to hold back


async def _hosts_found(
    options: DiscoveryOptions, interfaces: list[LocalInterface], deadline: float,
    progress: Progress, durations: dict[str, float], order: _StartOrder,
) -> tuple[list[DiscoveredHost], list[Notice]]:
    from richchat.core.discovery import arp

    notices: list[Notice] = []
    targets = sweep_targets(interfaces, options.subnets, options.interface)
    kept: list[SweepTarget] = []
    for target in targets:
        if target.explicit and target.source is None:
            where = f"on {options.interface}" if options.interface else "on any local interface"
            notices.append(Notice(
                source="subnet",
                message=f"not sweeping {target.network}: it is not {where}, and ARP only "
                "reaches the local link",
                hint="pick a subnet of the Local Interface table",
            ))
        elif target.too_large and not options.allow_large:
            notices.append(Notice(
                source="subnet",
                message=f"not sweeping {target.network} on {target.interface}: larger than "
                f"/{MAX_AUTO_PREFIX} ({target.network.num_addresses} addresses)",
                hint="confirm on a terminal, or pass --subnet CIDR",
            ))
        else:
            kept.append(target)
    hosts: list[DiscoveredHost] = []
    os_runs: _OsRuns | None = None
    if options.os:
        from richchat.core.discovery import osdetect

        blocker = osdetect.os_detection_blocker()
        if blocker is not None:
            notices.append(blocker)
        else:
            os_runs = _OsRuns(deadline, progress)
    t0 = time.monotonic()
    if kept and arp.can_open_raw_socket():
        names = ", ".join(str(t.network) for t in kept)

        def load_manuf() -> None:
            order.before_vendors()
            arp.load_manuf()
            durations["manuf_load"] = round(time.monotonic() - t0, 4)

        # the vendor database loads while the sweep mostly waits for replies
        manuf = asyncio.ensure_future(asyncio.to_thread(load_manuf))
        progress("arp", f"ARP sweep of {names}")
        # with --os, nmap starts on the hosts that answered while the sweep goes on
        on_found = os_runs.from_thread if os_runs is not None else None
        try:
            hosts = await asyncio.to_thread(arp.arp_sweep, kept, ARP_REPLY_WAIT, deadline,
                                            False, on_found, order.requests_sent)
        finally:
            swept = time.monotonic()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(manuf, max(0.05, deadline - time.monotonic()))
        for host in hosts:
            host.vendor = arp.vendor_of(host.mac) if manuf.done() else None
        if swept >= deadline - 0.01:
            notices.append(Notice(source="arp", message="the ARP sweep was cut short by "
                                  "--timeout; some hosts may be missing",
                                  hint="raise --timeout"))
        durations["arp"] = round(swept - t0, 4)
        progress("arp", f"{len(hosts)} hosts answered")
    else:
        order.requests_sent()
        if kept:
            notices.append(Notice(
                source="arp",
                message="ARP sweep needs root or CAP_NET_RAW; showing the kernel's neighbour "
                "table instead",
                hint=arp.PRIVILEGE_HINT,
            ))
        hosts = arp.neighbour_table(targets or None, options.interface)
        durations["neighbours"] = round(time.monotonic() - t0, 4)
    if os_runs is not None and hosts:
        os_runs.start([h.ip for h in hosts])  # those not asked yet (neighbour table: all)
        guesses = await os_runs.results(notices)
        for host in hosts:
            host.os = guesses.get(host.ip)
        if os_runs.started is not None:
            durations["os"] = round(time.monotonic() - os_runs.started, 4)
    return hosts, notices


class _OsRuns:
    """nmap -O runs started as hosts are found: one nmap for each batch of hosts that answered
    the ARP sweep together (nmap probes the hosts of a run in parallel), so OS detection starts
    a few milliseconds into the sweep instead of after it."""

    def __init__(self, deadline: float, progress: Progress) -> None:
        self.deadline = deadline
        self.progress = progress
        self.loop = asyncio.get_running_loop()
        self.asked: set[str] = set()
        self.runs: list[asyncio.Future[dict[str, OsGuess]]] = []
        self.started: float | None = None
        self.skipped = False

    def from_thread(self, ips: list[str]) -> None:
        """The sweep thread found ``ips``: start their run on the event loop."""
        self.loop.call_soon_threadsafe(self.start, ips)

    def start(self, ips: list[str]) -> None:
        from richchat.core.discovery import osdetect

        new = [ip for ip in ips if ip not in self.asked]
        if not new:
            return
        self.asked.update(new)
        remaining = self.deadline - time.monotonic() - _MARGIN
        if remaining < 2:
            self.skipped = True
            return
        if self.started is None:
            self.started = time.monotonic()
        self.progress("os", f"nmap -O on {len(self.asked)} hosts")
        self.runs.append(asyncio.ensure_future(
            asyncio.to_thread(osdetect.detect_os, new, remaining)))

    async def results(self, notices: list[Notice]) -> dict[str, OsGuess]:
        guesses: dict[str, OsGuess] = {}
        timed_out = False
        for outcome in await asyncio.gather(*self.runs, return_exceptions=True):
            if isinstance(outcome, TimeoutError):
                timed_out = True
            elif isinstance(outcome, BaseException):
                notices.append(Notice(source="os", message=f"nmap failed: {outcome}",
                                      hint="raise --timeout, or run nmap -O by hand",
                                      exit_status=int(ExitStatus.ERROR)))
            else:
                guesses.update(outcome)
        if timed_out:
            notices.append(Notice(
                source="os", message="OS detection did not finish within --timeout",
                hint="raise --timeout", exit_status=int(ExitStatus.TIMEOUT)))
        if self.skipped:
            notices.append(Notice(
                source="os", message="OS detection skipped: no time left",
                hint="raise --timeout", exit_status=int(ExitStatus.TIMEOUT),
            ))
        return guesses


async def discover(
    options: DiscoveryOptions, progress: Progress | None = None
) -> DiscoveryReport:
    """Run every discovery source concurrently and return one report (never raises for a
    missing privilege or tool: those become notices)."""
    say = progress or _noop
    started = time.monotonic()
    deadline = started + options.timeout - _MARGIN
    interfaces = await asyncio.to_thread(list_interfaces, options.interface)
    _validate(options, interfaces)
    durations: dict[str, float] = {"interfaces": round(time.monotonic() - started, 4)}
    report = DiscoveryReport(interfaces=interfaces)
    order = _StartOrder()
    if not (options.arp or options.os):
        order.requests_sent()
    if not (options.advertised and options.mdns):
        order.mdns_imported()

    async def advertised() -> None:
        t0 = time.monotonic()
        listen_until = deadline
        if options.listen is not None:
            listen_until = min(deadline, started + options.listen)
        elif options.os:
            listen_until = min(deadline, started + LISTEN_WITH_OS - _MARGIN)
        servers, notices = await _advertised(options, interfaces, listen_until, started, say,
                                             order)
        report.servers = servers
        report.notices.extend(notices)
        durations["advertised"] = round(time.monotonic() - t0, 4)

    async def hosts() -> None:
        found, notices = await _hosts(options, interfaces, deadline, say, durations, order)
        report.hosts = found
        report.notices.extend(notices)

    tasks = []
    if options.advertised:
        tasks.append(asyncio.create_task(advertised(), name="discover-advertised"))
    if options.arp or options.os:
        tasks.append(asyncio.create_task(hosts(), name="discover-hosts"))
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic())
                                           + 1.0)
        for task in pending:
            task.cancel()
            report.notices.append(Notice(source="advertised" if "advertised" in task.get_name()
                                         else "arp",
                                         message=f"{task.get_name()} did not finish in time"))
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for task in done:
            exc = task.exception()
            if exc is not None:
                raise exc
    report.durations = durations
    report.elapsed = round(time.monotonic() - started, 4)
    report.exit_status = next((n.exit_status for n in report.notices if n.exit_status), 0)
    return report


def discover_sync(
    options: DiscoveryOptions, progress: Progress | None = None
) -> DiscoveryReport:
    """``discover`` for synchronous callers; works even when an event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(discover(options, progress))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, discover(options, progress)).result()
