"""The known-servers file in odd states, and fingerprints typed oddly (from the sixth
exploratory pass): a byte-order mark, line separators other than ``\\n``, a device in the
file's place, a read-only file, a fingerprint whose last base64 character is not canonical.
``richchat send`` and ``richchat trust`` run as processes against ``richchat server --tls``."""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from richchat.core.errors import BadFileError
from richchat.core.exit_codes import ExitStatus
from richchat.core.trust.fingerprint import parse_fingerprint
from richchat.core.trust.known import KnownServers
from tests.commands.test_send_tls import TlsServer, send

FP1 = "SHA256:" + "A" * 42 + "E"
SEEN = "2026-05-10T09:12:44Z"


@pytest.fixture
def server(cli: list[str], cli_env: dict[str, str], tmp_path: Path) -> Iterator[TlsServer]:
    started = TlsServer(cli, cli_env, tmp_path / "data")
    yield started
    started.stop()


def trust(cli: list[str], env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli, "trust", *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_a_pin_after_a_byte_order_mark_still_holds(
        cli: list[str], cli_env: dict[str, str], server: TlsServer,
        own_known_servers: Path) -> None:
    """A file saved by an editor that writes a UTF-8 byte-order mark (Windows Notepad): the
    mark was read as part of the first line's host name, so the first pin silently stopped
    protecting its server. Pinned to another key, the server was met as a new one: the
    presented key pinned beside it and the message sent (exit 0) instead of exit 16."""
    own_known_servers.write_bytes(
        b"\xef\xbb\xbf" + f"{server.address} {FP1} {SEEN}\n".encode())
    res = send(cli, cli_env, server.address, "--nick", "bot", "hello")
    assert res.returncode == ExitStatus.KEY_MISMATCH, res.stderr
    assert "CHANGED" in res.stderr and FP1 in res.stderr
    listed = trust(cli, cli_env, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert f'"server": "{server.address}"' in listed.stdout


@pytest.mark.parametrize("separator", ["\f", "\v", "\x1c", "\x85", "\u2028"])
def test_a_comment_holding_another_line_separator_is_a_comment(
        tmp_path: Path, separator: str) -> None:
    """Python's ``splitlines`` also breaks lines at form feeds (Emacs page breaks), vertical
    tabs, U+001C-U+001E, NEL and U+2028/9: a comment holding one became two lines, the second
    not a pin, and the whole file was unusable, the error naming a line number no editor
    shows. The file is written with ``\\n`` alone; only ``\\n`` (and ``\\r\\n``) end a line."""
    path = tmp_path / "k"
    path.write_text(f"# servers{separator}of the office\nchat.lan:5050 {FP1} {SEEN}\n",
                    encoding="utf-8")
    known = KnownServers(path)
    assert [p.key for p in known.pins()] == ["chat.lan:5050"]
    known.add("other.lan", 5050, FP1)
    assert path.read_text(encoding="utf-8").startswith(f"# servers{separator}of the office\n")


def test_a_bad_line_is_named_by_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text(f"# a\fb\nchat.lan:5050 {FP1} {SEEN}\nnot a pin\n", encoding="utf-8")
    with pytest.raises(BadFileError, match="line 3 "):
        KnownServers(path).pins()


@pytest.fixture
def char_device(tmp_path: Path) -> Path:
    """A private node of the null device (major 1, minor 3) in the test's directory: what a
    known-servers file linked to /dev/null (ssh's UserKnownHostsFile=/dev/null habit) is,
    without touching the machine's /dev/null."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return node


def test_a_device_in_the_files_place_is_never_replaced(
        cli: list[str], cli_env: dict[str, str], server: TlsServer, own_known_servers: Path,
        char_device: Path) -> None:
    """known_servers linked to /dev/null: the first contact 'pinned' the key by renaming a
    regular file over the link's target, so as root /dev/null itself became a regular file of
    mode 0600 (every program writing to /dev/null then failed or filled it). A file that is
    not a regular file is now refused (exit 18), and left as it is."""
    own_known_servers.symlink_to(char_device)
    res = send(cli, cli_env, server.address, "--nick", "bot", "hello")
    assert stat.S_ISCHR(os.stat(char_device).st_mode), "the device was replaced"
    assert res.returncode == ExitStatus.BAD_FILE, res.stderr
    assert "not a regular file" in res.stderr
    added = trust(cli, cli_env, "add", "chat.lan", FP1, "--known-servers", str(char_device))
    assert stat.S_ISCHR(os.stat(char_device).st_mode), "the device was replaced"
    assert added.returncode == ExitStatus.BAD_FILE, added.stderr


def test_a_read_only_file_is_not_rewritten(
        cli: list[str], cli_env: dict[str, str], server: TlsServer,
        own_known_servers: Path) -> None:
    """A user made known_servers read-only (no new pins, please): the first contact with a
    new server replaced it all the same (a rename needs only the directory's permission) and
    made it writable (mode 0600). Now it stays as it is and the command says why (exit 18),
    as for a read-only directory. As root, the command runs without the capabilities that
    bypass file permissions."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv missing (util-linux)")
        prefix = ["setpriv", "--inh-caps=-all",
                  "--bounding-set=-dac_override,-dac_read_search", "--"]
    own_known_servers.write_text(f"chat.lan:5050 {FP1} {SEEN}\n")
    os.chmod(own_known_servers, 0o444)
    before = own_known_servers.read_bytes()
    res = subprocess.run([*prefix, *cli, "send", server.address, "--nick", "bot", "hello"],
                         env=cli_env, capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert own_known_servers.read_bytes() == before
    assert stat.S_IMODE(own_known_servers.stat().st_mode) == 0o444
    assert res.returncode == ExitStatus.BAD_FILE, res.stderr
    assert "read-only" in res.stderr or "Permission denied" in res.stderr


def _noncanonical(fingerprint: str) -> str:
    """The same 32 bytes with the unused low bits of the last base64 character set."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(fingerprint[-1])
    return fingerprint[:-1] + alphabet[last | 3]


def test_a_fingerprint_is_kept_in_canonical_base64(
        cli: list[str], cli_env: dict[str, str], server: TlsServer) -> None:
    """43 base64 characters carry 258 bits: the last 2 are not part of the 32 bytes. A
    fingerprint typed with them set (a slip of one letter: ...btI typed ...btL) decoded to the
    server's key, was accepted and pinned as typed, and then never equalled the presented
    key's text: every connection to that server was refused as a CHANGED key (exit 16), both
    fingerprints naming the same key. It is now pinned in canonical form."""
    typed = _noncanonical(server.fingerprint)
    assert typed != server.fingerprint
    assert base64.b64decode(typed[7:] + "=") == base64.b64decode(server.fingerprint[7:] + "=")
    assert parse_fingerprint(typed) == server.fingerprint
    added = trust(cli, cli_env, "add", server.address, typed)
    assert added.returncode == 0, added.stderr
    res = send(cli, cli_env, server.address, "--nick", "bot", "hello")
    assert res.returncode == 0, res.stderr
    explicit = send(cli, cli_env, server.address, "--nick", "bot2", "--fingerprint", typed, "hi")
    assert explicit.returncode == 0, explicit.stderr


#: the address space the commands of the endless-file tests get: far more than they need,
#: far less than reading a 4 GiB file (or /dev/zero) into memory takes, so that a command
#: that tries fails with MemoryError instead of taking the machine's memory
MEMORY_CAP = ["prlimit", f"--as={1024 * 1024 * 1024}", "--"]


@pytest.mark.parametrize("kind", ["sparse 4 GiB file", "link to /dev/zero"])
def test_an_endless_known_servers_file_is_one_error(
        cli: list[str], cli_env: dict[str, str], tmp_path: Path, kind: str) -> None:
    """The file was read whole into memory: a 4 GiB file given by mistake, or a link to
    /dev/zero, took all the memory it could (here capped: 'unexpected MemoryError', exit 1).
    Far beyond any list of pins, it is now refused with one line, exit 18."""
    if shutil.which("prlimit") is None:
        pytest.skip("prlimit missing (util-linux)")
    path = tmp_path / "known"
    if kind.startswith("sparse"):
        with open(path, "wb") as fh:
            fh.truncate(4 << 30)
    else:
        path.symlink_to("/dev/zero")
    res = subprocess.run([*MEMORY_CAP, *cli, "trust", "list", "--known-servers", str(path)],
                         env=cli_env, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == ExitStatus.BAD_FILE, res.stderr
    assert res.stderr.startswith("error: known-servers file ") and "too large" in res.stderr
    assert res.stderr.count("\n") == 1, res.stderr


def test_a_lock_file_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    """known_servers.lock is a directory (or cannot be made): 'known-servers file
    .../known_servers: cannot be written: Is a directory', about a file that is no directory
    and could be written. The error names the lock file."""
    path = tmp_path / "known_servers"
    path.write_text(f"chat.lan:5050 {FP1} {SEEN}\n")
    (tmp_path / "known_servers.lock").mkdir()
    with pytest.raises(BadFileError, match=r"known_servers\.lock") as caught:
        KnownServers(path).add("other.lan", 5050, FP1)
    assert "Is a directory" in str(caught.value)


def test_a_fifo_in_the_files_place_is_refused_at_once(
        cli: list[str], cli_env: dict[str, str], tmp_path: Path) -> None:
    """known_servers was a FIFO (a named pipe made by mistake, or on purpose): reading it
    waited for a writer that never came, and every command that reads the pins hung for good.
    It is now refused at once, one line, exit 18, and left as it is."""
    path = tmp_path / "known_servers"
    os.mkfifo(path)
    with pytest.raises(BadFileError, match="not a regular file"):
        KnownServers(path).pins()
    res = subprocess.run([*cli, "trust", "list", "--known-servers", str(path)], env=cli_env,
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == ExitStatus.BAD_FILE, res.stderr
    assert res.stderr.startswith("error: known-servers file ") and "FIFO" in res.stderr
    assert stat.S_ISFIFO(os.stat(path).st_mode)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_a_directory_in_the_files_place_leaks_no_descriptor(tmp_path: Path) -> None:
    """Found by review: since known_servers is opened with O_NONBLOCK and then wrapped, a
    directory in its place left the descriptor open (fdopen refused it): one per read."""
    path = tmp_path / "known_servers"
    path.mkdir()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(BadFileError, match="directory"):
            KnownServers(path).pins()
    assert len(os.listdir("/proc/self/fd")) == before
