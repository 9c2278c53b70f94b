"""scripts/test.sh's check for test paths that do not exist never takes an option's value for
a path (an exploratory pass found `--tb short` refused: "no such test file or directory:
short", exit 4; each of these ran before that check)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ONE_FILE = "tests/protocol/test_codec.py"


@pytest.mark.parametrize("option", [
    ["--tb", "short"],
    ["--capture", "no"],
    ["-r", "fE"],
    ["--override-ini", "addopts="],         # the long form of -o
    ["--numprocesses", "2"],                # the long form of -n
])
def test_an_option_value_is_not_taken_for_a_missing_path(option: list[str]) -> None:
    result = subprocess.run(
        ["bash", "scripts/test.sh", "-q", "-p", "no:cacheprovider", *option, ONE_FILE],
        cwd=REPO_ROOT, env=dict(os.environ, RICHCHAT_TEST_INSTALL="0"),
        capture_output=True, text=True, timeout=300,
    )
    assert "no such test file or directory" not in result.stderr, result.stderr
    assert result.returncode == 0, (result.stdout[-500:], result.stderr[-500:])
