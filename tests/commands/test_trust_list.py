"""``richchat trust list`` as a real process at the widths people have (a pipe is 80 columns):
an address (IPv6 in brackets included), a fingerprint or a date is never split across lines
when it fits the width. At 80 columns the table split both the address and the date (found by
an exploratory pass); it now shares discover's layout (richchat/core/sheet.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.servers import cli_env

CLI = [sys.executable, "-m", "richchat", "trust"]
PINS = {
    "192.168.100.200:5050": "SHA256:qK4c3b0l9yT1rA2p8N7fZ6xW5vU4sR3qP2oN1mL0kJ0",
    "[2001:db8:85a3::8a2e:370:7334]:50500": "SHA256:AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg",
    "chat.lan:5050": "SHA256:ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210zyxwvus",
}


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trust") / "known_servers"
    for server, fingerprint in PINS.items():
        added = subprocess.run([*CLI, "add", "--known-servers", str(path), server, fingerprint],
                               env=cli_env(), capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
    return path


def listed(path: Path, width: int) -> str:
    proc = subprocess.run([*CLI, "list", "--known-servers", str(path)],
                          env={**cli_env(), "COLUMNS": str(width)}, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout


@pytest.mark.parametrize("width", [40, 60, 80, 100, 120, 160])
def test_every_value_is_whole_when_it_fits(known: Path, width: int) -> None:
    text = listed(known, width)
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width, text
    first_seen = [line.split()[-1] for line in known.read_text().splitlines()
                  if line and not line.startswith("#")]
    assert len(first_seen) == len(PINS)
    for value in [*PINS, *PINS.values(), *first_seen]:
        if len(value) <= width:
            assert any(value in line for line in lines), (width, value, text)
        else:  # wider than the terminal: folded, never dropped
            assert value in text.replace("\n", ""), (width, value, text)


def test_a_wide_terminal_gets_a_table_one_pin_a_line(known: Path) -> None:
    lines = listed(known, 120).splitlines()
    for server, fingerprint in PINS.items():
        assert any(server in line and fingerprint in line for line in lines), lines


def test_no_pins(tmp_path: Path) -> None:
    for width in (40, 80, 120):
        text = listed(tmp_path / "none", width)
        assert "no server pinned yet" in text
