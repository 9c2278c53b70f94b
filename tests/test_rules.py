"""The suite's own rules hold: the network guard fails a test that tries to leave the machine,
CI fails a skip nobody listed, and namespace tests must carry the ``netns`` marker.

Each rule is checked by running pytest on a small test file in a subprocess and reading its
verdicts. The guard's forbidden calls run inside a lab namespace that has no route out, so that
even a broken guard could not let a packet leave the machine.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.netguard import destination_allowed, is_literal_ip, is_local_name
from tests.netlab import Lab

INNER_CONFTEST = 'pytest_plugins = ["tests.netguard.plugin", "tests.skip_policy"]\n'


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")])
    for key in ("RICHCHAT_CI", "RICHCHAT_REQUIRE_NETNS", "PYTEST_ADDOPTS"):
        env.pop(key, None)
    env.update(extra)
    return env


def _inner_run(
    directory: Path, source: str, *, env: dict[str, str], lab: Lab | None = None,
    conftest: str = INNER_CONFTEST,
) -> tuple[dict[str, str], str]:
    """Run pytest on ``source``; return {test name: outcome} and the whole output."""
    (directory / "pytest.ini").write_text("[pytest]\n")  # the rootdir: ids are file-relative
    (directory / "conftest.py").write_text(conftest)
    (directory / "test_inner.py").write_text(source)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-rA",
            "test_inner.py"]
    if lab is not None:
        argv = lab.argv(lab.add_host("inner"), argv)
    proc = subprocess.run(argv, cwd=directory, env=env, capture_output=True, text=True,
                          timeout=120)
    out = proc.stdout + proc.stderr
    outcomes = {m.group(1): m.group(2) for m in
                re.finditer(r"^test_inner\.py::(\w+) (PASSED|FAILED|ERROR|SKIPPED)", out,
                            re.MULTILINE)}
    return outcomes, out


GUARDED = '''
import socket
import subprocess
import sys


def test_connect_beyond_loopback():
    with socket.socket() as sock:
        sock.settimeout(2)
        try:
            sock.connect(("192.0.2.1", 9))
        except OSError:
            pass  # swallowed: the guard must fail the test all the same


def test_udp_to_the_global_broadcast():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        try:
            sock.sendto(b"x", ("255.255.255.255", 9))
        except OSError:
            pass


def test_dns_lookup():
    try:
        socket.getaddrinfo("example.invalid", 80)
    except OSError:
        pass


def test_dns_lookup_in_a_child_process():
    subprocess.run([sys.executable, "-c",
                    "import socket\\ntry:\\n socket.getaddrinfo('example.invalid', 80)\\n"
                    "except OSError:\\n pass\\n"], check=True, timeout=60)


def test_loopback_is_allowed():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    socket.getaddrinfo("localhost", 80)
    socket.getaddrinfo("10.1.2.3", 80)  # a literal: no resolver involved
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.sendto(b"x", ("127.255.255.255", 9))
'''


def test_the_guard_fails_tests_that_try_to_leave_the_machine(lab: Lab, tmp_path: Path) -> None:
    # Inside the lab namespace the children are guarded too (strict), as they are outside it.
    outcomes, out = _inner_run(tmp_path, GUARDED, env=_env(RICHCHAT_NET_GUARD="strict"), lab=lab)
    assert outcomes == {
        "test_connect_beyond_loopback": "FAILED",
        "test_udp_to_the_global_broadcast": "FAILED",
        "test_dns_lookup": "FAILED",
        "test_dns_lookup_in_a_child_process": "FAILED",
        "test_loopback_is_allowed": "PASSED",
    }, out
    for what in ("connect to ('192.0.2.1', 9) is not loopback",
                 "sendto to ('255.255.255.255', 9) is not loopback",
                 "getaddrinfo('example.invalid') would ask the machine's resolver"):
        assert what in out, out
    assert out.count("this test tried to leave the machine") == 4, out


@pytest.mark.parametrize(
    ("family", "address", "allowed"),
    [
        (socket.AF_INET, ("127.0.0.1", 1), True),
        (socket.AF_INET, ("127.255.255.255", 1), True),
        (socket.AF_INET, ("0.0.0.0", 1), True),
        (socket.AF_INET, ("localhost", 1), True),
        (socket.AF_INET6, ("::1", 1, 0, 0), True),
        (socket.AF_INET6, ("::ffff:127.0.0.1", 1, 0, 0), True),
        (socket.AF_UNIX, "/tmp/x.sock", True),
        (socket.AF_INET, ("10.77.1.5", 1), False),
        (socket.AF_INET, ("255.255.255.255", 1), False),
        (socket.AF_INET, ("<broadcast>", 1), False),
        (socket.AF_INET, ("224.0.0.251", 5353), False),
        (socket.AF_INET, ("example.com", 80), False),
        (socket.AF_INET6, ("ff02::fb", 5353, 0, 0), False),
        (socket.AF_INET6, ("fe80::1%eth0", 1, 0, 0), False),
        (socket.AF_INET6, ("::ffff:192.0.2.1", 1, 0, 0), False),
    ],
)
def test_guard_decisions(family: int, address: object, allowed: bool) -> None:
    assert destination_allowed(family, address) is allowed


def test_guard_name_rules() -> None:
    assert is_literal_ip("192.0.2.1") and is_literal_ip("fe80::1%eth0")
    assert not is_literal_ip("no-such-host.invalid")
    assert is_local_name("localhost") and is_local_name("LOCALHOST.")
    assert not is_local_name("localhost.example.com")


SKIPPING = '''
import pytest


def test_skipped_for_a_missing_tool():
    pytest.skip("needs frobnicator")


def test_allowed_skip():
    pytest.skip("runs on Windows only")


def test_passes():
    pass
'''

ALLOWING_CONFTEST = INNER_CONFTEST + (
    "from tests import allowed_skips\n"
    "allowed_skips.ALLOWED_SKIPS['test_inner.py::test_allowed_skip'] = 'Windows-only code'\n"
)


def test_ci_turns_unlisted_skips_into_failures(tmp_path: Path) -> None:
    outcomes, out = _inner_run(tmp_path, SKIPPING, env=_env(RICHCHAT_CI="1"),
                               conftest=ALLOWING_CONFTEST)
    assert outcomes == {"test_skipped_for_a_missing_tool": "FAILED",
                        "test_allowed_skip": "SKIPPED", "test_passes": "PASSED"}, out
    assert "skipped in CI: needs frobnicator" in out
    assert "[allowed in CI: Windows-only code]" in out


def test_outside_ci_a_skip_is_a_skip(tmp_path: Path) -> None:
    outcomes, out = _inner_run(tmp_path, SKIPPING, env=_env(), conftest=ALLOWING_CONFTEST)
    assert outcomes == {"test_skipped_for_a_missing_tool": "SKIPPED",
                        "test_allowed_skip": "SKIPPED", "test_passes": "PASSED"}, out


UNMARKED = '''
import pytest

from tests.netlab import require_netns


def test_uses_namespaces_without_the_marker():
    require_netns()


@pytest.mark.netns
def test_marked():
    pass
'''

MARKER_CONFTEST = (
    "import pytest\n"
    "from tests import netlab\n"
    "\n"
    "def pytest_configure(config):\n"
    "    config.addinivalue_line('markers', 'netns: namespaces')\n"
    "\n"
    "@pytest.hookimpl(tryfirst=True)\n"
    "def pytest_runtest_setup(item):\n"
    "    netlab.track_test(item)\n"
    "    if item.get_closest_marker('netns') is not None:\n"
    "        pytest.skip('this check does not need namespaces')\n"
)


def test_namespace_tests_must_be_marked(tmp_path: Path) -> None:
    outcomes, out = _inner_run(tmp_path, UNMARKED, env=_env(), conftest=MARKER_CONFTEST)
    assert outcomes == {"test_uses_namespaces_without_the_marker": "FAILED",
                        "test_marked": "SKIPPED"}, out
    assert "is not marked @pytest.mark.netns" in out
