"""The wizard's host and port lists given the answers a new user types by mistake: a row
number past the end of the list, a full server."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
from rich.console import Console

from richchat.core.client import Address


def _report_with_one_server() -> object:
    import richchat.core.discovery as discovery

    return discovery.DiscoveryReport(
        servers=[discovery.AdvertisedServer(name="lab", address="10.0.0.5", port=5051,
                                            users=2, found_via=["beacon"])],
        hosts=[discovery.DiscoveredHost(ip="10.0.0.7", mac="00:1b:63:00:00:01",
                                        vendor="Apple", source="arp-sweep")],
    )


@pytest.mark.parametrize("typed", ["9", "99999999999", "0000000000000000000000042"])
def test_a_row_number_past_the_list_is_asked_again_not_scanned_as_a_host(typed: str) -> None:
    """With 2 rows, '9' was taken for an address: the wizard scanned host '9' (0.0.0.9 to
    the resolver) and said '9 has no open TCP port'; eleven digits went to DNS. '0' already
    said 'Choose 1-2'; a bare number past the end must say it too."""
    from richchat.core.wizard import Wizard

    answers = iter([typed, ""])
    out = io.StringIO()
    wizard = Wizard(Console(file=out, width=100, color_system=None),
                    lambda _prompt: next(answers), timeout=5)
    assert wizard.choose_target(_report_with_one_server()) is None  # type: ignore[arg-type]
    assert "Choose 1-2" in out.getvalue()


def test_a_typed_address_is_still_an_address() -> None:
    from richchat.core.wizard import Candidate, Wizard

    answers = iter(["10.0.0.9", "10.0.0.9:6000"])
    wizard = Wizard(Console(file=io.StringIO(), width=100, color_system=None),
                    lambda _prompt: next(answers), timeout=5)
    report = _report_with_one_server()
    picked = wizard.choose_target(report)  # type: ignore[arg-type]
    assert isinstance(picked, Candidate) and picked.host == "10.0.0.9"
    assert wizard.choose_target(report) == Address("10.0.0.9", 6000)  # type: ignore[arg-type]


def test_a_full_server_in_the_port_list_is_not_called_not_a_richchat_server(
    tmp_path: Path,
) -> None:
    """A server at --max-clients was reported as 'port N is not a richchat server: ... is
    full': it is one, and the user is told to try again later or pick another port."""
    import asyncio

    from richchat.core.scanner import ScanReport, scan
    from richchat.core.wizard import Wizard
    from tests.client.servers import launch_server

    server = launch_server(tmp_path / "data", extra=("--max-clients", "1"))
    holder = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        holder.recv(4096)  # its HELLO: the one place is taken

        class OnePort(Wizard):
            def scan(self, host: str) -> ScanReport:  # the real scanner, on this port only
                return asyncio.run(scan(host, [server.port]))

        answers = iter(["1", ""])
        out = io.StringIO()
        wizard = OnePort(Console(file=out, width=200, color_system=None),
                         lambda _: next(answers), timeout=5)
        assert wizard.pick_port("127.0.0.1") is None
    finally:
        holder.close()
        server.stop()
    text = " ".join(out.getvalue().split())
    assert "is full" in text, text
    assert "not a richchat server" not in text, text


def test_a_full_server_is_still_named_richchat_in_the_port_list(tmp_path: Path) -> None:
    """The wizard's port list (and ``richchat scan``) showed a full richchat server's port
    with an empty service column and no chat mark: nothing tells the user that the chat is
    there and only full. Its refusal (``ERR|server_full``) says it is a richchat server."""
    import asyncio

    from richchat.core.scanner import scan
    from tests.client.servers import launch_server

    server = launch_server(tmp_path / "data", extra=("--max-clients", "1"))
    holder = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        holder.recv(4096)  # its HELLO: the one place is taken
        report = asyncio.run(scan("127.0.0.1", [server.port]))
    finally:
        holder.close()
        server.stop()
    found = report.port(server.port)
    assert found is not None
    assert "richchat" in (found.service or ""), found


def test_the_host_table_cuts_nothing_off_in_40_columns() -> None:
    """At 40 columns the wizard's first table showed '10.77.237…' for the advertised server
    (its port gone), for every discovered host and for the MAC addresses: the addresses one
    picks from could not be told apart. ``richchat discover`` never cuts anything off."""
    import richchat.core.discovery as discovery
    from richchat.core.wizard import candidates, candidates_table

    report = discovery.DiscoveryReport(
        servers=[discovery.AdvertisedServer(name="labchat", address="10.77.237.11", port=5050,
                                            users=0, found_via=["query", "mdns", "beacon"])],
        hosts=[discovery.DiscoveredHost(ip=f"10.77.237.{n}", mac=f"02:2a:53:3f:81:{n:02x}",
                                        interface="eth0", source="arp-sweep")
               for n in (11, 12)],
    )
    out = io.StringIO()
    Console(file=out, width=40, color_system=None).print(candidates_table(candidates(report)))
    text = out.getvalue()
    assert "…" not in text, text
    assert max(len(line) for line in text.splitlines()) <= 40
