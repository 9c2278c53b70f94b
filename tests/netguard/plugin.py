"""pytest side of the network guard (see :mod:`tests.netguard`).

Installed for the whole run; after each test's setup, call and teardown, any violation of this
process or of a child process makes that phase fail, with what was attempted.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Generator
from pathlib import Path
from types import ModuleType

import pytest

from tests import netguard as _netguard

SITE_DIR = Path(__file__).resolve().parent / "site"


def guard() -> ModuleType:
    """The guard module this process runs (the one ``sitecustomize`` loaded, if it did)."""
    return sys.modules.get("_richchat_test_netguard", _netguard)


class _ChildLog:
    def __init__(self) -> None:
        fd, name = tempfile.mkstemp(prefix="richchat-netguard-", suffix=".log")
        os.close(fd)
        self.path = Path(name)
        self.offset = 0

    def take(self) -> list[str]:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next look
        self.offset += end
        return [line for line in data[:end].decode("utf-8", "replace").splitlines() if line]


_child_log: _ChildLog | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _child_log
    module = guard()
    module.install(owner=True)
    if _child_log is None:
        _child_log = _ChildLog()
        os.environ[module.LOG_ENV] = str(_child_log.path)
        netns = module.current_netns()
        if netns is not None:
            os.environ[module.NETNS_ENV] = str(netns)
        parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        if str(SITE_DIR) not in parts:
            os.environ["PYTHONPATH"] = os.pathsep.join([str(SITE_DIR), *parts])


def pytest_unconfigure(config: pytest.Config) -> None:
    global _child_log
    if _child_log is not None:
        _child_log.path.unlink(missing_ok=True)
        _child_log = None


def take_all() -> list[str]:
    found = list(guard().take_violations())
    if _child_log is not None:
        found += _child_log.take()
    return found


def _check(phase: str) -> None:
    found = take_all()
    if found:
        shown = "\n  ".join(dict.fromkeys(found))
        pytest.fail(f"this test tried to leave the machine (during {phase}):\n  {shown}",
                    pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    try:
        yield
    finally:
        _check("setup")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    try:
        yield
    finally:
        _check("the test")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    try:
        yield
    finally:
        _check("teardown")


def pytest_sessionfinish(session: pytest.Session) -> None:
    leftover = take_all()
    if leftover:
        sys.stderr.write("network guard: outside any test:\n  " + "\n  ".join(leftover) + "\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
