"""Every command's --help lists its exit codes, and each one listed is a code of
richchat/core/exit_codes.py and a row of the README's table (with the same meaning family)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from richchat.core.exit_codes import ExitStatus
from tests.client.servers import REPO_ROOT, cli_env

CLI = [sys.executable, "-m", "richchat"]

#: the codes each command's help must list (what it can end with besides 1, unexpected)
EXPECTED = {
    ("server",): {0, 2, 4, 10, 12, 13, 18, 23, 130},
    ("join",): {0, 2, 3, 4, 6, 7, 11, 14, 16, 17, 18, 130},
    ("send",): {1, 2, 3, 4, 5, 6, 7, 11, 14, 15, 16, 17, 18, 19, 20, 21, 22, 24, 130},
    ("get",): {2, 3, 4, 5, 6, 7, 11, 14, 16, 17, 18, 20, 21, 22, 24, 130},
    ("trust", "add"): {2, 16, 18},
}


def readme_codes() -> set[int]:
    text = (REPO_ROOT / "README.md").read_text()
    table = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    return {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)}


def help_text(argv: tuple[str, ...]) -> str:
    result = subprocess.run([*CLI, *argv, "--help"], capture_output=True, text=True,
                            env={**cli_env(), "COLUMNS": "200"}, timeout=60)
    assert result.returncode == 0, result.stderr
    return " ".join(result.stdout.replace("│", " ").split())  # unwrap rich's panels


def test_the_readme_table_is_the_enum() -> None:
    assert readme_codes() == {int(code) for code in ExitStatus}


@pytest.mark.parametrize("argv", sorted(EXPECTED))
def test_help_lists_the_exit_codes(argv: tuple[str, ...]) -> None:
    text = help_text(argv)
    assert "Exit codes:" in text, text
    listed_text = text.split("Exit codes:", 1)[1]
    listed = {int(n) for n in re.findall(r"(?:^|[ ,])(\d{1,3}) [A-Za-z(]", listed_text)
              if int(n) in {int(code) for code in ExitStatus}}
    assert listed >= EXPECTED[argv], sorted(EXPECTED[argv] - listed)
    assert listed <= readme_codes()
