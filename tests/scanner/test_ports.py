"""Port specifications: nmap's syntax, and clear errors for anything else."""

from __future__ import annotations

import subprocess

import pytest

from richchat.core.errors import UsageError
from richchat.core.exit_codes import ExitStatus
from richchat.core.scanner import parse_ports


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("22", [22]),
        ("22,80", [22, 80]),
        ("80,22,22", [22, 80]),
        ("5000-5003", [5000, 5001, 5002, 5003]),
        ("22, 80 ,5000-5001", [22, 80, 5000, 5001]),
        ("-3", [1, 2, 3]),
        ("65534-", [65534, 65535]),
        ("1-1", [1]),
    ],
)
def test_good_specs(spec: str, expected: list[int]) -> None:
    assert parse_ports(spec) == expected


def test_dash_means_every_port() -> None:
    ports = parse_ports("-")
    assert len(ports) == 65535
    assert ports[0] == 1 and ports[-1] == 65535


@pytest.mark.parametrize(
    "spec",
    ["", "0", "65536", "abc", "22,,80", "80-22", "1-2-3", "22,", "-1-", "http", "1.5", "22 80",
     # digits to str.isdigit that int() refuses: 'unexpected ValueError', exit 1
     "\u00b2", "1-\u00b2", "\u0661\u0662", "9" * 5000],
)
def test_bad_specs(spec: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_ports(spec)
    assert info.value.exit_status == ExitStatus.USAGE
    assert "port" in info.value.message


@pytest.mark.parametrize("spec", ["70000", "ssh", "10-5", "\u00b2"])
def test_cli_bad_spec_is_one_line_and_usage_status(
    cli: list[str], cli_env: dict[str, str], spec: str
) -> None:
    proc = subprocess.run(
        [*cli, "scan", "127.0.0.1", "-p", spec], capture_output=True, text=True,
        env=cli_env, timeout=60,
    )
    assert proc.returncode == ExitStatus.USAGE
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: bad port spec")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("ports", [[0, 80], [80, 65536], [-1]])
async def test_scan_refuses_ports_out_of_range(ports: list[int]) -> None:
    from richchat.core.scanner import scan

    with pytest.raises(UsageError, match="between 1 and 65535"):
        await scan("127.0.0.1", ports)
