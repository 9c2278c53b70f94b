"""The known-servers file: format, keys, edits that keep comments, corruption, concurrency."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from richchat.core.errors import BadFileError, UsageError
from richchat.core.exit_codes import ExitStatus
from richchat.core.trust.known import HEADER, KnownServers, normalise_host, parse_line, pin_key

FP1 = "SHA256:" + "A" * 42 + "E"
FP2 = "SHA256:" + "B" * 42 + "E"
REPO = Path(__file__).resolve().parents[2]


def test_add_get_forget(tmp_path: Path) -> None:
    known = KnownServers(tmp_path / "cfg" / "known_servers")
    assert known.get("chat.lan", 5050) is None  # no file yet: nothing pinned
    pin = known.add("Chat.LAN.", 5050, FP1)
    assert pin.key == "chat.lan:5050" and pin.fingerprint == FP1
    assert known.get("chat.lan", 5050) == pin
    assert known.get("CHAT.lan", 5050) == pin  # host names are case-insensitive
    assert known.get("chat.lan", 5051) is None  # another port is another server
    lines = known.path.read_text().splitlines()
    assert lines[0] == HEADER and lines[1].startswith("chat.lan:5050 " + FP1 + " 20")
    assert stat.S_IMODE(known.path.stat().st_mode) == 0o600
    assert known.add("chat.lan", 5050, FP1) == pin  # the same key again: unchanged
    with pytest.raises(KeyError):
        known.add("chat.lan", 5050, FP2)  # another key needs replace=True
    assert known.add("chat.lan", 5050, FP2, replace=True).fingerprint == FP2
    assert known.forget("chat.lan", 5050) is not None
    assert known.forget("chat.lan", 5050) is None
    assert known.pins() == []


def test_ipv6_and_address_forms(tmp_path: Path) -> None:
    known = KnownServers(tmp_path / "k")
    known.add("[0:0:0:0:0:0:0:1]", 5050, FP1)
    assert known.get("::1", 5050) is not None
    assert "[::1]:5050 " in known.path.read_text()
    assert pin_key("127.000.0.1", 1) == "127.000.0.1:1"  # not an IP for Python: a name
    assert normalise_host("FE80::1%eth0") == "fe80::1%eth0"
    known.add("127.0.0.1", 5050, FP1)
    assert [p.key for p in known.with_fingerprint(FP1)] == ["[::1]:5050", "127.0.0.1:5050"]


def test_comments_and_blank_lines_survive_edits(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text(f"# mine\n\na:1 {FP1} 2026-01-01T00:00:00Z\n# keep me\n")
    known = KnownServers(path)
    known.add("b", 2, FP2)
    known.forget("a", 1)
    assert path.read_text().splitlines()[:3] == ["# mine", "", "# keep me"]


@pytest.mark.parametrize("content, where", [
    ("garbage\n", "line 1"),
    (f"a:1 {FP1}\n", "line 1"),
    (f"a {FP1} 2026-01-01T00:00:00Z\n", "line 1"),
    (f"a:99999 {FP1} 2026-01-01T00:00:00Z\n", "line 1"),
    # digits to str.isdigit that int() refuses (a ValueError out of the parser)
    (f"a:\u00b2 {FP1} 2026-01-01T00:00:00Z\n", "line 1"),
    (f"a:{'1' * 5000} {FP1} 2026-01-01T00:00:00Z\n", "line 1"),
    (f"::1:5 {FP1} 2026-01-01T00:00:00Z\n", "line 1"),
    ("a:1 SHA256:short 2026-01-01T00:00:00Z\n", "line 1"),
    (f"# ok\na:1 {FP1} yesterday\n", "line 2"),
    (f"a:1 {FP1} 2026-01-01T00:00:00Z\nA:1 {FP2} 2026-01-01T00:00:00Z\n", "pinned twice"),
])
def test_corrupt_file_is_one_clear_error(tmp_path: Path, content: str, where: str) -> None:
    path = tmp_path / "k"
    path.write_text(content)
    with pytest.raises(BadFileError) as info:
        KnownServers(path).get("a", 1)
    assert str(path) in info.value.message and where in info.value.message
    assert info.value.exit_status == ExitStatus.BAD_FILE
    with pytest.raises(BadFileError):
        KnownServers(path).add("z", 1, FP1)  # never rewritten over what it cannot read
    assert path.read_text() == content


def test_binary_and_directory_are_bad_files(tmp_path: Path) -> None:
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BadFileError, match="not a text file"):
        KnownServers(tmp_path / "bin").pins()
    (tmp_path / "dir").mkdir()
    with pytest.raises(BadFileError, match="directory"):
        KnownServers(tmp_path / "dir").pins()


def test_env_var_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RICHCHAT_KNOWN_SERVERS", str(tmp_path / "from-env"))
    assert KnownServers().path == tmp_path / "from-env"
    assert KnownServers(tmp_path / "explicit").path == tmp_path / "explicit"


def test_parse_line() -> None:
    assert parse_line("   ") is None and parse_line("# x") is None
    pin = parse_line(f"[fd00::5]:5050 {FP1} 2026-05-11T14:02:10Z")
    assert pin is not None and (pin.host, pin.port) == ("fd00::5", 5050)


def test_parallel_writers_lose_no_pin(tmp_path: Path) -> None:
    """Eight processes pin 25 servers each at the same time: all 200 pins are there."""
    path = tmp_path / "k"
    code = (
        "import sys\n"
        "from richchat.core.trust.known import KnownServers\n"
        "k = KnownServers(__import__('pathlib').Path(sys.argv[1]))\n"
        "for i in range(25):\n"
        f"    k.add('h' + sys.argv[2], 1000 + i, {FP1!r})\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(n)], env=env)
             for n in range(8)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    assert len(KnownServers(path).pins()) == 200


@pytest.mark.parametrize("host", ["evil\nhost", "a b", "#hidden", "x\u2028y"])
def test_a_host_that_would_break_the_file_is_never_written(tmp_path: Path, host: str) -> None:
    known = KnownServers(tmp_path / "k")
    known.add("good.lan", 5050, FP1)
    before = known.path.read_bytes()
    with pytest.raises(UsageError, match="not a host name"):
        known.add(host, 5050, FP1)
    assert known.path.read_bytes() == before
    assert [p.key for p in known.pins()] == ["good.lan:5050"]


def test_trust_add_and_forget_keep_a_symlinked_file_a_symlink(
        tmp_path: Path, cli: list[str], cli_env: dict[str, str]) -> None:
    """``trust add``/``forget`` replaced a symlinked known_servers (a dotfiles repository's
    file, linked into ~/.config) by a regular file: the link was gone and the repository's
    copy never changed. Now the link's target is rewritten (atomically, in its own
    directory) and the link stays; a link to a link, and a relative one, too."""
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "known_servers"
    real.write_text(f"{HEADER}\n# my comment\n")
    config = tmp_path / "config"
    config.mkdir()
    middle = config / "middle"
    middle.symlink_to(real)
    link = config / "known_servers"
    link.symlink_to(os.path.relpath(middle, config))  # relative, to another link

    def trust(*args: str) -> None:
        res = subprocess.run([*cli, "trust", *args, "--known-servers", str(link)],
                             env=cli_env, capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
        assert res.returncode == ExitStatus.OK, res.stderr

    trust("add", "chat.lan:5050", FP1)
    assert link.is_symlink() and middle.is_symlink()
    assert os.readlink(link) == "middle" and os.path.realpath(link) == str(real)
    assert real.read_text().splitlines()[:2] == [HEADER, "# my comment"]
    assert KnownServers(real).get("chat.lan", 5050) is not None
    trust("add", "other.lan:6000", FP2)
    trust("forget", "chat.lan:5050")
    assert link.is_symlink() and os.path.realpath(link) == str(real)
    assert [p.key for p in KnownServers(real).pins()] == ["other.lan:6000"]
    assert sorted(p.name for p in config.iterdir()) == ["known_servers", "known_servers.lock",
                                                        "middle"]
    assert sorted(p.name for p in dotfiles.iterdir()) == ["known_servers"]  # no temp left
    # a dangling link (the dotfiles file not made yet): the file is made where it points
    real.unlink()
    trust("add", "chat.lan:5050", FP1)
    assert link.is_symlink() and KnownServers(real).get("chat.lan", 5050) is not None
