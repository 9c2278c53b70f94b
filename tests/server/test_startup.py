"""`richchat server` start-up as a real process: one server per data directory (a stale lock of
a killed server does not count), and every start-up mistake is one clear line with its exit
status."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from richchat.core.errors import DataDirLockedError
from richchat.core.exit_codes import ExitStatus
from richchat.core.server import ChatServer, ServerConfig
from tests.netlab import Lab

LISTEN_RE = re.compile(r"listening on (\S+):(\d+)")
LOOPBACK = ["--host", "127.0.0.1", "--port", "0", "--no-beacon", "--no-mdns"]


class Servers:
    """``richchat server`` processes started by one test, stopped (by PID) at its end."""

    def __init__(self, cli: list[str], env: dict[str, str]) -> None:
        self.cli, self.env = cli, env
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, data_dir: Path, *extra: str,
              env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [*self.cli, "server", *LOOPBACK, "--data-dir", str(data_dir), *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env or self.env,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert LISTEN_RE.search(line), f"no listening line: {line!r} {proc.stderr.read() if proc.stderr else ''}"
        return proc

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.cli, "server", *args], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL, env=env or self.env)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def servers(cli: list[str], cli_env: dict[str, str]) -> Iterator[Servers]:
    group = Servers(cli, cli_env)
    try:
        yield group
    finally:
        group.close()


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_second_server_on_the_same_data_dir_refuses_to_start(
    servers: Servers, tmp_path: Path
) -> None:
    first = servers.start(tmp_path)
    res = servers.run(*LOOPBACK, "--data-dir", str(tmp_path))
    assert res.returncode == ExitStatus.DATA_DIR_LOCKED
    line = one_error_line(res.stderr)
    assert str(tmp_path) in line and f"(PID {first.pid})" in line
    assert first.poll() is None  # the first one is untouched


def test_a_killed_servers_lock_does_not_block_a_restart(servers: Servers, tmp_path: Path) -> None:
    first = servers.start(tmp_path)
    assert (tmp_path / "server.lock").read_text().strip() == str(first.pid)
    first.kill()  # SIGKILL: no chance to clean up; the lock file and its PID stay
    first.wait()
    assert (tmp_path / "server.lock").read_text().strip() == str(first.pid)
    again = servers.start(tmp_path)
    assert (tmp_path / "server.lock").read_text().strip() == str(again.pid)
    again.send_signal(signal.SIGTERM)
    assert again.wait(timeout=20) == 0
    assert (tmp_path / "server.lock").read_text() == ""  # a clean stop leaves it empty


async def test_two_servers_in_one_process_exclude_each_other(tmp_path: Path) -> None:
    def config() -> ServerConfig:
        return ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path, beacon=False,
                            mdns=False, name="t")

    first = ChatServer(config())
    await first.start()
    try:
        with pytest.raises(DataDirLockedError, match=f"PID {os.getpid()}"):
            await ChatServer(config()).start()
    finally:
        await first.stop()
    again = ChatServer(config())  # released by stop()
    await again.start()
    await again.stop()


def test_data_dir_that_is_a_file(servers: Servers, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory")
    res = servers.run(*LOOPBACK, "--data-dir", str(afile))
    assert res.returncode == ExitStatus.DATA_DIR
    assert one_error_line(res.stderr) == f"error: data directory {afile} is a file, not a directory"
    res = servers.run(*LOOPBACK, "--data-dir", str(afile / "sub"))
    assert res.returncode == ExitStatus.DATA_DIR
    assert one_error_line(res.stderr) == (
        f"error: cannot create data directory {afile / 'sub'}: {afile} is a file, not a directory"
    )


def test_data_dir_not_writable(servers: Servers, tmp_path: Path) -> None:
    target = tmp_path / "ro"
    target.mkdir()
    if os.geteuid() != 0:
        target.chmod(0o555)
        argv = [*servers.cli, "server", *LOOPBACK, "--data-dir", str(target)]
    else:
        # root writes through permission bits: a read-only mount, in a private mount
        # namespace of this command only, makes the directory really unwritable
        if shutil.which("unshare") is None:
            pytest.skip("needs unshare (util-linux) as root")
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"', str(target),
                *servers.cli, "server", *LOOPBACK, "--data-dir", str(target)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL, env=servers.env)
    if os.geteuid() == 0 and "mount" in res.stderr and "error:" not in res.stderr:
        pytest.skip(f"cannot mount here: {res.stderr.strip()}")
    assert res.returncode == ExitStatus.DATA_DIR, res.stderr
    line = one_error_line(res.stderr)
    assert line.startswith(f"error: data directory {target} is not writable: ")


def test_bad_log_level_and_too_long_name(servers: Servers, tmp_path: Path) -> None:
    res = servers.run(*LOOPBACK, "--data-dir", str(tmp_path), "--log-level", "bogus")
    assert res.returncode == ExitStatus.USAGE
    assert "'bogus' is not one of" in res.stderr and "Traceback" not in res.stderr
    res = servers.run(*LOOPBACK, "--data-dir", str(tmp_path), "--name", "n" * 65)
    assert res.returncode == ExitStatus.USAGE
    assert one_error_line(res.stderr) == (
        "error: --name 'nnnnnnnnnnnnnnnnnnnn'... is too long: 65 characters, at most 64"
    )
    # at the limit, and a level in any case from the environment, are fine
    env = dict(servers.env, RICHCHAT_LOG_LEVEL="WARNING")
    proc = servers.start(tmp_path, "--name", "n" * 64, env=env)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_help_shows_the_limits(servers: Servers) -> None:
    res = servers.run("--help", env=dict(servers.env, COLUMNS="200"))
    assert res.returncode == 0
    assert "at most 64 characters" in res.stdout
    assert "<debug|info|warning|error>" in res.stdout
    assert "[0<=x<=10000]" in res.stdout  # --history, as Typer shows ranges


def test_unknown_listen_host(lab: Lab, cli: list[str], cli_env: dict[str, str],
                             tmp_path: Path) -> None:
    # Resolved inside a lab namespace that has no route anywhere: no DNS packet can leave it.
    host = lab.add_host("a")
    res = lab.run(host, [*cli, "server", "--host", "bogus.invalid", "--port", "0",
                         "--no-beacon", "--no-mdns", "--data-dir", str(tmp_path)],
                  env=cli_env, timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == ExitStatus.UNKNOWN_HOST, res.stderr
    line = one_error_line(res.stderr)
    assert "unknown host 'bogus.invalid'" in line


def test_the_command_knows_the_configs_name_limit() -> None:
    from richchat.commands import server as server_command

    limits = [m.max_length for m in ServerConfig.model_fields["name"].metadata
              if hasattr(m, "max_length")]
    assert limits == [server_command.MAX_NAME]


def test_no_tls_with_a_certificate_is_a_usage_error(servers: Servers, tmp_path: Path) -> None:
    """``--no-tls --tls-cert C --tls-key K`` ran TLS all the same (the certificate won
    silently). Contradictory options are one error line and exit 2, before anything starts;
    RICHCHAT_TLS=0 with a certificate option likewise."""
    from tests.tlskit import openssl_keypair

    pair = openssl_keypair(tmp_path / "tls", "own")
    cases = [
        (["--no-tls", "--tls-cert", str(pair.cert), "--tls-key", str(pair.key)], None,
         "--tls-cert and --tls-key"),
        (["--no-tls", "--tls-key", str(pair.key)], None, "--tls-key"),
        (["--tls-cert", str(pair.cert), "--tls-key", str(pair.key)],
         dict(servers.env, RICHCHAT_TLS="0"), "--tls-cert and --tls-key"),
    ]
    for extra, env, named in cases:
        proc = subprocess.Popen(
            [*servers.cli, "server", *LOOPBACK, "--data-dir", str(tmp_path / "data"), *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env or servers.env,
        )
        servers.procs.append(proc)  # stopped by the fixture if it did start
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()  # a listening line, or "" once it exited
        assert first == "", f"it started anyway: {first!r}"
        assert proc.wait(timeout=60) == ExitStatus.USAGE
        line = one_error_line(proc.stderr.read())
        assert line == (f"error: --no-tls (or RICHCHAT_TLS=0) contradicts {named}: drop one "
                        "(a certificate means TLS)")
    assert not (tmp_path / "data").exists()  # refused before the data directory was made
    # --tls with a certificate, and a certificate alone, still start TLS
    proc = servers.start(tmp_path / "data", "--tls", "--tls-cert", str(pair.cert),
                         "--tls-key", str(pair.key))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_file_sizes_and_retention_are_validated(servers: Servers, tmp_path: Path) -> None:
    """``--file-max-size 0`` and ``--file-quota 0`` started a server that took no file (and
    said files=0 in HELLO); ``--file-retention inf`` was 'unexpected OverflowError', exit 1.
    Now: one error line (pointing at --no-files to turn sharing off) or Typer's range
    error, exit 2, nothing started. The limits themselves still start."""
    data = tmp_path / "data"
    for option, value in (("--file-max-size", "0"), ("--file-quota", "0B"),
                          ("--file-max-size", "0MiB")):
        res = servers.run(*LOOPBACK, "--data-dir", str(data), option, value)
        assert res.returncode == ExitStatus.USAGE, res.stderr
        assert one_error_line(res.stderr) == (
            f"error: bad {option} {value!r}: at least 1 byte (to turn file sharing off, "
            "use --no-files)")
    for value in ("inf", "36501", "0", "nan"):
        res = servers.run(*LOOPBACK, "--data-dir", str(data), "--file-retention", value)
        assert res.returncode == ExitStatus.USAGE, res.stderr
        assert "--file-retention" in res.stderr and "Traceback" not in res.stderr
        assert "unexpected" not in res.stderr
    assert not data.exists()
    proc = servers.start(data, "--file-max-size", "1", "--file-quota", "1",
                         "--file-retention", "36500")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
