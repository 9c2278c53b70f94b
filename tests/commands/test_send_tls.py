"""`richchat send` and `richchat trust` as a user runs them, against `richchat server --tls`
processes: the first contact pinned and said on stderr, a changed key refused (16) with
nothing sent, --strict (17), --fingerprint, a corrupt known-servers file (18)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from richchat.core.exit_codes import ExitStatus
from tests.commands.test_send import SEND_IMPORTS_PROBE, SEND_NEVER_IMPORTS

REGISTERED = re.compile(r"\bregister \S+ as ")
LISTEN = re.compile(r"listening on \S+:(\d+) \(protocol 1, TLS, key (SHA256:\S+)\)")


class TlsServer:
    def __init__(self, cli: list[str], env: dict[str, str], data: Path, port: int = 0) -> None:
        self.proc = subprocess.Popen(
            [*cli, "server", "--host", "127.0.0.1", "--port", str(port), "--no-beacon",
             "--no-mdns", "--tls", "--data-dir", str(data), "--name", "secure"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = LISTEN.search(line)
        assert m, line
        self.port, self.fingerprint = int(m.group(1)), m.group(2)
        self.address = f"127.0.0.1:{self.port}"

    def stop(self) -> str:
        """Stop it; return its log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=20)
        return err


@pytest.fixture
def servers(cli: list[str], cli_env: dict[str, str]) -> Iterator[list[TlsServer]]:
    started: list[TlsServer] = []
    yield started
    for server in started:
        server.stop()


