"""Shared fixtures (the CLI as a subprocess, the network-namespace lab) and the network guard
(tests/netguard): a test that tries to reach beyond loopback fails."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netlab import Lab, require_netns

# The network guard: any attempt to reach beyond loopback (or to ask DNS) fails the test.
pytest_plugins = ["tests.netguard.plugin"]

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for running ``python -m richchat`` from this source tree."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["NO_COLOR"] = "1"
    env.pop("RICHCHAT_DEBUG", None)
    return env


@pytest.fixture
def cli() -> list[str]:
    """argv prefix that runs the richchat CLI of this source tree."""
    return [sys.executable, "-m", "richchat"]


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A fresh namespace lab (hub + bridge); add hosts with ``lab.add_host(name)``."""
    require_netns()
    the_lab = Lab.create()
    try:
        yield the_lab
    finally:
        the_lab.close()

