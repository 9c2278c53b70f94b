"""Shared fixtures (the CLI as a subprocess, the network-namespace lab) and the run's rules:
the network guard (tests/netguard), CI's skip policy (tests/skip_policy.py), and the ``netns``
marker (tests that use namespaces or root carry it; it checks for them before the test runs)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import netlab
from tests.netlab import Lab, require_netns
from tests.redis_server import RedisServer, redis_server_binary

# The network guard: any attempt to reach beyond loopback (or to ask DNS) fails the test.
# The skip policy: in CI, a skip not listed in tests/allowed_skips.py fails.
pytest_plugins = ["tests.netguard.plugin", "tests.skip_policy"]

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def own_known_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test pins server keys in a file of its own, never in the user's config dir
    (in-process clients and ``python -m richchat`` subprocesses alike)."""
    path = tmp_path / "known_servers"
    monkeypatch.setenv("RICHCHAT_KNOWN_SERVERS", str(path))
    return path


@pytest.fixture
def cli_env(own_known_servers: Path) -> dict[str, str]:
    """Environment for running ``python -m richchat`` from this source tree."""
    env = dict(os.environ)
    env["RICHCHAT_KNOWN_SERVERS"] = str(own_known_servers)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    env.pop("RICHCHAT_DEBUG", None)
    return env


@pytest.fixture
def cli() -> list[str]:
    """argv prefix that runs the richchat CLI of this source tree."""
    return [sys.executable, "-m", "richchat"]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, data in the test's temporary directory,
    stopped by PID at the end (scripts/install-test-deps.sh installs it; CI requires it)."""
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A fresh namespace lab (hub + bridge); add hosts with ``lab.add_host(name)``."""
    require_netns()
    the_lab = Lab.create()
    try:
        yield the_lab
    finally:
        the_lab.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "lab" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.netns)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    netlab.track_test(item)
    if item.get_closest_marker("netns") is not None:
        require_netns()  # skip (or, with RICHCHAT_REQUIRE_NETNS=1, fail) before any fixture


@pytest.fixture(autouse=True)
def signals_left_as_found() -> Iterator[None]:
    """A test leaves SIGINT's and SIGTERM's handlers and the signal mask as it found them: a
    child started later inherits an ignored or blocked signal (a server that once sat at its
    port prompt through 20 SIGINTs, in a CI run). A test that changes them fails, by name."""
    watched = (signal.SIGINT, signal.SIGTERM)
    before = ({s: signal.getsignal(s) for s in watched}, signal.pthread_sigmask(signal.SIG_BLOCK, []))
    yield
    after = ({s: signal.getsignal(s) for s in watched}, signal.pthread_sigmask(signal.SIG_BLOCK, []))
    if after != before:
        for s, handler in before[0].items():
            signal.signal(s, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, before[1])
        pytest.fail(f"the test changed the signal handlers or mask: {before!r} -> {after!r}")


@pytest.fixture(autouse=True)
def no_server_process_left() -> Iterator[None]:
    """A test that fails before stopping the ``richchat server`` processes it started
    (tests/serverproc.py) would leave them running: they are killed after it, by handle.
    (Servers of module-scoped fixtures, made before this fixture, are theirs to stop.)"""
    from tests.serverproc import RUNNING

    before = set(RUNNING)
    yield
    for server in RUNNING - before:
        RUNNING.discard(server)
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(timeout=10)
