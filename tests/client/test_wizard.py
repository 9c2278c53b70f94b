"""The wizard's pure parts: rows and table of the discovery step; nickname check on loopback."""

from __future__ import annotations

import io

from rich.console import Console

from richchat.core.client import Address
from richchat.core.wizard import check_nick
from tests.client.servers import ServerProcess, registered


def test_candidates_grouped_in_order() -> None:
    import richchat.core.discovery as discovery
    from richchat.core.wizard import candidates, candidates_table

    report = discovery.DiscoveryReport(
        servers=[discovery.AdvertisedServer(name="[b]lab[/b]", address="10.0.0.5", port=5051,
                                            users=2, found_via=["beacon"])],
        hosts=[discovery.DiscoveredHost(ip="10.0.0.7", mac="00:1b:63:00:00:01",
                                        vendor="Apple", source="arp-sweep")],
        interfaces=[discovery.LocalInterface(
            name="lo", loopback=True,
            addresses=[{"family": "ipv4", "address": "127.0.0.1"},
                       {"family": "ipv6", "address": "::1"}])],
    )
    rows = candidates(report)
    assert [(r.group, r.host, r.port) for r in rows] == [
        ("advertised", "10.0.0.5", 5051), ("host", "10.0.0.7", None),
        ("interface", "127.0.0.1", None),
    ]
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(candidates_table(rows))
    text = out.getvalue()
    for needle in ("Advertised servers", "Discovered hosts", "Local interfaces",
                   "10.0.0.5:5051", "[b]lab[/b]", "Apple", "2 users"):
        assert needle in text
    assert text.index("Advertised") < text.index("Discovered") < text.index("Local interf")


async def test_check_nick_against_the_server(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    holder = await registered(port, "alice")
    where = Address("127.0.0.1", port)
    assert await check_nick(where, "ALICE", 5) == "already in use (name_taken)"
    assert await check_nick(where, "bob", 5) is None
    assert "space" in (await check_nick(where, "b o b", 5) or "")
    await holder.close()


def test_a_port_that_is_not_a_chat_server_shows_the_port_list_once_more(
    server_process: ServerProcess,
) -> None:
    """After 'port N is not a richchat server' the port list is shown again, once: the
    reason, then the table, then the prompt (it was printed twice in a row)."""
    import asyncio
    import http.server
    import threading

    from richchat.core.scanner import ScanReport, scan
    from richchat.core.wizard import Wizard

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    ports = [server_process.port, web.server_address[1]]

    class TwoPorts(Wizard):
        def scan(self, host: str) -> ScanReport:  # the real scanner, on these two ports only
            return asyncio.run(scan(host, ports))

    answers = iter(["2", "1"])  # the HTTP server (listed after the joinable port), the chat
    out = io.StringIO()
    wizard = TwoPorts(Console(file=out, width=100, color_system=None), lambda _: next(answers),
                      timeout=5)
    try:
        picked = wizard.pick_port("127.0.0.1")
    finally:
        web.shutdown()
        web.server_close()
    assert picked == Address("127.0.0.1", server_process.port)
    text = out.getvalue()
    assert f"port {ports[1]} is not a richchat server" in " ".join(text.split())
    assert text.count("Open ports on 127.0.0.1") == 2, text


def test_a_superscript_digit_is_typed_text_not_a_crash() -> None:
    """``²`` is a digit to str.isdigit, not to int(): the wizard's row pick raised ValueError
    ('error: unexpected ValueError'). It is text typed instead of a number (an address)."""
    from richchat.core.wizard import _pick

    answers = iter(["\u00b2"])
    out = Console(file=io.StringIO(), width=80)
    assert _pick(lambda _prompt: next(answers), out, 3, "Pick: ") == "\u00b2"


def test_a_port_of_superscript_digits_is_a_bad_port() -> None:
    import pytest

    from richchat.core.client import parse_address
    from richchat.core.errors import UsageError

    with pytest.raises(UsageError, match="bad port"):
        parse_address("127.0.0.1:\u00b2")