def send(cli: list[str], env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli, "send", *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_first_contact_pins_then_changed_key_refused(
        cli: list[str], cli_env: dict[str, str], tmp_path: Path, servers: list[TlsServer],
        own_known_servers: Path) -> None:
    data = tmp_path / "data"
    server = TlsServer(cli, cli_env, data)
    servers.append(server)
    first = send(cli, cli_env, server.address, "--nick", "bot", "--json", "hello")
    assert first.returncode == 0, first.stderr
    assert (f"new server {server.address}: key {server.fingerprint} pinned in "
            f"{own_known_servers}") in first.stderr
    result = json.loads(first.stdout)
    assert result["tls"] in ("TLSv1.3", "TLSv1.2") and result["fingerprint"] == server.fingerprint

    again = send(cli, cli_env, server.address, "--nick", "bot", "--strict", "again")
    assert again.returncode == 0 and "new server" not in again.stderr
    assert again.stderr.strip().endswith("over TLS 1.3")

    # the server comes back with a new key on the same port
    log = server.stop()
    assert REGISTERED.search(log)
    for name in ("tls-cert.pem", "tls-key.pem"):
        (data / name).unlink()
    server = TlsServer(cli, cli_env, data, server.port)
    servers.append(server)
    refused = send(cli, cli_env, server.address, "--nick", "bot", "sneaky")
    assert refused.returncode == ExitStatus.KEY_MISMATCH
    [line] = refused.stderr.splitlines()
    old = next(p for p in own_known_servers.read_text().split() if p.startswith("SHA256:"))
    for needed in ("error: the key of", old, server.fingerprint, str(own_known_servers),
                   f"richchat trust forget {server.address}"):
        assert needed in line
    log = server.stop()
    assert not REGISTERED.search(log)  # nothing from the chat reached it

    # the owner confirms the new key: forget, and the next send pins it again
    server = TlsServer(cli, cli_env, data, server.port)
    servers.append(server)
    forgot = subprocess.run([*cli, "trust", "forget", server.address], env=cli_env,
                            capture_output=True, text=True, timeout=30)
    assert forgot.returncode == 0 and f"forgot {server.address}" in forgot.stderr
    assert send(cli, cli_env, server.address, "--nick", "bot", "ok now").returncode == 0


def test_strict_fingerprint_and_trust_add(cli: list[str], cli_env: dict[str, str],
                                          tmp_path: Path, servers: list[TlsServer]) -> None:
    server = TlsServer(cli, cli_env, tmp_path / "data")
    servers.append(server)
    strict = send(cli, cli_env, server.address, "--nick", "bot", "--strict", "x")
    assert strict.returncode == ExitStatus.UNTRUSTED and "--strict" in strict.stderr
    wrong = "SHA256:" + "A" * 42 + "E"
    mismatch = send(cli, cli_env, server.address, "--nick", "bot", "--fingerprint", wrong, "x")
    assert mismatch.returncode == ExitStatus.KEY_MISMATCH
    bad = send(cli, cli_env, server.address, "--nick", "bot", "--fingerprint", "SHA256:xyz", "x")
    assert bad.returncode == ExitStatus.USAGE and "bad --fingerprint" in bad.stderr
    ok = send(cli, cli_env, server.address, "--nick", "bot", "--fingerprint",
              server.fingerprint, "x")
    assert ok.returncode == 0, ok.stderr
    listed = subprocess.run([*cli, "trust", "list", "--json"], env=cli_env,
                            capture_output=True, text=True, timeout=30)
    [pin] = json.loads(listed.stdout)
    assert (pin["server"], pin["fingerprint"]) == (server.address, server.fingerprint)

    # trust add before the first contact: --strict then goes through
    other = tmp_path / "other_known"
    env = dict(cli_env, RICHCHAT_KNOWN_SERVERS=str(other))
    added = subprocess.run([*cli, "trust", "add", server.address, server.fingerprint],
                           env=env, capture_output=True, text=True, timeout=30)
    assert added.returncode == 0, added.stderr
    assert send(cli, env, server.address, "--nick", "bot", "--strict", "y").returncode == 0
    clash = subprocess.run([*cli, "trust", "add", server.address, wrong], env=env,
                           capture_output=True, text=True, timeout=30)
    assert clash.returncode == ExitStatus.KEY_MISMATCH and "--replace" in clash.stderr


def test_corrupt_known_servers_file(cli: list[str], cli_env: dict[str, str],
                                    servers: list[TlsServer], tmp_path: Path,
                                    own_known_servers: Path) -> None:
    server = TlsServer(cli, cli_env, tmp_path / "data")
    servers.append(server)
    own_known_servers.write_text("this is not a pin\n")
    for argv in (["send", server.address, "--nick", "bot", "x"], ["trust", "list"],
                 ["trust", "add", "a:1", server.fingerprint], ["trust", "forget", "a:1"]):
        proc = subprocess.run([*cli, *argv], env=cli_env, capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)
        assert proc.returncode == ExitStatus.BAD_FILE, (argv, proc.stderr)
        [line] = proc.stderr.splitlines()
        assert line.startswith(f"error: known-servers file {own_known_servers}, line 1") or \
            line.startswith(f"error: known-servers file {own_known_servers}: line 1"), line
    assert not REGISTERED.search(server.stop())


@pytest.mark.parametrize("host", [
    b"evil\nhost", b"a b", b"#hidden", b"tab\there", "line\u2028sep".encode(), b"bad\x85utf8",
])
def test_trust_add_refuses_a_host_that_would_break_the_file(
        cli: list[str], cli_env: dict[str, str], own_known_servers: Path, host: bytes) -> None:
    """A host with a line break, a space or a '#' was written as is: the known-servers file
    then stopped every later command (exit 18), or the pin became a comment; a host that is
    not UTF-8 was an unexpected error (exit 1)."""
    fp = "SHA256:" + "A" * 42 + "E"
    first = subprocess.run([*cli, "trust", "add", "good.lan:5050", fp], env=cli_env,
                           capture_output=True, timeout=30)
    assert first.returncode == 0, first.stderr
    before = own_known_servers.read_bytes()
    added = subprocess.run([*cli.copy(), "trust", "add", host + b":5050", fp], env=cli_env,
                           capture_output=True, timeout=30)
    assert added.returncode == ExitStatus.USAGE, added.stderr
    assert added.stderr.startswith(b"error: bad address") and added.stderr.count(b"\n") == 1
    assert own_known_servers.read_bytes() == before
    listed = subprocess.run([*cli, "trust", "list", "--json"], env=cli_env,
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    assert [p["server"] for p in json.loads(listed.stdout)] == ["good.lan:5050"]


def test_tls_send_imports_only_what_it_needs(cli_env: dict[str, str], tmp_path: Path,
                                              servers: list[TlsServer], cli: list[str]) -> None:
    # What a whole send over TLS to an address loads (not how long it takes): hashlib for
    # the key's fingerprint, and none of the heavy libraries (cryptography makes the
    # server's certificate, never a client's check), nor the idna codec (an address is not
    # named in the TLS hello).
    server = TlsServer(cli, cli_env, tmp_path / "data")
    servers.append(server)
    probe = subprocess.run([sys.executable, "-c", SEND_IMPORTS_PROBE, server.address, "--nick",
                            "probe", "hi"], env=cli_env, capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
    lines = probe.stdout.splitlines()
    assert "exit 0" in lines, probe.stdout + probe.stderr
    assert f"new server {server.address}: key {server.fingerprint}" in probe.stderr  # over TLS
    loaded = set(lines[-1].removeprefix("loaded ").split(","))
    assert "hashlib" in loaded and "ssl" in loaded  # the probe really ran
    never = (*SEND_NEVER_IMPORTS, "encodings.idna")
    assert sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in never)) == []
