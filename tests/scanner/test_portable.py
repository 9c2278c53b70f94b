"""The scanner without epoll (macOS, Windows): the portable ``selectors`` sweep finds the same
open and joinable ports as the epoll sweep. Forced on Linux two ways: RICHCHAT_SCAN_ENGINE=
portable, and a real ``richchat scan`` process whose ``select`` module has no epoll at all."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from richchat.core.scanner import scan
from richchat.core.scanner.engine import ENGINE_ENV, ConnectSweep, connect_sweep_class
from richchat.core.scanner.portable import PortableSweep
from richchat.core.server import ChatServer
from tests.client.servers import cli_env

# Run `richchat` as if on a system without epoll: hide every epoll name (and Linux's
# SOCK_NONBLOCK) before anything imports them.
NO_EPOLL = """\
import importlib, sys
import select
assert "richchat" not in sys.modules and "asyncio" not in sys.modules
for name in [n for n in dir(select) if n.lower().startswith("epoll")]:
    delattr(select, name)
import selectors, socket, runpy
# (socket, which the test network guard loads, imported selectors already: build it again)
selectors.__dict__.pop("EpollSelector", None)
importlib.reload(selectors)
# selectors now picks poll, as it would without epoll
assert not hasattr(selectors, "EpollSelector") and selectors.DefaultSelector is not None
del socket.SOCK_NONBLOCK
sys.argv = ["richchat", *sys.argv[1:]]
runpy.run_module("richchat", run_name="__main__")
"""


def _states(report: object, ports: list[int]) -> dict[int, tuple[str, bool]]:
    """(state, joinable) of each of ``ports`` in a ScanReport or its JSON."""
    data = report if isinstance(report, dict) else report.model_dump()  # type: ignore[attr-defined]
    open_ = {p["port"]: p for p in data["open"]}
    out = {}
    for port in ports:
        if port in open_:
            out[port] = ("open", bool(open_[port]["joinable"]))
        elif port in data["filtered"]:
            out[port] = ("filtered", False)
        else:
            out[port] = ("closed", False)
    return out


def _below_ephemeral(count: int) -> range:
    """``count`` ports just below the range the kernel hands out for port 0."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert low > count + 1024, f"the ephemeral range starts at {low}: no room below it"
    return range(low - count, low)


def test_engine_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    assert connect_sweep_class() is ConnectSweep  # Linux
    monkeypatch.setenv(ENGINE_ENV, "portable")
    assert connect_sweep_class() is PortableSweep


@pytest.mark.parametrize("workers", [1, 2])
async def test_portable_sweep_finds_what_epoll_finds(
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
    silent_port: int,
    ssh_port: int,
    http_port: int,
    closed_port: int,
    chat_server: ChatServer,
) -> None:
    ours = [silent_port, ssh_port, http_port, closed_port, chat_server.port]
    # with 2 workers: enough ports for the forked parallel sweep (>= 4096), taken below the
    # kernel's ephemeral range, where the servers of tests running beside this one (the suite
    # runs in parallel) are not: they are not swept or probed
    ports = sorted({*ours, *_below_ephemeral(4200)}) if workers == 2 else sorted(ours)
    reports = {}
    for engine in ("epoll", "portable"):
        monkeypatch.setenv(ENGINE_ENV, engine)
        reports[engine] = await scan("127.0.0.1", ports, timeout=2.0, workers=workers)
    expected = {
        silent_port: ("open", False),
        ssh_port: ("open", False),
        http_port: ("open", False),
        closed_port: ("closed", False),
        chat_server.port: ("open", True),
    }
    for engine, report in reports.items():
        assert _states(report, ours) == expected, engine
        assert not report.interrupted
        assert report.closed + len(report.open) + len(report.filtered) == len(ports), engine
    # only our ports are compared: the range scanned with 2 workers holds other tests' servers
    # too (the suite runs in parallel), which come and go between the two scans
    epoll, portable = reports["epoll"], reports["portable"]
    assert [p.port for p in portable.joinable if p.port in ours] == [
        p.port for p in epoll.joinable if p.port in ours] == [chat_server.port]
    assert portable.port(chat_server.port).richchat == epoll.port(chat_server.port).richchat  # type: ignore[union-attr]


async def test_scan_command_works_where_select_has_no_epoll(
    silent_port: int, ssh_port: int, closed_port: int, chat_server: ChatServer
) -> None:
    ours = [silent_port, ssh_port, closed_port, chat_server.port]
    spec = ",".join(map(str, ours))
    results = {}
    for label, argv in (
        ("epoll", [sys.executable, "-m", "richchat"]),
        ("no epoll", [sys.executable, "-c", NO_EPOLL]),
    ):
        proc = await asyncio.create_subprocess_exec(
            *argv, "scan", "127.0.0.1", "-p", spec, "--timeout", "2", "--json",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, (label, err.decode()[-2000:])
        results[label] = _states(json.loads(out), ours)
    assert results["no epoll"] == results["epoll"] == {
        silent_port: ("open", False),
        ssh_port: ("open", False),
        closed_port: ("closed", False),
        chat_server.port: ("open", True),
    }
