"""The README's test command works as written on a fresh machine where you are root and sudo
is not installed (containers, CI images), and it is exactly what CI runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def readme_test_command() -> str:
    """The second command of the README's Quick start (the first starts a server)."""
    readme = (REPO_ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quick, re.DOTALL)
    assert len(blocks) >= 2, "the Quick start has a server command and a test command"
    (command,) = blocks[1].strip().splitlines()
    return command


def test_ci_runs_exactly_the_readme_command() -> None:
    command = readme_test_command()
    ci = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    assert command in [line.strip() for line in ci]


def test_readme_command_needs_no_sudo_as_root(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("checks the fresh-root-machine case: run as root")
    if shutil.which("sudo") is not None:
        pytest.skip("sudo is installed here; this checks a machine without it")
    command = readme_test_command()
    env = dict(os.environ)
    env.pop("RICHCHAT_REQUIRE_NETNS", None)
    # Skip the install step: it would reinstall this checkout into site-packages mid-run
    # (CI has just run it, through this very command).
    env["RICHCHAT_TEST_INSTALL"] = "0"
    selection = "tests/protocol/test_hello_role.py -q -p no:cacheprovider"
    result = subprocess.run(
        ["bash", "-c", f"{command} {selection}"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-2000:])
    assert "passed" in result.stdout
    assert "sudo" not in result.stderr


@pytest.mark.parametrize("workers", ["abc", "1.5", "-1"])
def test_a_bad_worker_count_is_one_line_and_exit_2(workers: str) -> None:
    result = subprocess.run(
        ["bash", "scripts/test.sh", "tests/protocol/test_hello_role.py"], cwd=REPO_ROOT,
        env=dict(os.environ, RICHCHAT_TEST_WORKERS=workers, RICHCHAT_TEST_INSTALL="0"),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "test.sh: RICHCHAT_TEST_WORKERS must be a whole number of workers (0: none, every test "
        f"in one process), not '{workers}'"]
    assert result.stdout == ""


def test_a_missing_test_path_is_said_by_name() -> None:
    """With workers, pytest itself only reports that no test ran: the script names the path."""
    result = subprocess.run(
        ["bash", "scripts/test.sh", "-k", "anything", "tests/does_not_exist.py::test_x"],
        cwd=REPO_ROOT, env=dict(os.environ, RICHCHAT_TEST_INSTALL="0"),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 4
    assert result.stderr.splitlines() == [
        "test.sh: no such test file or directory: tests/does_not_exist.py"]
