"""``richchat server --tls-cert/--tls-key`` naming an endless or huge file (from the sixth
exploratory pass): one line, exit 18, instead of the whole file read into memory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from richchat.core.exit_codes import ExitStatus
from tests.server.test_tls_files import BASE, one_error_line, pair, run

__all__ = ["pair"]

#: far more than a server needs to start, far less than reading 4 GiB into memory: a
#: server that tries fails with MemoryError instead of taking the machine's memory
MEMORY_CAP = ("prlimit", f"--as={1024 * 1024 * 1024}", "--")


@pytest.mark.parametrize("which", ["--tls-cert", "--tls-key"])
@pytest.mark.parametrize("kind", ["sparse 4 GiB file", "/dev/zero"])
def test_an_endless_tls_file_is_one_error(cli: list[str], cli_env: dict[str, str],
                                          tmp_path: Path, pair, which: str, kind: str) -> None:  # type: ignore[no-untyped-def]
    """A certificate or key option given a 4 GiB file by mistake (tab completion), or
    /dev/zero: the server read it whole into memory (here capped: 'unexpected MemoryError',
    exit 1; without a cap, all the machine's memory). No PEM file is that large."""
    if shutil.which("prlimit") is None:
        pytest.skip("prlimit missing (util-linux)")
    if kind.startswith("sparse"):
        endless = tmp_path / "huge.pem"
        with open(endless, "wb") as fh:
            fh.truncate(4 << 30)
    else:
        endless = Path("/dev/zero")
    files = {"--tls-cert": str(pair.cert), "--tls-key": str(pair.key), which: str(endless)}
    proc = run(cli, cli_env, *BASE, "--data-dir", str(tmp_path / "data"),
               "--tls-cert", files["--tls-cert"], "--tls-key", files["--tls-key"],
               prefix=MEMORY_CAP)
    assert proc.returncode == ExitStatus.BAD_FILE, proc.stderr
    line = one_error_line(proc)
    assert str(endless) in line and "too large" in line
