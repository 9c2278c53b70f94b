"""``richchat send --file`` in odd states (from the sixth exploratory pass): the same file
uploaded twice at once, a file only another user may read, a file whose size is not what
``stat`` said. Real processes against a real server in this test's event loop."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from richchat.core.exit_codes import ExitStatus
from richchat.core.protocol.filenames import human_size
from richchat.core.server import ChatServer
from richchat.core.sharing import ATTEMPTS
from richchat.core.transfer import PART_PREFIX, PART_SUFFIX
from tests.client.servers import cli_env
from tests.commands.test_files_cli import CLI, make_file, run, where
from tests.conditions import wait_until
from tests.linechat import HeldUpload, LineClient
from tests.server.conftest import ServerFactory, make_server

__all__ = ["make_server"]


def _busy_refusals(caplog: pytest.LogCaptureFixture) -> int:
    return sum("being uploaded on another connection" in r.getMessage()
               for r in caplog.records)


async def test_the_same_file_shared_twice_at_once_is_shared_twice(
        make_server: ServerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two ``send --file`` of the same bytes at once (one build shared with two rooms by two
    CI jobs): the server takes one upload of a content at a time and answers the other
    ``XERR|busy``. The second gave up after four tries in about three seconds with exit 1
    ('the server refused the transfer (busy)'), though nothing was wrong: the first upload
    was simply still running. It now waits for that upload, then shares the file the server
    holds (or resumes where the first stopped)."""
    caplog.set_level(logging.INFO)
    server = await make_server()
    src = tmp_path / "build.tar.gz"
    size = 200_000
    sha = make_file(src, size)
    data = src.read_bytes()
    # the first upload: under way, and held there (a slow link) while the second one starts
    first = await HeldUpload.start(server.port, data, sha, "build.tar.gz")

    proc = await asyncio.create_subprocess_exec(
        *CLI, "send", where(server), "--nick", "ci2", "--file", str(src), "--json",
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    try:
        # more refusals than the tries a plain failure gets, or the command gave up
        await wait_until(lambda: _busy_refusals(caplog) > ATTEMPTS
                         or proc.returncode is not None, "the second upload to wait",
                         timeout=60)
        still_waiting = proc.returncode is None
        await first.finish()  # the first upload ends
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await _end_both(proc, first)
    assert still_waiting, err.decode()
    assert proc.returncode == ExitStatus.OK, err.decode()
    result = json.loads(out)
    assert (result["sha256"], result["size"], result["target"]) == (sha, size, "lobby")


async def _end_both(proc: asyncio.subprocess.Process, first: HeldUpload) -> None:
    """The ``send`` still running (a failed test) killed, and the held upload closed."""
    if proc.returncode is None:
        proc.kill()
        await proc.wait()
    await first.close()


async def test_a_share_that_waited_for_another_upload_says_the_server_had_it(
        make_server: ServerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The second of two ``send --file`` of the same bytes waits for the first upload; once
    that one ends, the server holds the file and publishes this offer without an upload.
    ``--json`` said ``held: false, sent: 0``: nothing sent, yet the server did not have it?
    It says ``held: true`` (nothing was uploaded by this run), ``waited: true``, and the
    line on stderr says whose upload it was."""
    caplog.set_level(logging.INFO)
    server = await make_server()
    for json_out in (True, False):
        src = tmp_path / f"build-{json_out}.tar.gz"
        size = 150_000
        sha = make_file(src, size, seed=int(json_out))
        first = await HeldUpload.start(server.port, src.read_bytes(), sha, src.name)
        before = _busy_refusals(caplog)
        proc = await asyncio.create_subprocess_exec(
            *CLI, "send", where(server), "--nick", "ci2", "--file", str(src),
            *(("--json",) if json_out else ()), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
        try:
            await wait_until(lambda: _busy_refusals(caplog) > before  # noqa: B023
                             or proc.returncode is not None,  # noqa: B023
                             "the second upload to wait", timeout=60)
            await first.finish()
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            await _end_both(proc, first)
        assert proc.returncode == ExitStatus.OK, err.decode()
        if json_out:
            result = json.loads(out)
            assert (result["sha256"], result["sent"], result["resumed_from"], result["held"],
                    result["waited"]) == (sha, 0, 0, True, True), result
        else:
            assert ("(the server had it already: another upload of the same bytes ended "
                    "while this one waited for it): file ") in err.decode(), err.decode()


async def test_a_file_only_another_user_may_read_is_exit_22(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """README: 22, 'a local file cannot be read (send --file)'. A missing file said so, but a
    file without read permission got Typer's framed usage box ('path ... is not readable'),
    exit 2, before anything else. As root, the command runs without the capabilities that
    bypass file permissions."""
    server = await make_server()
    src = tmp_path / "secret.log"
    make_file(src, 100)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv missing (util-linux)")
        os.chown(src, 65534, 65534)
        os.chmod(src, 0o600)
        prefix = ("setpriv", "--inh-caps=-all",
                  "--bounding-set=-dac_override,-dac_read_search", "--")
    else:
        os.chmod(src, 0)
    proc = await asyncio.create_subprocess_exec(
        *prefix, *CLI, "send", where(server), "--nick", "alice", "--file", str(src),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == ExitStatus.FILE_ERROR, err.decode()
    text = err.decode()
    assert text.startswith("error: ") and text.count("\n") == 1, text
    assert "secret.log" in text


async def test_a_proc_file_is_refused_in_one_line_exit_22(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """A /proc file: its size reads 0 and its bytes are not, and they are made anew at each
    read. It got 'changed while it was read ...; try again', exit 21: trying again never
    helped. It is now refused before anything is sent (the README: a /proc or /sys file is
    copied into a regular file first), exit 22, in one line, and so it is with --json."""
    server = await make_server()
    status = Path("/proc/self/status")
    if not status.exists() or status.stat().st_size != 0:
        pytest.skip("needs Linux's /proc (a file whose stat size is 0)")
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(status))
    assert code == ExitStatus.FILE_ERROR, err
    assert err == (f"error: {status} has no fixed size (it says 0 bytes but its content is "
                   "another length, as /proc and /sys files do): copy it into a regular file "
                   "first and share that\n")
    assert out == ""
    code, out, err2 = await run("send", where(server), "--nick", "alice", "--file",
                                str(status), "--json")
    assert code == ExitStatus.FILE_ERROR, err2
    assert json.loads(out)["error"] == err.removeprefix("error: ").rstrip("\n")
    assert server.files is not None and server.files.bytes_in == 0
    # a /sys file says it is a page (4096 bytes) and is a few: it got 'changed while it was
    # read; try again', exit 21, found by review
    mtu = Path("/sys/class/net/lo/mtu")
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(mtu))
    assert code == ExitStatus.FILE_ERROR, err
    assert err.startswith(f"error: {mtu} has no fixed size (it says {mtu.stat().st_size} bytes"), err
    assert server.files is not None and server.files.bytes_in == 0
    # a regular file that is empty is still shared (as an empty file), and so is a small
    # sparse one (no disk blocks, and its size in zeros)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(empty))
    assert code == ExitStatus.OK, err
    sparse = tmp_path / "sparse.bin"
    with open(sparse, "wb") as fh:
        fh.truncate(4096)
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(sparse))
    assert code == ExitStatus.OK, err


async def test_an_empty_file_path_is_a_usage_error(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """``send --file ""`` (an unset variable: ``--file "$ARCHIVE"``): Typer made the empty
    path '.', and the command said '. is not a regular file', exit 22. It is a usage error,
    exit 2, one line; a directory says it is one (exit 22)."""
    server = await make_server()
    for extra in ((), ("--json",)):
        code, out, err = await run("send", where(server), "--nick", "alice", "--file", "",
                                   *extra)
        assert code == ExitStatus.USAGE, err
        assert err == "error: --file needs a file to share, not an empty path\n"
        if extra:
            assert json.loads(out)["error"] == err.removeprefix("error: ").rstrip("\n")
    code, _, err = await run("send", where(server), "--nick", "alice", "-f", str(tmp_path))
    assert code == ExitStatus.FILE_ERROR, err
    assert err == (f"error: {tmp_path} is a directory: one file is shared at a time (pack the "
                   "directory into one first, e.g. with tar)\n")


async def _shared_small(server: ChatServer, tmp_path: Path) -> str:
    """The id of a 100-byte file alice shared in the lobby of ``server``."""
    src = tmp_path / "a.txt"
    make_file(src, 100)
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(src),
                               "--json")
    assert code == ExitStatus.OK, err
    return str(json.loads(out)["id"])


async def test_a_download_directory_that_is_a_file_is_named_so(
        make_server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RICHCHAT_DOWNLOAD_DIR (or ``-o DIR/``) naming a file: 'cannot create the download
    directory ...: File exists', as if the directory were missing; it exists, as a file."""
    server = await make_server()
    file_id = await _shared_small(server, tmp_path)
    not_a_dir = tmp_path / "downloads"
    not_a_dir.write_text("a file")
    env = dict(cli_env(), RICHCHAT_DOWNLOAD_DIR=str(not_a_dir))
    code, _, err = await run("get", where(server), file_id, "--nick", "bob", env=env)
    assert code == ExitStatus.FILE_ERROR, err
    assert err == f"error: {not_a_dir} is not a directory\n"
    code, _, err = await run("get", where(server), file_id, "--nick", "bob", "-o",
                             f"{not_a_dir}/")
    assert code == ExitStatus.FILE_ERROR, err
    assert err == f"error: {not_a_dir} is not a directory\n"
    assert not_a_dir.read_text() == "a file"


@pytest.mark.netns
async def test_a_download_that_does_not_fit_is_never_said_saved(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """A file larger than the space left where it is saved (here a 256 KiB tmpfs, in a mount
    namespace of the ``get`` process alone). The part file is written without a buffer, and
    a write to a nearly full disk writes what fits and says how much: that count was ignored,
    and the hash is of the bytes received, not written. ``get`` said 'saved big.bin (600 kB,
    sha256 ... verified)', exit 0, of a file cut at 256 KiB. (A larger file failed at its
    next write, with Python's repr of the error: 'cannot write the download: [Errno 28] No
    space left on device'.) Now: one plain line naming the directory, exit 22."""
    from tests.server.test_faults import in_tmpfs, require_mount_ns

    require_mount_ns()
    server = await make_server()
    src = tmp_path / "big.bin"
    make_file(src, 600_000)
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(src),
                               "--json")
    assert code == ExitStatus.OK, err
    file_id = json.loads(out)["id"]
    small = tmp_path / "small"
    proc = await asyncio.create_subprocess_exec(
        *in_tmpfs(small, "size=256k"), *CLI, "get", where(server), file_id, "--nick", "bob",
        "-o", f"{small}/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=cli_env())
    _, raw = await asyncio.wait_for(proc.communicate(), 60)
    text = raw.decode()
    assert proc.returncode == ExitStatus.FILE_ERROR, text
    assert text == f"error: cannot write the download in {small}: No space left on device\n"


async def interrupted_get(server_addr: str, file_id: str, nick: str, dl: Path) -> tuple[Path, int]:
    """A ``get`` killed once part of the file is on disk: its part file, and its size."""
    part = dl / f"{PART_PREFIX}{file_id}{PART_SUFFIX}"
    proc = await asyncio.create_subprocess_exec(
        *CLI, "get", server_addr, file_id, "--nick", nick, "-o", f"{dl}/",
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=cli_env())
    try:
        await wait_until(lambda: (part.exists() and part.stat().st_size >= 200_000)
                         or proc.returncode is not None, "part of the download on disk",
                         timeout=60)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 30)
    held = part.stat().st_size
    assert 0 < held < 3_000_000
    return part, held


async def _shared_then_cut_off(make_server: ServerFactory, tmp_path: Path
                               ) -> tuple[ChatServer, str, str, Path, Path, int]:  # fmt: skip
    """A server (file rate limited: a download takes a while), a 3 MB file alice shared, and
    bob's download of it into tmp_path/dl killed halfway: (server, sha256, file id, the
    download directory, the part file, its size)."""
    server = await make_server(file_rate=1_000_000)
    src = tmp_path / "build.bin"
    sha = make_file(src, 3_000_000)
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(src),
                               "--json")
    assert code == ExitStatus.OK, err
    file_id = json.loads(out)["id"]
    dl = tmp_path / "dl"
    part, held = await interrupted_get(where(server), file_id, "bob", dl)
    return server, sha, file_id, dl, part, held


async def test_an_interrupted_download_of_a_file_since_expired_says_where_its_part_is(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """A ``get`` killed halfway leaves its part file for a resume; when the file has expired
    on the server meanwhile, the next ``get`` said 'no file ... (files expire ...)', exit 20,
    and nothing of the part file, hidden in the download directory for good. The line now
    says where it is (kept: see the next test); --json the same."""
    server, sha, file_id, dl, part, held = await _shared_then_cut_off(make_server, tmp_path)
    assert server.files is not None
    server.files.store.delete_blob(sha)  # expired (what the retention sweep does)

    code, out, err = await run("get", where(server), file_id, "--nick", "bob", "-o", f"{dl}/",
                               "--json")
    assert code == ExitStatus.FILE_UNAVAILABLE, err
    assert part.stat().st_size == held
    assert json.loads(out)["error"] == err.removeprefix("error: ").rstrip("\n")
    assert err == (f"error: no file {file_id} (files expire; ask for it to be shared again) "
                   f"({part} holds the {human_size(held)} an interrupted download of it "
                   "received: kept in case only the nickname was not the addressee's; delete "
                   "it if the file is gone)\n")
    part.unlink()  # the user deletes it: nothing more is said
    code, _, err = await run("get", where(server), file_id, "--nick", "bob", "-o", f"{dl}/")
    assert code == ExitStatus.FILE_UNAVAILABLE, err
    assert err == (f"error: no file {file_id} (files expire; ask for it to be shared "
                   "again)\n")


async def test_a_private_download_asked_for_under_another_nickname_keeps_its_part(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """Found by review: a private file is for its addressee alone; under any other nickname
    the server answers as for an expired file (to anyone else it does not exist). After an
    interrupted download, a ``get`` under the wrong nickname removed the part file, and the
    right one then started again from the first byte. It is kept; the right one resumes."""
    server = await make_server(file_rate=1_000_000)
    src = tmp_path / "letter.bin"
    make_file(src, 3_000_000)
    bob = await LineClient.connect(server.port, hello="t", nick="bob")  # online to be sent to
    code, out, err = await run("send", where(server), "--nick", "alice", "--to", "bob",
                               "--file", str(src), "--json")
    assert code == ExitStatus.OK, err
    file_id = json.loads(out)["id"]
    await bob.close()
    await wait_until(lambda: server.hub is not None and server.hub.users_online == 0,
                     "bob to be gone")
    dl = tmp_path / "dl"
    part, held = await interrupted_get(where(server), file_id, "bob", dl)

    code, _, err = await run("get", where(server), file_id, "--nick", "carol", "-o", f"{dl}/")
    assert code == ExitStatus.FILE_UNAVAILABLE, err
    assert f"{part} holds the {human_size(held)}" in err
    assert part.stat().st_size == held

    code, out, err = await run("get", where(server), file_id, "--nick", "bob", "-o", f"{dl}/",
                               "--json")
    assert code == ExitStatus.OK, err
    got = json.loads(out)
    assert got["resumed_from"] == held
    assert Path(got["path"]).read_bytes() == src.read_bytes()


async def test_json_errors_carry_the_whole_line_on_stderr(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """README: ``--json``'s ``error`` is 'the line on stderr'. It was the message alone: the
    part in brackets (what was done, what to do: 'nothing was sent', 'type /get ID in the
    chat again for a new one') was on stderr only, and a script showing the document's
    error lost it."""
    server = await make_server(file_max_size=10_000)
    big = tmp_path / "big.bin"
    make_file(big, 10_001)
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(big),
                               "--json")
    assert code == ExitStatus.FILE_TOO_LARGE, err
    assert err.endswith(" (nothing was sent)\n") and err.count("\n") == 1, err
    assert json.loads(out)["error"] == err.removeprefix("error: ").rstrip("\n")
    code, out, err = await run("get", where(server), "kkkkkkkkkkkk", "--token", "t" * 20,
                               "-o", f"{tmp_path / 'dl'}/", "--json")
    assert code == ExitStatus.FILE_UNAVAILABLE, err
    assert "(type /get kkkkkkkkkkkk in the chat again for a new one)" in err, err
    assert json.loads(out)["error"] == err.removeprefix("error: ").rstrip("\n")


async def test_a_long_name_downloaded_twice_stays_within_200_bytes(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """README: a saved name is 'at most 200 bytes'. A name of 200 bytes fetched a second time
    into the same directory became 'NAME (1).bin', 204 bytes; the stem now gives way."""
    server = await make_server()
    src = tmp_path / ("é" * 98 + ".bin")  # 196 + 4 bytes
    assert len(src.name.encode()) == 200
    make_file(src, 1000)
    code, out, err = await run("send", where(server), "--nick", "alice", "--file", str(src),
                               "--json")
    assert code == ExitStatus.OK, err
    file_id = json.loads(out)["id"]
    dl = tmp_path / "dl"
    names = []
    for _ in range(2):
        code, out, err = await run("get", where(server), file_id, "--nick", "bob", "-o",
                                   f"{dl}/", "--json")
        assert code == ExitStatus.OK, err
        names.append(Path(json.loads(out)["path"]).name)
    assert names[0] == src.name
    assert names[1].endswith(" (1).bin") and names[1].startswith("é" * 90), names[1]
    assert len(names[1].encode()) <= 200, len(names[1].encode())
    assert sorted(os.listdir(dl)) == sorted(names)


async def test_an_upload_stopped_with_ctrl_c_is_not_shared(
        make_server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the exploratory pass: Ctrl+C during ``send --file`` said 'the file was not
    shared', exit 130, and about 10 s later the server published it under the sender's
    name (privately or to the lobby): the whole file was in the socket buffers, the client
    closed gracefully, the server read on, verified it and shared it. A stopped upload now
    drops its connection with a reset: what was still unsent is discarded, the server keeps
    a part for a resume and shares nothing."""
    server = await make_server(file_rate=50_000)  # slow: most of the file waits in buffers
    assert server.files is not None
    ended: list[str] = []
    real_ended = server.files.store.upload_ended

    def upload_ended(sha256: str, held: int) -> None:
        ended.append(sha256)
        real_ended(sha256, held)

    real_commit = server.files.store.commit

    def commit(sha256: str, size: int) -> None:  # the whole file taken: stored
        ended.append(sha256)
        real_commit(sha256, size)

    monkeypatch.setattr(server.files.store, "upload_ended", upload_ended)
    monkeypatch.setattr(server.files.store, "commit", commit)
    src = tmp_path / "oops.bin"
    sha = make_file(src, 300_000)
    proc = await asyncio.create_subprocess_exec(
        *CLI, "send", where(server), "--nick", "oopser", "--file", str(src),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=cli_env())
    await wait_until(lambda: server.files is not None and server.files.bytes_in > 0,
                     "the upload to begin", timeout=60)
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == ExitStatus.INTERRUPTED, err
    assert b"interrupted: the file was not shared" in err, err
    await wait_until(lambda: sha in ended, "the server to see the upload end", timeout=60)
    await asyncio.sleep(0.2)  # an offer would be published right after the commit
    assert server.files.store.room_offers("lobby") == []
    assert server.files.store.blob_size(sha) is None


async def test_an_empty_output_path_is_a_usage_error(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """``get ... -o ""`` (an unset variable: ``-o "$DEST"``): the empty path was the current
    directory, and the file was saved there without a word. It is a usage error, exit 2, one
    line, as ``send --file ""`` is; nothing is downloaded."""
    server = await make_server()
    file_id = await _shared_small(server, tmp_path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for extra in ((), ("--json",)):
        proc = await asyncio.create_subprocess_exec(
            *CLI, "get", where(server), file_id, "--nick", "bob", "-o", "", *extra, cwd=cwd,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=cli_env())
        raw_out, raw_err = await asyncio.wait_for(proc.communicate(), 60)
        err = raw_err.decode()
        assert proc.returncode == ExitStatus.USAGE, err
        assert err == "error: -o needs a directory or a file name, not an empty path\n"
        if extra:
            assert json.loads(raw_out)["error"] == err.removeprefix("error: ").rstrip("\n")
        assert list(cwd.iterdir()) == []


async def test_a_download_whose_blob_is_gone_keeps_its_part_and_says_where(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """The file's offer stands but its blob is gone from the server's disk (removed by hand,
    a damaged disk): the chat connection announces the download, and the transfer
    connection answers ``no_such_file`` 'the file is no longer available'. That answer
    removed the part file an earlier, interrupted download had left, without a word. As when
    the chat connection says there is no such file, the part file is kept and the line says
    where it is."""
    server, sha, file_id, dl, part, held = await _shared_then_cut_off(make_server, tmp_path)
    assert server.files is not None
    os.unlink(server.files.store.blob_path(sha))  # the blob alone: the offer stays

    code, out, err = await run("get", where(server), file_id, "--nick", "bob", "-o", f"{dl}/",
                               "--json")
    assert code == ExitStatus.FILE_UNAVAILABLE, err
    assert part.stat().st_size == held
    assert json.loads(out)["error"] == err.removeprefix("error: ").rstrip("\n")
    assert err == ("error: the file is no longer available "
                   f"({part} holds the {human_size(held)} an interrupted download of it "
                   "received: kept in case only the nickname was not the addressee's; delete "
                   "it if the file is gone)\n")


async def test_a_file_to_nobody_online_is_refused_as_a_message_to_nobody_is(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """``send --to nobody hi`` exits 1 with ``no user named 'nobody' is online``; ``send
    --file small.txt --to nobody`` exited 20 (no such file? the file was fine) with the
    server's ``no user named nobody is online``. Both are a refusal by the server of the
    addressee: the same line, the same exit status, --json alike."""
    server = await make_server()
    src = tmp_path / "small.txt"
    make_file(src, 100)
    said = "error: no user named 'nobody' is online\n"
    for what in (("hi",), ("--file", str(src))):
        code, _, err = await run("send", where(server), "--nick", "alice", "--to", "nobody",
                                 *what)
        assert (code, err) == (ExitStatus.ERROR, said), what
        code, out, err = await run("send", where(server), "--nick", "alice", "--to", "nobody",
                                   "--json", *what)
        assert (code, err) == (ExitStatus.ERROR, said), what
        result = json.loads(out)
        assert (result["error"], result["exit_code"]) == (said[7:-1], ExitStatus.ERROR), what
