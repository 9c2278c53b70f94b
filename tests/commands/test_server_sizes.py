"""``richchat server`` size options given odd values (from the sixth exploratory pass)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from richchat.core.exit_codes import ExitStatus

BASE = ["server", "--host", "127.0.0.1", "--port", "0", "--no-beacon", "--no-mdns"]


@pytest.mark.parametrize("rate", ["0.5", "0.9"])
def test_a_file_rate_below_one_byte_is_refused_not_unlimited(
        cli: list[str], cli_env: dict[str, str], tmp_path: Path, rate: str) -> None:
    """``--file-rate 0.5`` was rounded down to 0, which means no limit at all: asked for the
    slowest transfers, the server gave the fastest, silently. Like --file-max-size 0.5, it
    is a usage error (exit 2) naming the option and the value typed."""
    proc = subprocess.Popen([*cli, *BASE, "--data-dir", str(tmp_path / "data"),
                             "--file-rate", rate], env=cli_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the listening line, or nothing: it ended
    if proc.poll() is None:
        proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert "listening" not in first, f"it started: {first}"
    assert proc.returncode == ExitStatus.USAGE, err
    assert err.startswith(f"error: bad --file-rate '{rate}': ") and err.count("\n") == 1, err


def test_a_size_below_its_floor_quotes_what_was_typed(
        cli: list[str], cli_env: dict[str, str], tmp_path: Path) -> None:
    """``--output-limit 0.5KiB`` said ``bad --output-limit 512: Input should be greater than or
    equal to 1024``: a value nobody typed. The message quotes the text typed, then the bytes
    it came to."""
    res = subprocess.run([*cli, *BASE, "--data-dir", str(tmp_path / "data"),
                          "--output-limit", "0.5KiB"], env=cli_env, capture_output=True,
                         text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert res.returncode == ExitStatus.USAGE, res.stderr
    assert res.stderr.startswith("error: bad --output-limit '0.5KiB' (512 bytes): "), res.stderr
    assert "1024" in res.stderr and res.stderr.count("\n") == 1, res.stderr
