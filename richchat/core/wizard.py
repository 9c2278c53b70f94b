"""The ``richchat join`` wizard (no address given): find a server, pick a port, pick a name.

1. Discovery (:func:`richchat.core.discovery.discover`): one table grouped as *Advertised
   servers*, *Discovered hosts* and *Local interfaces*; the user picks a row by number or types
   an address by hand.
2. For a host (not an advertised server, whose port is known): a port scan
   (:func:`richchat.core.scanner.scan`) with a progress bar, then the open ports, the joinable
   chat services first and marked; the user picks one or types a port.
3. Before any nickname is asked: is the chosen port a richchat server? (The client's own HELLO
   check, :meth:`ChatClient.connect`.)
4. The nickname: checked locally and against the server's user list (everyone is always in
   the lobby, so its ``ULIST`` names every user); a refused name is asked again with the reason.

It never strands the user: a step that fails goes back to the choice before it, with the
reason on screen. A port that is not a chat server (or refuses) goes back to the port list; a
host that cannot be reached, refuses, or has no open port goes back to the host list; a taken
or invalid nickname to the nickname prompt. Enter on an empty prompt quits at every step (the
nickname prompt's suggestion in brackets is taken with Enter; ``q`` quits there too), and
Ctrl+C quits at once (:class:`KeyboardInterrupt` reaches the command, which exits 130).

Everything talks to the terminal through a :class:`rich.console.Console` and an ``ask``
function, so tests can drive it. Progress goes to stderr.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from richchat.core.client import Address, ChatClient, parse_address
from richchat.core.errors import (
    BadFileError,
    ConnectionRefusedRichchatError,
    KeyMismatchError,
    RichchatError,
    ServerFullError,
    UnknownHostError,
    UntrustedServerError,
    UsageError,
)
from richchat.core.protocol.text import claim_problem, fold_name, is_digits, nick_problem
from richchat.core.trust.connect import TrustPolicy, UnknownServerKey

if TYPE_CHECKING:
    from richchat.core.discovery import DiscoveryReport
    from richchat.core.protocol.frames import Hello
    from richchat.core.scanner import ScanProgress, ScanReport
    from richchat.core.scanner.models import PortResult

Ask = Callable[[str], str]
Group = Literal["advertised", "host", "interface"]

GROUP_TITLES: dict[Group, str] = {
    "advertised": "Advertised servers",
    "host": "Discovered hosts",
    "interface": "Local interfaces",
}


@dataclass(frozen=True)
class Candidate:
    """One row of the first table: a place to join (advertised) or to scan (host, interface)."""

    group: Group
    host: str
    port: int | None  # known for advertised servers
    name: str  # server name, vendor, or interface name
    detail: str
    #: the server advertised TLS (then it is never joined in plaintext) and its key's
    #: fingerprint (a hint shown on first contact)
    tls: bool = False
    fingerprint: str | None = None
    #: the other nodes of the same chat (a cluster): where the chat reconnects if this
    #: node goes away
    alternates: tuple[Address, ...] = ()


def candidates(report: DiscoveryReport) -> list[Candidate]:
    """Every row of the discovery table, in display order."""
    from richchat.core.discovery.render import chats

    rows: list[Candidate] = []
    for chat in chats(report.servers):
        server = chat[0]  # the nodes of a cluster are one chat: one row
        users = f"{server.users} users" if server.users is not None else ""
        via = ", ".join(server.found_via)
        tls = "TLS" if server.tls else "not encrypted"
        name, nodes = server.name, ""
        if server.cluster is not None:
            name = server.cluster
            nodes = f"{len(chat)} node{'s' if len(chat) > 1 else ''} of one chat"
        rows.append(Candidate("advertised", server.address, server.port, name,
                              " · ".join(x for x in (nodes, users, tls, via) if x),
                              tls=server.tls, fingerprint=server.fingerprint,
                              alternates=tuple(Address(n.address, n.port) for n in chat[1:])))
    for host in report.hosts:
        os_name = host.os.name if host.os else ""
        rows.append(Candidate("host", host.ip, None, host.vendor or "",
                              " · ".join(x for x in (host.mac or "", host.interface or "",
                                                       os_name) if x)))
    for iface in report.interfaces:
        for addr in iface.addresses:
            if addr.family != "ipv4":
                continue
            rows.append(Candidate("interface", addr.address, None, iface.name,
                                  "this machine" + (" · loopback" if iface.loopback else "")))
    return rows


def candidates_table(rows: list[Candidate]) -> Table:
    table = Table(title="Found on the network", title_justify="left", expand=False)
    table.add_column("#", justify="right", style="bold", no_wrap=True)
    # folded, never cut: in a narrow terminal an address ellipsised ("10.77.237…") could not
    # be told from the next one
    table.add_column("address", overflow="fold")
    table.add_column("name", overflow="fold")
    table.add_column("details", style="dim", overflow="fold")
    current: Group | None = None
    for n, row in enumerate(rows, 1):
        if row.group != current:
            current = row.group
            table.add_section()
            table.add_row("", Text(GROUP_TITLES[current], style="bold underline"), "", "")
        where = str(Address(row.host, row.port)) if row.port else row.host
        table.add_row(str(n), Text(where, overflow="fold"), Text(row.name, overflow="fold"),
                      Text(row.detail, overflow="fold"))
    if not rows:
        table.add_row("", Text("nothing found", style="italic"), "", "")
    return table


def port_rows(report: ScanReport) -> list[PortResult]:
    """The open ports in display order: the joinable chat ports first, then the rest."""
    return sorted(report.open, key=lambda r: (not r.joinable, r.port))


def ports_table(report: ScanReport) -> Table:
    table = Table(title=f"Open ports on {report.address}", title_justify="left")
    table.add_column("#", justify="right", style="bold")
    table.add_column("port", justify="right")
    table.add_column("service")
    table.add_column("chat")
    for n, result in enumerate(port_rows(report), 1):
        service = result.service or ""
        if result.richchat is not None and result.richchat.server_name:
            service = f"{service} ({result.richchat.server_name})"
        chat = Text("joinable ✔", style="bold green") if result.joinable else Text("")
        if result.joinable and result.richchat is not None:
            chat.append(" TLS" if result.richchat.tls else " not encrypted",
                        style="green" if result.richchat.tls else "yellow")
        table.add_row(str(n), str(result.port), Text(service, overflow="fold"), chat)
    if not report.open:
        table.add_row("", "", Text("no open ports", style="italic"), "")
    return table


def _pick(ask: Ask, console: Console, count: int, prompt: str) -> int | str:
    """A row number (1-based) or the text the user typed instead; '' means quit."""
    while True:
        answer = ask(prompt).strip()
        if not answer or answer.lower() in ("q", "quit"):
            return ""
        # ASCII digits only: int() refuses "²", a digit too, and 4,300 digits. A bare number
        # is a row, never an address ("9" would be 0.0.0.9 to the resolver, and a long one
        # a DNS look-up): one past the list is asked again.
        if answer.isascii() and answer.isdigit():
            row = answer.lstrip("0")
            if is_digits(row, 9) and int(row) <= count:
                return int(row)
            console.print(Text(f"Choose 1-{count}, or type an address." if count else
                               "Nothing to pick from: type an address (HOST[:PORT]).",
                               style="red"))
            continue
        return answer


#: Longest wait for a port to answer the richchat HELLO before asking for a nickname
PROBE_TIMEOUT = 5.0


async def probe_server(address: Address, timeout: float,
                       trust: TrustPolicy | None = None) -> Hello:
    """The server's HELLO if ``address`` is a richchat server; else the client's error
    (:class:`ProtocolError` for another service, refused, unknown host, timeout; with
    ``trust``, a changed or unknown key: :mod:`richchat.core.trust.connect`)."""
    client = ChatClient(address.host, address.port, timeout=timeout, trust=trust)
    try:
        return await client.connect()
    finally:
        await client.close()


async def check_nick(address: Address, nick: str, timeout: float,
                     trust: TrustPolicy | None = None) -> str | None:
    """Why ``nick`` would be refused on ``address`` (None if it looks free)."""
    problem = claim_problem(nick)
    if problem:
        return problem
    client = ChatClient(address.host, address.port, timeout=timeout, trust=trust)
    try:
        await client.connect()
        # The lobby ULIST follows the welcome and history; everyone is in the lobby. A server
        # that never sends it (or floods us with anything else) costs one timeout, raised as
        # a RichchatError like every other failure of this step.
        from richchat.core.protocol import frames as f

        deadline = client.deadline()
        while not isinstance(
            await client.read_frame(timeout, "the server's user list", deadline=deadline),
            f.UserList,
        ):
            pass
        holder = client.name_in_use(nick)
        if holder is None:
            return None
        if fold_name(holder) == fold_name(nick):
            return "already in use (name_taken)"
        return f"looks like {holder}, who is online (name_taken)"
    finally:
        await client.close()


class Wizard:
    def __init__(self, console: Console, ask: Ask, timeout: float = 10.0,
                 discovery_timeout: float = 3.0, trust: TrustPolicy | None = None) -> None:
        self.console = console
        self.ask = ask
        self.timeout = timeout
        self.discovery_timeout = discovery_timeout
        #: after run(): the other nodes of the chat picked (a cluster), for failover
        self.alternates: list[Address] = []
        #: TLS with trust on first use for every connection the wizard makes (the chat
        #: screen then uses the same policy: a key trusted here is not asked about again)
        self.trust = trust
        self._base_mode = trust.mode if trust is not None else "auto"

    # trust ------------------------------------------------------------------
    def expect_tls(self, tls: bool, hint: str | None) -> None:
        """What discovery or the scan said about the target: TLS (never plaintext then) and
        its advertised fingerprint (shown on first contact, never trusted as such)."""
        if self.trust is not None:
            self.trust.mode = "tls" if tls or self._base_mode == "tls" else "auto"
            self.trust.hint = hint

    def ask_trust(self, question: UnknownServerKey) -> bool:
        """First contact with a TLS server: show its key, ask; True if the user trusts it."""
        assert self.trust is not None
        out = self.console
        out.print(Text(f"First connection to {question.host}:{question.port} over TLS. "
                       "Its key's fingerprint:", style="bold"))
        out.print(Text(f"  {question.fingerprint}", style="bold cyan"))
        if question.advertised is not None and question.advertised != question.fingerprint:
            out.print(Text(f"It is NOT the fingerprint the server advertised "
                           f"({question.advertised}): someone may be posing as it.",
                           style="bold red"))
        elif question.advertised is not None:
            out.print(Text("It is the one the server advertised (a hint, not a proof: anyone "
                           "can advertise one).", style="dim"))
        if question.also_pinned_as:
            out.print(Text("You already trust this key at " + ", ".join(question.also_pinned_as)
                           + ".", style="dim"))
        out.print(Text("Check it with the server's owner (richchat server "
                       "--show-fingerprint prints it).", style="dim"))
        while True:
            answer = self.ask("Trust it? r = trust and remember, o = this time only, "
                              "Enter = no: ").strip().lower()
            if answer in ("r", "remember"):
                self.trust.remember(question.host, question.port, question.fingerprint)
                out.print(Text(f"Pinned in {self.trust.known.path}", style="dim"))
                return True
            if answer in ("o", "once"):
                self.trust.trust_once(question.host, question.port, question.fingerprint)
                return True
            if answer in ("", "n", "no", "q", "quit"):
                return False
            self.say("r, o, or Enter")

    def probe(self, address: Address) -> None:
        """Is ``address`` a richchat server we may talk to? Asks about a new key; raises
        the client's error otherwise."""
        while True:
            try:
                with self.console.status(f"Checking {address}..."):
                    asyncio.run(probe_server(address, min(self.timeout, PROBE_TIMEOUT),
                                             self.trust))
                return
            except UnknownServerKey as question:
                if not self.ask_trust(question):
                    raise UntrustedServerError(
                        f"you did not trust the key of {address}") from None

    # step 1 -----------------------------------------------------------------
    def discover(self) -> DiscoveryReport:
        from richchat.core.discovery import DiscoveryOptions, discover

        options = DiscoveryOptions(timeout=self.discovery_timeout)
        with self.console.status("Looking for chat servers and hosts on the network..."):
            report = asyncio.run(discover(options))
        for notice in report.notices:
            line = Text(f"note: {notice.message}", style="yellow")
            if notice.hint:
                line.append(f" ({notice.hint})", style="dim")
            self.console.print(line)
        return report

    def say(self, text: str) -> None:
        """A step failed: say why, before the choice is shown again."""
        self.console.print(Text(text, style="red"))

    def choose_target(self, report: DiscoveryReport) -> Candidate | Address | None:
        rows = candidates(report)
        self.console.print(candidates_table(rows))
        while True:
            answer = _pick(self.ask, self.console, len(rows),
                           "Pick a number, or type an address (HOST[:PORT]); Enter quits: ")
            if answer == "":
                return None
            if isinstance(answer, int):
                return rows[answer - 1]
            try:
                return self._typed_address(answer)
            except UsageError as exc:
                self.say(f"{exc.message}; try again")

    def _typed_address(self, text: str) -> Address | Candidate:
        address = parse_address(text, default_port=0)
        if address.port:
            return address
        return Candidate("host", address.host, None, "", "typed by hand")

    # step 2 -----------------------------------------------------------------
    def scan(self, host: str) -> ScanReport:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        from richchat.core.scanner import scan

        with Progress(TextColumn("Scanning {task.description}"), BarColumn(),
                      TaskProgressColumn(), TextColumn("{task.fields[open]} open"),
                      console=self.console, transient=True) as bar:
            task = bar.add_task(host, total=None, open=0)

            def progress(p: ScanProgress) -> None:
                bar.update(task, completed=p.done, total=p.total, open=p.open)

            report = asyncio.run(scan(host, None, progress_callback=progress))
        return report

    def choose_port(self, report: ScanReport) -> int | None:
        """A port (from the list, or typed); None quits."""
        self.console.print(ports_table(report))
        rows = port_rows(report)
        while True:
            answer = self.ask("Pick a number or type a port; Enter quits: ").strip()
            if not answer or answer.lower() in ("q", "quit"):
                return None
            number = is_digits(answer, 9)
            if number and 1 <= int(answer) <= len(rows):
                return int(rows[int(answer) - 1].port)
            if number and 0 < int(answer) < 65536:
                return int(answer)
            self.say("A row number, or a port 1-65535.")

    def check_server(self, address: Address) -> str | None:
        """Why ``address`` cannot be joined (None: a richchat server answered)."""
        try:
            self.probe(address)
        except BadFileError:
            raise  # the known-servers file: no other server would do better
        except RichchatError as exc:
            return exc.message
        return None

    def pick_port(self, host: str) -> Address | str | None:
        """Scan ``host`` and pick a chat port: an address, a reason to go back to the host
        list (str), or None to quit."""
        try:
            report = self.scan(host)
        except RichchatError as exc:
            return f"cannot scan {host}: {exc.message}"
        if not report.open:
            return f"{host} has no open TCP port: nothing to join there"
        while True:
            port = self.choose_port(report)
            if port is None:
                return None
            address = Address(host, port)
            found = report.port(port)
            chat = found.richchat if found is not None else None
            self.expect_tls(chat is not None and chat.tls,
                            chat.fingerprint if chat is not None else None)
            try:
                self.probe(address)
            except BadFileError:
                raise
            except (KeyMismatchError, UntrustedServerError) as exc:
                self.say(f"{exc.message}; pick another port")
            except UnknownHostError as exc:
                return exc.message  # the host itself is gone: back to the host list
            except ConnectionRefusedRichchatError as exc:
                self.say(f"{exc.message}; pick another port")
            except ServerFullError as exc:  # a chat server, at its --max-clients
                self.say(f"{exc.message}; try again later, or pick another port")
            except RichchatError as exc:
                # the host answered the scan: whatever failed here is this port's doing
                self.say(f"port {port} is not a richchat server: {exc.message}; "
                         "pick a joinable port")
            else:
                return address
            # back to choose_port, which shows the list again under the reason

    # step 3 -----------------------------------------------------------------
    def choose_nick(self, address: Address, nick: str | None) -> str | None:
        suggestion = nick or _default_nick()
        while True:
            shown = f" [{suggestion}]" if suggestion else ""
            hint = "q quits" if suggestion else "Enter quits"
            answer = self.ask(f"Nickname{shown} ({hint}): ").strip()
            if answer.lower() in ("q", "quit") or (not answer and not suggestion):
                return None
            answer = answer or suggestion
            try:
                reason = asyncio.run(check_nick(address, answer, self.timeout, self.trust))
            except RichchatError as exc:
                self.console.print(Text(f"cannot check the name: {exc.message}", style="yellow"))
                return answer  # the chat screen asks again if the server refuses it
            if reason is None:
                return answer
            self.say(f"Nickname {answer!r} refused: {reason}")
            suggestion = ""

    def run(self, nick: str | None) -> tuple[Address, str] | None:
        report = self.discover()
        while True:
            picked = self.choose_target(report)
            if picked is None:
                return None
            if isinstance(picked, Candidate) and picked.port is None:
                found = self.pick_port(picked.host)
                if found is None:
                    return None
                if isinstance(found, str):
                    self.say(f"{found}; pick another host")
                    continue
                address = found
            else:
                address = picked if isinstance(picked, Address) else Address(
                    picked.host, picked.port or 0)
                advertised = picked if isinstance(picked, Candidate) else None
                self.expect_tls(advertised is not None and advertised.tls,
                                advertised.fingerprint if advertised is not None else None)
                nodes = [address, *(picked.alternates if isinstance(picked, Candidate) else ())]
                problem = None
                for node in nodes:  # a cluster: any node that answers will do
                    problem = self.check_server(node)
                    if problem is None:
                        address = node
                        break
                if problem is not None:
                    self.say(f"cannot join {address}: {problem}; pick another host")
                    continue
                self.alternates = [n for n in nodes if n != address]
            self.console.print(Text(f"Joining {address}", style="bold"))
            chosen = self.choose_nick(address, nick)
            return (address, chosen) if chosen else None


def _default_nick() -> str:
    try:
        name = getpass.getuser()
    except Exception:  # no login name (containers)
        return ""
    return name if nick_problem(name) is None else ""


def run_wizard(
    nick: str | None = None,
    timeout: float = 10.0,
    console: Console | None = None,
    ask: Ask | None = None,
    trust: TrustPolicy | None = None,
    alternates: list[Address] | None = None,
) -> tuple[Address, str] | None:
    """Run the three steps on the terminal; None if the user quit. ``alternates`` (if
    given) receives the other nodes of the chat picked, when it is a cluster."""
    out = console or Console(stderr=True, highlight=False)
    prompt: Ask = ask or (lambda text: out.input(Text(text, style="bold")))
    if not out.is_terminal and ask is None:
        raise UsageError("no server address given and no terminal for the wizard",
                         hint="richchat join HOST[:PORT] --nick NAME")
    wizard = Wizard(out, prompt, timeout=timeout, trust=trust)
    try:
        picked = wizard.run(nick)
    except EOFError:
        return None
    if alternates is not None:
        alternates[:] = wizard.alternates
    return picked


__all__ = ["Candidate", "Wizard", "candidates", "candidates_table", "check_nick",
           "port_rows", "ports_table", "probe_server", "run_wizard"]
