"""A lab of network namespaces for testing LAN behaviour without touching a real LAN.

Layout: one hub namespace holding a bridge, and host namespaces each joined to the bridge
by a veth pair, all on a private /24 that exists only inside the lab. Nothing is attached
to the machine's own interfaces. Every namespace name carries a random prefix, and
:meth:`Lab.close` kills the processes the lab started (by PID) and deletes its namespaces.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

REQUIRE_ENV = "RICHCHAT_REQUIRE_NETNS"

#: Under pytest (tests/conftest.py sets these): the running test, which must carry the
#: ``netns`` marker to use namespaces or root, so that ``-m netns`` / ``-m "not netns"``
#: select exactly these tests. Benchmarks use the lab outside pytest: no check there.
_marker_checks = False
_current_test: Any = None


def track_test(item: Any, *, enforce: bool = True) -> None:
    """Called by tests/conftest.py before each test's setup."""
    global _marker_checks, _current_test
    _marker_checks = enforce
    _current_test = item


def _check_marked() -> None:
    if not _marker_checks:
        return
    item = _current_test
    if item is None or item.get_closest_marker("netns") is None:
        name = item.nodeid if item is not None else "a test"
        pytest.fail(f"{name} uses network namespaces or root but is not marked "
                    "@pytest.mark.netns (tests that use the lab fixture are marked automatically)",
                    pytrace=False)


def netns_available() -> str | None:
    """None if namespaces can be made here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    name = f"rcprobe{secrets.token_hex(3)}"
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create network namespaces: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def require_netns() -> None:
    """Skip the calling test without namespaces, or fail when RICHCHAT_REQUIRE_NETNS=1."""
    _check_marked()
    reason = netns_available()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but network namespaces are unavailable: {reason}")
    pytest.skip(f"network namespace lab unavailable: {reason}")


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


@dataclass
class Host:
    name: str
    ns: str
    ip: str
    mac: str
    ifname: str = "eth0"


@dataclass
class Lab:
    prefix: str
    subnet_octet: int
    hub: str
    hosts: dict[str, Host] = field(default_factory=dict)
    procs: list[subprocess.Popen[Any]] = field(default_factory=list)
    _next: int = 10

    @property
    def network(self) -> str:
        return f"10.77.{self.subnet_octet}.0/24"

    @property
    def broadcast(self) -> str:
        return f"10.77.{self.subnet_octet}.255"

    @classmethod
    def create(cls) -> Lab:
        _check_marked()
        prefix = f"rc{secrets.token_hex(3)}"
        lab = cls(prefix=prefix, subnet_octet=random.randint(1, 250), hub=f"{prefix}-hub")
        _ip("netns", "add", lab.hub)
        _ip("link", "set", "lo", "up", ns=lab.hub)
        _ip("link", "add", "br0", "type", "bridge", ns=lab.hub)
        _ip("link", "set", "br0", "up", ns=lab.hub)
        return lab

    def add_host(self, name: str) -> Host:
        ns = f"{self.prefix}-{name}"
        ip = f"10.77.{self.subnet_octet}.{self._next}"
        self._next += 1
        mac = "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}".format(*tuple(secrets.token_bytes(5)))
        _ip("netns", "add", ns)
        _ip("link", "set", "lo", "up", ns=ns)
        peer = f"v{len(self.hosts)}"
        # Create the pair inside the host namespace, then move the peer into the hub:
        # neither end ever exists in the machine's own namespace.
        _ip("link", "add", "eth0", "address", mac, "type", "veth", "peer", "name", peer, ns=ns)
        _ip("link", "set", peer, "netns", self.hub, ns=ns)
        _ip("link", "set", peer, "master", "br0", ns=self.hub)
        _ip("link", "set", peer, "up", ns=self.hub)
        _ip("addr", "add", f"{ip}/24", "broadcast", self.broadcast, "dev", "eth0", ns=ns)
        _ip("link", "set", "eth0", "up", ns=ns)
        host = Host(name=name, ns=ns, ip=ip, mac=mac)
        self.hosts[name] = host
        return host

    def argv(self, host: Host, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", host.ns, *argv]

    def run(self, host: Host, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 120)
        return subprocess.run(self.argv(host, argv), **kw)

    def popen(self, host: Host, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        kw.setdefault("start_new_session", True)
        proc = subprocess.Popen(self.argv(host, argv), **kw)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.ns], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.hub], capture_output=True)
