"""`richchat server` with TLS files that cannot be used: one clear line, exit 18; and
`--show-fingerprint`, checked against the start-up line and openssl's recipe."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from richchat.core.exit_codes import ExitStatus
from tests.tlskit import openssl_fingerprint, openssl_keypair

BASE = ["server", "--host", "127.0.0.1", "--port", "0", "--no-beacon", "--no-mdns"]


def run(cli: list[str], env: dict[str, str], *args: str, prefix: tuple[str, ...] = ()
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, *cli, *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture
def pair(tmp_path: Path):  # type: ignore[no-untyped-def]
    return openssl_keypair(tmp_path / "own", "server", cn="chat.example")


def test_bad_tls_files(cli: list[str], cli_env: dict[str, str], tmp_path: Path, pair) -> None:  # type: ignore[no-untyped-def]
    data = ["--data-dir", str(tmp_path / "data")]
    other = openssl_keypair(tmp_path / "other", "other")
    corrupt = tmp_path / "corrupt.pem"
    corrupt.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    encrypted = tmp_path / "encrypted-key.pem"
    subprocess.run(["openssl", "pkey", "-in", str(pair.key), "-aes256", "-passout", "pass:x",
                    "-out", str(encrypted)], check=True, capture_output=True)
    cases = {
        "does not exist": ["--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(pair.key)],
        "holds no PEM certificate": ["--tls-cert", str(corrupt), "--tls-key", str(pair.key)],
        "holds no usable PEM private key": ["--tls-cert", str(pair.cert), "--tls-key", str(corrupt)],
        "does not belong to the certificate": ["--tls-cert", str(pair.cert), "--tls-key", str(other.key)],
        "is encrypted": ["--tls-cert", str(pair.cert), "--tls-key", str(encrypted)],
        "is a directory": ["--tls-cert", str(tmp_path), "--tls-key", str(pair.key)],
    }
    for expected, args in cases.items():
        proc = run(cli, cli_env, *BASE, *data, *args)
        assert proc.returncode == ExitStatus.BAD_FILE, (expected, proc.stderr)
        assert expected in one_error_line(proc)
    proc = run(cli, cli_env, *BASE, *data, "--tls-cert", str(pair.cert))
    assert proc.returncode == ExitStatus.USAGE and "go together" in one_error_line(proc)


def test_unreadable_key(cli: list[str], cli_env: dict[str, str], tmp_path: Path, pair) -> None:  # type: ignore[no-untyped-def]
    """A key only another user may read. Root reads anything, so as root the key belongs to
    nobody and the server runs without the capabilities that bypass file permissions."""
    os.chmod(pair.key, 0o600)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv missing (util-linux)")
        os.chown(pair.key, 65534, 65534)
        prefix = ("setpriv", "--inh-caps=-all",
                  "--bounding-set=-dac_override,-dac_read_search", "--")
    else:
        os.chmod(pair.key, 0)
    data = tmp_path / "data"
    proc = run(cli, cli_env, *BASE, "--data-dir", str(data), "--tls-cert", str(pair.cert),
               "--tls-key", str(pair.key), prefix=prefix)
    assert proc.returncode == ExitStatus.BAD_FILE, proc.stderr
    line = one_error_line(proc)
    assert "cannot read the TLS key file" in line and "Permission denied" in line


def test_cert_without_its_key_in_the_data_dir(cli: list[str], cli_env: dict[str, str],
                                              tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = run(cli, cli_env, "server", "--show-fingerprint", "--data-dir", str(data))
    assert proc.returncode == 0
    (data / "tls-key.pem").unlink()
    proc = run(cli, cli_env, *BASE, "--tls", "--data-dir", str(data))
    assert proc.returncode == ExitStatus.BAD_FILE
    assert "its key" in one_error_line(proc) and "missing" in proc.stderr


def test_show_fingerprint_matches_start_up_line_and_openssl(
        cli: list[str], cli_env: dict[str, str], tmp_path: Path, pair) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    shown = run(cli, cli_env, "server", "--show-fingerprint", "--data-dir", str(data))
    assert shown.returncode == 0 and "new key and certificate" in shown.stderr
    fp = shown.stdout.strip()
    assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", fp)
    assert fp == openssl_fingerprint(data / "tls-cert.pem")
    again = run(cli, cli_env, "server", "--show-fingerprint", "--data-dir", str(data))
    assert again.stdout.strip() == fp and again.stderr == ""
    own = run(cli, cli_env, "server", "--show-fingerprint", "--tls-cert", str(pair.cert),
              "--tls-key", str(pair.key))
    assert own.stdout.strip() == pair.fingerprint

    env = dict(cli_env, RICHCHAT_TLS="1", RICHCHAT_TLS_HANDSHAKE_TIMEOUT="3")
    proc = subprocess.Popen([*cli, *BASE, "--data-dir", str(data)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.rstrip().endswith(f"(protocol 1, TLS, key {fp})"), line
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert f"TLS key {fp}" in err  # the log says it too
    assert proc.returncode == 0
    assert sys.executable  # (the CLI runs from this source tree: cli_env sets PYTHONPATH)
