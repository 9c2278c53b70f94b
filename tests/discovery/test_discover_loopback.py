"""discover() against real Advertisers on loopback (no ARP, no mDNS, no real interface)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import pytest

from richchat.core.discovery import DiscoveryOptions, discover, discover_sync
from richchat.core.discovery.advertise import Advertiser, ServerInfo
from richchat.core.errors import UsageError
from tests.discovery.conftest import WINDOW

LOOP = "127.255.255.255"


def loop_options(port: int, **kw: object) -> DiscoveryOptions:
    base: dict[str, object] = {
        "timeout": WINDOW, "arp": False, "mdns": False, "beacon_port": port, "broadcast": [LOOP],
        "interface": "lo",
    }
    base.update(kw)
    return DiscoveryOptions.model_validate(base)


def info(name: str, sid: str, users: int = 1, tls: bool = False) -> ServerInfo:
    return ServerInfo(server_id=sid, name=name, port=6000, users=users, tls=tls, version=1)


async def test_active_query_finds_servers_before_the_next_beacon(beacon_port: int) -> None:
    a = Advertiser(lambda: info("alpha", "A", users=2, tls=True), bind_host="127.0.0.1",
                   beacon_port=beacon_port, beacon_addrs=[LOOP], interval=3600, mdns=False)
    b = Advertiser(lambda: info("beta", "B"), bind_host="127.0.0.1", beacon_port=beacon_port,
                   beacon_addrs=[LOOP], interval=3600, mdns=False)
    await a.start()
    await b.start()
    try:
        # Their first beacons went out before we listened; only the query can find them now.
        report = await discover(loop_options(beacon_port))
    finally:
        await a.stop()
        await b.stop()
    by_name = {s.name: s for s in report.servers}
    assert set(by_name) == {"alpha", "beta"}
    alpha = by_name["alpha"]
    assert alpha.address == "127.0.0.1"
    assert (alpha.port, alpha.users, alpha.tls, alpha.server_id, alpha.version) == (
        6000, 2, True, "A", 1)
    assert alpha.found_via == ["query"]
    assert report.exit_status == 0
    assert [i.name for i in report.interfaces] == ["lo"]
    assert report.hosts == []


async def test_passive_beacon_is_heard_and_merged_with_the_query(beacon_port: int) -> None:
    adv = Advertiser(lambda: info("gamma", "G"), bind_host="127.0.0.1", beacon_port=beacon_port,
                     beacon_addrs=[LOOP], interval=0.3, mdns=False)
    await adv.start()
    try:
        report = await discover(loop_options(beacon_port))
    finally:
        await adv.stop()
    assert len(report.servers) == 1  # one identity, however often it was heard
    assert set(report.servers[0].found_via) == {"query", "beacon"}


async def test_beacon_alone_finds_a_server_when_no_query_is_sent(beacon_port: int) -> None:
    adv = Advertiser(lambda: info("delta", "D"), bind_host="127.0.0.1", beacon_port=beacon_port,
                     beacon_addrs=[LOOP], interval=0.3, mdns=False)
    await adv.start()
    try:
        report = await discover(loop_options(beacon_port, broadcast=[]))
    finally:
        await adv.stop()
    assert [s.found_via for s in report.servers] == [["beacon"]]
    assert any("no IPv4 broadcast address" in n.message for n in report.notices)


async def test_nothing_advertised_gives_an_empty_list(beacon_port: int) -> None:
    report = await discover(loop_options(beacon_port, timeout=0.6))
    assert report.servers == []


async def test_progress_callback_reports_each_server(beacon_port: int) -> None:
    adv = Advertiser(lambda: info("eps", "E"), bind_host="127.0.0.1", beacon_port=beacon_port,
                     beacon_addrs=[LOOP], interval=3600, mdns=False)
    await adv.start()
    events: list[tuple[str, str]] = []
    try:
        await discover(loop_options(beacon_port), lambda s, t: events.append((s, t)))
    finally:
        await adv.stop()
    assert ("advertised", "found eps at 127.0.0.1:6000") in events


async def test_discover_sync_from_a_worker_thread(beacon_port: int) -> None:
    adv = Advertiser(lambda: info("zeta", "Z"), bind_host="127.0.0.1", beacon_port=beacon_port,
                     beacon_addrs=[LOOP], interval=3600, mdns=False)
    await adv.start()
    try:
        # How a TUI worker thread calls it while the app's loop keeps serving.
        report = await asyncio.to_thread(discover_sync, loop_options(beacon_port))
    finally:
        await adv.stop()
    assert [s.name for s in report.servers] == ["zeta"]


@contextlib.contextmanager
def advertised_from_another_thread(name: str, sid: str, port: int) -> Iterator[None]:
    """An Advertiser on its own event loop in a thread: it answers while this loop is blocked."""
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    failed: list[BaseException] = []

    async def serve() -> None:
        adv = Advertiser(lambda: info(name, sid), bind_host="127.0.0.1", beacon_port=port,
                         beacon_addrs=[LOOP], interval=3600, mdns=False)
        stop.append(asyncio.Event())
        try:
            await adv.start()
        except BaseException as exc:
            failed.append(exc)
            ready.set()
            raise
        ready.set()
        try:
            await stop[0].wait()
        finally:
            await adv.stop()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(30), "the advertiser thread did not start"
        assert not failed, failed
        yield
    finally:
        if stop:
            loop.call_soon_threadsafe(stop[0].set)
        thread.join(30)
        loop.close()


async def test_discover_sync_called_on_a_running_loop_does_not_crash(beacon_port: int) -> None:
    # asyncio.run() cannot nest: discover_sync runs the discovery on a private loop in a
    # helper thread instead (blocking this loop meanwhile, as any sync call does). It really
    # discovers: a server advertised from yet another thread answers its query.
    with advertised_from_another_thread("theta", "T", beacon_port):
        report = discover_sync(loop_options(beacon_port))
    assert [(s.name, s.server_id, s.found_via) for s in report.servers] == [
        ("theta", "T", ["query"])]


def test_discover_sync_from_plain_code(beacon_port: int) -> None:
    report = discover_sync(loop_options(beacon_port, timeout=0.5))
    assert report.servers == []


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"interface": "no-such-if0"}, "no such network interface"),
        ({"broadcast": ["255.255.255.255"]}, "not allowed"),
        ({"broadcast": ["not-an-ip"]}, "IPv4 address"),
        ({"subnets": ["10.0.0.0/8"]}, "larger than a /16"),
        ({"subnets": ["banana"]}, "CIDR"),
    ],
)
async def test_bad_options_are_usage_errors(beacon_port: int, kw: dict[str, object],
                                            match: str) -> None:
    with pytest.raises(UsageError, match=match):
        await discover(loop_options(beacon_port, **kw))


async def test_discover_ends_when_the_query_is_answered_not_at_the_timeout(
    beacon_port: int,
) -> None:
    adv = Advertiser(lambda: info("eps", "E"), bind_host="127.0.0.1", beacon_port=beacon_port,
                     beacon_addrs=[LOOP], interval=3600, mdns=False)
    await adv.start()
    try:
        report = await discover(loop_options(beacon_port, timeout=60))
    finally:
        await adv.stop()
    assert [s.name for s in report.servers] == ["eps"]
    # the work (query answered, a grace for more answers) is done long before the cap
    assert report.elapsed < 30, report.elapsed


async def test_discover_with_nothing_to_find_ends_after_the_query_retries(
    beacon_port: int,
) -> None:
    report = await discover(loop_options(beacon_port, timeout=60))
    assert report.servers == []
    assert report.elapsed < 30, report.elapsed


async def test_listen_keeps_hearing_late_beacons(beacon_port: int) -> None:
    first = Advertiser(lambda: info("early", "E1"), bind_host="127.0.0.1",
                       beacon_port=beacon_port, beacon_addrs=[LOOP], interval=3600, mdns=False)
    late = Advertiser(lambda: info("late", "L1"), bind_host="127.0.0.1", beacon_port=beacon_port,
                      beacon_addrs=[LOOP], interval=0.2, mdns=False)
    answered = asyncio.Event()

    def progress(source: str, text: str) -> None:
        if text.startswith("found early"):
            answered.set()

    await first.start()
    try:
        run = asyncio.create_task(
            discover(loop_options(beacon_port, timeout=5, listen=3), progress))
        await asyncio.wait_for(answered.wait(), 5)
        await late.start()  # after the query was answered: only a listener still open hears it
        report = await run
    finally:
        await first.stop()
        await late.stop()
    by_name = {s.name: s for s in report.servers}
    assert set(by_name) == {"early", "late"}
    assert by_name["late"].found_via == ["beacon"]
