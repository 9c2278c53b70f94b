"""``richchat send --file`` and ``richchat get`` as real processes against a real server (in this
test's event loop, on loopback), with real files; killed processes resume."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from richchat.core.exit_codes import ExitStatus
from richchat.core.protocol import frames as f
from richchat.core.server import ChatServer
from richchat.core.transfer import PART_PREFIX, PART_SUFFIX
from tests.client.servers import cli_env, next_frame, registered
from tests.conditions import wait_until
from tests.linechat import LineClient
from tests.server.conftest import ServerFactory, make_server

__all__ = ["make_server"]

CLI = [sys.executable, "-m", "richchat"]
#: the resume tests' file, and the speed the server lets it through (so that "halfway"
#: lasts long enough to be caught: about a second each way on loopback)
BIG = 50_000_000
RATE = 40_000_000


@pytest.fixture(autouse=True)
def downloads_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """``get`` without ``-o`` saves in the test's directory, never in the user's downloads."""
    where = tmp_path / "default-downloads"
    monkeypatch.setenv("RICHCHAT_DOWNLOAD_DIR", str(where))
    return where


async def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env or cli_env(),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def make_file(path: Path, size: int, seed: int = 0) -> str:
    data = hashlib.shake_256(f"{seed}".encode()).digest(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def sha_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def where(server: ChatServer) -> str:
    return f"127.0.0.1:{server.port}"


async def test_send_file_then_get(make_server: ServerFactory, tmp_path: Path) -> None:
    server = await make_server()
    bob = await registered(server.port, "bob")
    src = tmp_path / "Quarterly report.pdf"
    sha = make_file(src, 123_456)
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(src))
    assert code == ExitStatus.OK, err
    assert out == ""
    offer = await next_frame(bob, f.FileOffer)
    assert isinstance(offer, f.FileOffer) and offer.sha256 == sha
    assert (f"shared Quarterly report.pdf (123 kB, sha256 {sha[:12]}) in lobby as alice: "
            f"file {offer.id}") in err
    assert f"richchat get {where(server)} {offer.id} --nick NAME" in err

    dl = tmp_path / "dl"
    code, out, err = await run("get", where(server), offer.id, "--nick", "carol", "-o", f"{dl}/",
                               "--json")
    assert code == ExitStatus.OK, err
    result = json.loads(out)
    assert result["path"] == str(dl / "Quarterly report.pdf") and result["sha256"] == sha
    assert (result["size"], result["received"], result["resumed_from"]) == (123_456, 123_456, 0)
    assert (result["error"], result["exit_code"]) == (None, 0)
    assert sha_of(dl / "Quarterly report.pdf") == sha

    # again: a new name beside it; an exact -o name that exists is not overwritten
    code, _, err = await run("get", where(server), offer.id, "--nick", "carol", "-o", str(dl))
    assert code == ExitStatus.OK and f"saved {dl / 'Quarterly report (1).pdf'}" in err
    assert server.files is not None
    gets = len([r for r in server.files.recent if r.op == "GET"])
    code, _, err = await run("get", where(server), offer.id, "--nick", "carol",
                             "-o", str(dl / "Quarterly report.pdf"))
    assert code == ExitStatus.FILE_ERROR and "not overwritten" in err
    assert err.startswith("error: ") and "Traceback" not in err
    # said before a byte is fetched, and no part file left beside it (an exploratory pass
    # found the whole file downloaded first, then refused)
    assert len([r for r in server.files.recent if r.op == "GET"]) == gets
    assert not [p for p in dl.iterdir() if p.name.endswith(PART_SUFFIX)]
    code, _, err = await run("get", where(server), offer.id, "--nick", "carol",
                             "-o", str(dl / "renamed.bin"))
    assert code == ExitStatus.OK and sha_of(dl / "renamed.bin") == sha
    await bob.close()


async def test_send_file_json_to_a_room_and_privately(make_server: ServerFactory,
                                                      tmp_path: Path) -> None:
    server = await make_server()
    bob = await registered(server.port, "bob")
    src = tmp_path / "a.txt"
    sha = make_file(src, 1000)
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(src),
                               "--to", "bob", "--json")
    assert code == ExitStatus.OK, err
    result = json.loads(out)
    assert {k: result[k] for k in ("nick", "target", "name", "size", "sha256", "sent", "error",
                                   "exit_code")} == {
        "nick": "alice", "target": "@bob", "name": "a.txt", "size": 1000, "sha256": sha,
        "sent": 1000, "error": None, "exit_code": 0}
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(src),
                               "--room", "dev", "--json")
    assert code == ExitStatus.OK, err
    again = json.loads(out)
    assert again["target"] == "dev" and again["sent"] == 0  # the server had the bytes
    # the room's file is for its members: --room joins first
    code, _, err = await run("get", where(server), again["id"], "--nick", "carol",
                             "-o", f"{tmp_path / 'dl'}/")
    assert code == ExitStatus.FILE_UNAVAILABLE and "--room dev" in err
    code, _, err = await run("get", where(server), again["id"], "--nick", "carol", "--room",
                             "dev", "-o", f"{tmp_path / 'dl'}/")
    assert code == ExitStatus.OK, err
    await bob.close()


async def test_exit_codes(make_server: ServerFactory, tmp_path: Path,
                          downloads_in_tmp: Path) -> None:
    server = await make_server(file_max_size=10_000)
    big = tmp_path / "big.bin"
    make_file(big, 10_001)
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(big))
    assert code == ExitStatus.FILE_TOO_LARGE and out == ""
    assert "takes files of at most" in err and err.count("\n") == 1
    assert server.files is not None and server.files.bytes_in == 0  # not a byte of it
    # --json: a document on stdout even when nothing was shared (the error and exit status)
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(big),
                               "--json")
    assert code == ExitStatus.FILE_TOO_LARGE and err.count("\n") == 1
    assert json.loads(out) == {
        "server": where(server), "nick": "alice", "target": "lobby", "name": "big.bin",
        "error": err.removeprefix("error: ").strip(),  # the whole line, its hint included
        "exit_code": ExitStatus.FILE_TOO_LARGE}
    code, _, err = await run("send", where(server), "--nick", "alice", "--file",
                             str(tmp_path / "missing.bin"))
    assert code == ExitStatus.FILE_ERROR and "cannot read" in err
    code, _, err = await run("send", where(server), "--nick", "alice", "--file", str(tmp_path))
    assert code == ExitStatus.FILE_ERROR and "is a directory" in err
    code, _, err = await run("send", where(server), "--nick", "alice", "--file", str(big), "hi")
    assert code == ExitStatus.USAGE
    code, _, err = await run("get", where(server), "kkkkkkkkkkkk", "--nick", "bob",
                             "-o", f"{tmp_path / 'dl'}/")
    assert code == ExitStatus.FILE_UNAVAILABLE and "no file kkkkkkkkkkkk" in err
    # --json: a document on stdout even when nothing was saved (the error and exit status)
    code, out, err = await run("get", where(server), "kkkkkkkkkkkk", "--nick", "bob",
                               "-o", f"{tmp_path / 'dl'}/", "--json")
    assert code == ExitStatus.FILE_UNAVAILABLE and err.count("\n") == 1
    failure = json.loads(out)
    assert failure.pop("error") in err and "no file kkkkkkkkkkkk" in err
    assert failure == {"server": where(server), "id": "kkkkkkkkkkkk",
                       "exit_code": ExitStatus.FILE_UNAVAILABLE}
    code, _, err = await run("get", where(server), "../../etc", "--nick", "bob")
    assert code == ExitStatus.USAGE and "not a file id" in err
    code, _, err = await run("get", where(server), "kkkkkkkkkkkk")
    assert code == ExitStatus.USAGE and "--nick" in err
    assert not downloads_in_tmp.exists()  # nothing fetched: no directory made

    small = tmp_path / "small.bin"
    sha = make_file(small, 5000)
    code, out, _ = await run("send", where(server), "--nick", "alice", "--file", str(small),
                             "--json")
    file_id = json.loads(out)["id"]
    blob = server.config.data_dir / "files" / sha
    blob.write_bytes(b"\0" * 5000)  # damaged on the server's disk, same size
    dl = tmp_path / "dl"
    code, _, err = await run("get", where(server), file_id, "--nick", "bob", "-o", f"{dl}/")
    assert code == ExitStatus.FILE_CORRUPT and "damaged" in err
    assert not dl.exists() or list(dl.iterdir()) == []

    off = await make_server(files=False, data_dir=tmp_path / "other")
    code, _, err = await run("send", where(off), "--nick", "alice", "--file", str(small))
    assert code == ExitStatus.FILE_UNAVAILABLE and "does not take files" in err


async def _killed_at_half(proc: asyncio.subprocess.Process, grows: Path, what: str) -> int:
    """SIGKILL ``proc`` once ``grows`` holds at least half of BIG; its size then."""
    def half() -> bool:
        return grows.exists() and grows.stat().st_size >= BIG // 2

    await wait_until(lambda: half() or proc.returncode is not None, what, timeout=60)
    proc.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(proc.wait(), 30) == -signal.SIGKILL
    return grows.stat().st_size


@pytest.mark.slow
async def test_an_upload_killed_halfway_resumes(make_server: ServerFactory, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    server = await make_server(file_rate=RATE)
    assert server.files is not None
    src = tmp_path / "big.bin"
    sha = make_file(src, BIG)
    partial = server.config.data_dir / "files" / "partial" / sha
    proc = await asyncio.create_subprocess_exec(
        *CLI, "send", where(server), "--nick", "alice", "--file", str(src),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    await _killed_at_half(proc, partial, "half the upload on the server")
    await wait_until(lambda: not server.files.uploading, "the server to see the sender go")  # type: ignore[union-attr]
    held = partial.stat().st_size
    assert BIG // 2 <= held < BIG
    first = [r for r in server.files.recent if r.op == "PUT"]
    assert [r.outcome for r in first] == ["interrupted"]

    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(src),
                               "--json")
    assert code == ExitStatus.OK, err
    result = json.loads(out)
    assert (result["resumed_from"], result["sent"]) == (held, BIG - held)
    second = [r for r in server.files.recent if r.op == "PUT"][-1]
    assert (second.offset, second.moved, second.outcome) == (held, BIG - held, "stored")
    assert second.moved <= 0.55 * BIG  # counted on the server
    assert sha_of(server.config.data_dir / "files" / sha) == sha
    assert not partial.exists()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.slow
async def test_a_download_killed_halfway_resumes(make_server: ServerFactory, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    src = tmp_path / "big.bin"
    sha = make_file(src, BIG)
    # shared through a server without a speed limit, then served by one with a limit (the
    # same data directory: files and offers outlive a restart)
    fast = await make_server()
    code, out, err = await run("send", where(fast), "--nick", "alice", "--file", str(src),
                               "--json")
    assert code == ExitStatus.OK, err
    file_id = json.loads(out)["id"]
    await fast.stop()
    server = await make_server(file_rate=RATE)
    assert server.files is not None
    dl = tmp_path / "dl"
    part = dl / f"{PART_PREFIX}{file_id}{PART_SUFFIX}"
    proc = await asyncio.create_subprocess_exec(
        *CLI, "get", where(server), file_id, "--nick", "bob", "-o", f"{dl}/",
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    held = await _killed_at_half(proc, part, "half the download on disk")
    assert BIG // 2 <= held < BIG
    await wait_until(lambda: any(r.op == "GET" for r in server.files.recent),  # type: ignore[union-attr]
                     "the server to see the receiver go")

    code, out, err = await run("get", where(server), file_id, "--nick", "bob", "-o", str(dl),
                               "--json")  # the directory exists now: no trailing / needed
    assert code == ExitStatus.OK, err
    result = json.loads(out)
    assert (result["resumed_from"], result["received"]) == (held, BIG - held)
    gets = [r for r in server.files.recent if r.op == "GET"]
    assert gets[-1].offset == held and gets[-1].moved == BIG - held
    assert gets[-1].moved <= 0.55 * BIG  # counted on the server
    assert sha_of(Path(result["path"])) == sha and Path(result["path"]).name == "big.bin"
    assert not part.exists()
    assert os.path.realpath(result["path"]) == str(dl.resolve() / "big.bin")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # asyncio's included


@pytest.mark.parametrize("argv", [
    ["get", "127.0.0.1:1", "aaaaaaaaaaaa", "--nick", "x"],
    ["send", "127.0.0.1:1", "--nick", "x", "--file", __file__],
])
def test_file_commands_do_not_import_heavy_modules(argv: list[str]) -> None:
    probe = (
        "import sys\n"
        f"sys.argv = ['richchat', *{argv!r}]\n"
        "try:\n"
        "    from richchat.cli import main; main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('textual', 'scapy', 'nmap', 'zeroconf', 'requests') "
        "if m in sys.modules]\n"
        "print(','.join(heavy) or 'none')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env=cli_env(), timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "none", result.stdout + result.stderr
    assert "connection refused" in result.stderr


async def test_a_file_cut_shorter_while_it_is_sent_fails_instead_of_hanging(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """The file shrinks (truncated by another program) during the upload: send --file says so
    with exit 21 instead of waiting for bytes that will never come (it spun for ever)."""
    server = await make_server(file_rate=1_000_000)  # 8 MB: 8 s to send
    assert server.files is not None
    src = tmp_path / "growing.log"
    sha = make_file(src, 8_000_000)
    partial = server.config.data_dir / "files" / "partial" / sha
    proc = await asyncio.create_subprocess_exec(
        *CLI, "send", where(server), "--nick", "alice", "--file", str(src), "--timeout", "5",
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=cli_env(),
    )
    await wait_until(lambda: partial.exists() and partial.stat().st_size > 0,
                     "the upload to start", timeout=60)
    os.truncate(src, 1000)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("send --file still runs 60 s after its file was cut") from None
    assert proc.returncode == ExitStatus.FILE_CORRUPT, err
    assert b"changed while it was sent" in err and err.count(b"\n") == 1
    assert out == b""


async def netcat_token(port: int, file_id: str) -> tuple[LineClient, str]:
    """A netcat user ``erin`` asks for ``file_id`` (``/get``): the connection, and the token
    of the ``richchat get ... --token`` line it is told."""
    nc = await LineClient.connect(port)
    await nc.expect(lambda line: "Type a nickname" in line)
    nc.send("erin")
    nc.send(f"/get {file_id}")
    line = await nc.expect(lambda line: "--token" in line)
    return nc, line.rsplit("--token ", 1)[1].strip()


async def test_get_with_a_netcat_token_used_twice_or_malformed(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """The one-time command /get prints works once; run again it is exit 20 (it was 1, an
    'unexpected' error), and a mangled token is a usage error (it was a pydantic
    ValidationError of several lines, exit 1)."""
    server = await make_server()
    src = tmp_path / "notes.txt"
    make_file(src, 1234)
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(src),
                               "--json")
    assert code == ExitStatus.OK, err
    file_id = json.loads(out)["id"]
    nc, token = await netcat_token(server.port, file_id)
    dl = f"{tmp_path / 'dl'}/"
    code, _, err = await run("get", where(server), file_id, "--token", token, "-o", dl)
    assert code == ExitStatus.OK, err
    code, _, err = await run("get", where(server), file_id, "--token", token, "-o", dl)
    assert code == ExitStatus.FILE_UNAVAILABLE, err
    assert err.startswith("error: ") and err.count("\n") == 1 and f"/get {file_id}" in err
    for bad in ("bad", "x" * 65, "a b" * 8):
        code, _, err = await run("get", where(server), file_id, "--token", bad, "-o", dl)
        assert code == ExitStatus.USAGE, err
        assert err.startswith("error: ") and "is not a token" in err and err.count("\n") == 1
    nc.writer.close()


async def test_get_with_a_token_for_another_file_is_refused(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """``get B --token T`` with T issued for file A downloaded A and reported it as B (the
    transfer request named no file, and XOK carries no id). Now the server refuses the
    token for B (exit 20, one line naming both ids), nothing is saved, and the token still
    fetches A."""
    server = await make_server()
    ids = []
    for seed, name in ((1, "a.txt"), (2, "b.txt")):
        src = tmp_path / name
        make_file(src, 5000 + seed, seed=seed)
        code, out, err = await run("send", where(server), "--nick", "alice", "--file",
                                   str(src), "--json")
        assert code == ExitStatus.OK, err
        ids.append(json.loads(out)["id"])
    id_a, id_b = ids
    nc, token_a = await netcat_token(server.port, id_a)
    dl = tmp_path / "dl"
    code, out, err = await run("get", where(server), id_b, "--token", token_a, "-o", f"{dl}/",
                               "--json")
    assert code == ExitStatus.FILE_UNAVAILABLE, err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert f"for file {id_a}, not for {id_b}" in err
    # --json: the failure's document (nothing saved), the error as on stderr
    failure = json.loads(out)
    assert failure.pop("error") in err
    assert failure == {"server": where(server), "id": id_b,
                       "exit_code": ExitStatus.FILE_UNAVAILABLE}
    assert not dl.exists() or list(dl.iterdir()) == []
    # the token was not used up by the refused request: it still fetches its own file
    code, out, err = await run("get", where(server), id_a, "--token", token_a, "-o", f"{dl}/",
                               "--json")
    assert code == ExitStatus.OK, err
    result = json.loads(out)
    assert result["id"] == id_a and result["name"] == "a.txt"
    assert sha_of(dl / "a.txt") == sha_of(tmp_path / "a.txt")
    nc.writer.close()


async def test_a_stale_part_file_is_replaced_not_completed(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """A part file whose bytes are not the file's start (garbage, or left by another
    server's file of the same id) was resumed, completed, and failed the hash at the end
    (exit 21, the part discarded: the next run worked). Now the server compares the hash
    of the bytes held with its copy and starts from 0: exit 0 at once, the whole file
    received and verified. A part longer than the file (with a --token, where the client
    does not know the size) starts from 0 too; a good part still resumes."""
    server = await make_server()
    size = 300_000
    src = tmp_path / "data.bin"
    sha = make_file(src, size, seed=7)
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(src),
                               "--json")
    assert code == ExitStatus.OK, err
    file_id = json.loads(out)["id"]
    dl = tmp_path / "dl"
    dl.mkdir()
    part = dl / f"{PART_PREFIX}{file_id}{PART_SUFFIX}"

    async def get(*how: str) -> dict[str, object]:
        code, out, err = await run("get", where(server), file_id, *how, "-o", f"{dl}/",
                                   "--json")
        assert code == ExitStatus.OK, err
        result: dict[str, object] = json.loads(out)
        saved = Path(str(result["path"]))
        assert sha_of(saved) == sha and result["sha256"] == sha
        saved.unlink()
        assert not part.exists()
        return result

    part.write_bytes(b"\0garbage" * 10_000)  # 90,000 bytes that are not the file's
    result = await get("--nick", "carol")
    assert (result["resumed_from"], result["received"]) == (0, size)

    part.write_bytes(src.read_bytes()[:120_000])  # a true start: resumed
    result = await get("--nick", "carol")
    assert (result["resumed_from"], result["received"]) == (120_000, size - 120_000)

    nc = await LineClient.connect(server.port)
    await nc.expect(lambda line: "Type a nickname" in line)
    nc.send("erin")
    for stale in (b"x" * (size + 5000), b"y" * 1000):  # longer than the file; garbage
        nc.send(f"/get {file_id}")
        line = await nc.expect(lambda line: "--token" in line)
        token = line.rsplit("--token ", 1)[1].strip()
        part.write_bytes(stale)
        result = await get("--token", token)
        assert (result["resumed_from"], result["received"]) == (0, size)
    nc.writer.close()


async def test_an_error_naming_a_path_with_control_characters_is_one_inert_line(
        tmp_path: Path) -> None:
    """A path with a line break and an escape sequence, quoted in the error: it was printed
    as is (two lines, and ESC reached the terminal)."""
    odd = tmp_path / "no\nsuch\x1b[2J.txt"
    code, _, err = await run("send", "127.0.0.1:1", "--nick", "alice", "--file", str(odd))
    assert code == ExitStatus.FILE_ERROR, err
    assert err.startswith("error: cannot read ") and err.count("\n") == 1
    assert "\x1b" not in err and "\u241b[2J" in err


async def test_a_second_get_of_a_file_being_downloaded_says_so(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """Two downloads of one file into one directory (two gets, or /get twice in the chat)
    wrote into the same part file; the second then failed with 'cannot name the download:
    No such file or directory' once the first had renamed it, and could discard the part
    file the first was writing. Now the second says at once that the file is being
    downloaded there, and leaves the first alone."""
    src = tmp_path / "big.bin"
    sha = make_file(src, 4_000_000)
    fast = await make_server()
    code, out, err = await run("send", where(fast), "--nick", "alice", "--file", str(src),
                               "--json")
    assert code == ExitStatus.OK, err
    file_id = json.loads(out)["id"]
    await fast.stop()
    # the same data directory, 10 s to fetch: the second get (a new process) starts well
    # before the first ends, even on a loaded machine
    server = await make_server(file_rate=400_000)
    dl = tmp_path / "dl"
    part = dl / f"{PART_PREFIX}{file_id}{PART_SUFFIX}"
    first = await asyncio.create_subprocess_exec(
        *CLI, "get", where(server), file_id, "--nick", "bob", "-o", f"{dl}/",
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=cli_env(),
    )
    await wait_until(lambda: part.exists() and part.stat().st_size > 0,
                     "the first download to be under way", timeout=60)
    code, _, err = await run("get", where(server), file_id, "--nick", "carol", "-o", f"{dl}/")
    assert code == ExitStatus.FILE_ERROR, err
    assert "already being downloaded" in err and err.count("\n") == 1
    _, first_err = await asyncio.wait_for(first.communicate(), 120)
    assert first.returncode == ExitStatus.OK, first_err
    assert sorted(p.name for p in dl.iterdir()) == ["big.bin"]
    assert sha_of(dl / "big.bin") == sha


async def test_a_saved_name_with_control_characters_is_one_inert_line(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """get -o with a line break and an escape sequence in the name: the success line printed
    it raw (two lines, ESC on the terminal)."""
    server = await make_server()
    src = tmp_path / "notes.txt"
    make_file(src, 1_000)
    code, _, err = await run("send", where(server), "--nick", "alice", "--file", str(src))
    assert code == ExitStatus.OK, err
    file_id = err.split(": file ", 1)[1].split()[0]
    odd = tmp_path / "saved\nas\x1b[2J.txt"
    code, _, err = await run("get", where(server), file_id, "--nick", "carol", "-o", str(odd))
    assert code == ExitStatus.OK, err
    assert odd.exists()
    assert err.startswith("saved ") and err.count("\n") == 1, err
    assert "\x1b" not in err and "\u241b[2J" in err


async def run_in(cwd: Path, *args: str, env: dict[str, str]) -> tuple[int, bytes, str]:
    """A command run in ``cwd``, its stdout as bytes."""
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, cwd=cwd,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out, err.decode()


async def test_get_to_stdout_writes_the_verified_bytes_and_nothing_else(
    make_server: ServerFactory, tmp_path: Path, downloads_in_tmp: Path,
) -> None:
    """``-o -`` (as with curl and wget) writes the file to stdout, not to a file named ``-``
    (which it did before); messages stay on stderr; the temporary copy is removed."""
    server = await make_server()
    src = tmp_path / "data.bin"
    sha = make_file(src, 300_000)
    code, out_text, err = await run("send", where(server), "--nick", "alice", "--file",
                                    str(src), "--json")
    assert code == ExitStatus.OK, err
    file_id = json.loads(out_text)["id"]
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    env = {**cli_env(), "TMPDIR": str(tmp)}
    code, out, err = await run_in(cwd, "get", where(server), file_id, "--nick", "bob", "-o", "-",
                                  env=env)
    assert code == ExitStatus.OK, err
    assert out == src.read_bytes()
    assert err == f"wrote data.bin to stdout (300 kB, sha256 {sha[:12]} verified)\n"
    assert list(cwd.iterdir()) == [] and list(tmp.iterdir()) == []
    assert not downloads_in_tmp.exists()
    code, out, err = await run_in(cwd, "get", where(server), file_id, "--nick", "bob", "-o", "-",
                                  "-q", env=env)
    assert (code, out, err) == (ExitStatus.OK, src.read_bytes(), "")
    # --json wants stdout too: refused in one line before anything is fetched
    assert server.files is not None
    gets = len([r for r in server.files.recent if r.op == "GET"])
    code, out, err = await run_in(cwd, "get", where(server), file_id, "--nick", "bob", "-o", "-",
                                  "--json", env=env)
    assert code == ExitStatus.USAGE and out == b"" and err.count("\n") == 1
    assert "-o - and --json both write to stdout" in err
    assert len([r for r in server.files.recent if r.op == "GET"]) == gets
    # a file that does not exist: the documented exit code, nothing on stdout, nothing left
    code, out, err = await run_in(cwd, "get", where(server), "kkkkkkkkkkkk", "--nick", "bob",
                                  "-o", "-", env=env)
    assert code == ExitStatus.FILE_UNAVAILABLE and out == b"" and err.count("\n") == 1
    assert list(cwd.iterdir()) == [] and list(tmp.iterdir()) == []
    # bytes that do not match the SHA-256: nothing reaches stdout
    (server.config.data_dir / "files" / sha).write_bytes(b"\0" * 300_000)
    code, out, err = await run_in(cwd, "get", where(server), file_id, "--nick", "bob", "-o", "-",
                                  env=env)
    assert code == ExitStatus.FILE_CORRUPT and out == b"" and err.count("\n") == 1
    assert list(cwd.iterdir()) == [] and list(tmp.iterdir()) == []


async def test_get_to_a_closed_stdout_fails(make_server: ServerFactory, tmp_path: Path,
                                            downloads_in_tmp: Path) -> None:
    """Found by the exploratory pass of stop 28: ``get ID -o - >&-`` downloaded the file, wrote
    it into the null device that stands for a closed stdout, said "wrote ... to stdout
    (verified)" and exited 0: a script was told it had the file. Now: one line, exit 22,
    nothing downloaded."""
    server = await make_server()
    src = tmp_path / "data.bin"
    make_file(src, 300_000)
    code, out_text, err = await run("send", where(server), "--nick", "alice", "--file",
                                    str(src), "--json")
    assert code == ExitStatus.OK, err
    file_id = json.loads(out_text)["id"]
    assert server.files is not None
    gets = len([r for r in server.files.recent if r.op == "GET"])
    proc = await asyncio.create_subprocess_exec(
        *CLI, "get", where(server), file_id, "--nick", "bob", "-o", "-",
        stdin=subprocess.DEVNULL, stdout=None, stderr=subprocess.PIPE, env=cli_env(),
        preexec_fn=lambda: os.close(1),
    )
    _, err_bytes = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == ExitStatus.FILE_ERROR, err_bytes
    lines = err_bytes.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot write the file to stdout: standard output is closed"), lines
    assert len([r for r in server.files.recent if r.op == "GET"]) == gets
