"""Files in the chat UI: the pure state and router first, then Textual's Pilot driving the real
app against a real server on loopback, with real files."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Label

from richchat.core.client import Address
from richchat.core.protocol import frames as f
from richchat.core.server import ChatServer
from richchat.core.sharing import share_file
from richchat.core.tui import ChatApp, commands, render
from richchat.core.tui import state as st
from richchat.core.tui.widgets import FilesScreen
from tests.client.servers import next_frame, registered
from tests.server.conftest import ServerFactory, make_server
from tests.tui.test_app import SIZE, plain, type_line, until
from tests.tui.test_state import NOW, T, private, state

__all__ = ["make_server"]

SHA = "ab" * 32


def offer(id: str, target: str = "lobby", sender: str = "bob", name: str = "notes.txt",
          size: int = 1234) -> f.FileOffer:
    return f.FileOffer(id=id, ts=T, target=target, sender=sender, size=size, sha256=SHA,
                       name=name)


# ----------------------------------------------------------------------------- pure


def test_offers_are_numbered_once_and_shown_in_their_conversation() -> None:
    s = state(file_max=1000)
    s, changes = st.apply(s, offer("aaaaaaaa"), NOW)
    assert any(isinstance(c, st.LineAdded) for c in changes)
    s, _ = st.apply(s, offer("bbbbbbbb", target="@alice", name="secret.txt"), NOW)
    s, _ = st.apply(s, offer("aaaaaaaa"), NOW)  # the same offer again: not numbered again
    assert [(x.number, x.id, x.key) for x in s.files] == [
        (1, "aaaaaaaa", "lobby"), (2, "bbbbbbbb", "@bob")]
    line = s.conversations["lobby"].lines[0]
    assert line.kind == "file" and line.file is not None and line.file.number == 1
    text = render.chat_line(line, lambda ts: "10:00").plain
    assert text == "10:00 [1] bob shared notes.txt (1.2 kB, sha256 abababababab)  /get 1"
    private_line = s.conversations["@bob"].lines[0]
    assert private_line.mention and s.conversations["@bob"].unread == 1  # for us: counted
    assert s.file("2") == s.file("bbbbbbbb") == s.files[1] and s.file("3") is None
    # a listing numbers what it did not know, as lines in the conversation on screen
    s, _ = st.apply(s, f.FileInfo(id="cccccccc", ts=T, target="lobby", sender="carol", size=5,
                                  sha256=SHA, name="old.txt"), NOW)
    s, _ = st.apply(s, f.FileList(target="lobby", count=2), NOW)
    assert s.files[-1].number == 3
    assert [ln.text for ln in s.current.lines[-2:]] == [
        "old.txt", "2 file(s) shared in #lobby; /get N downloads one"]


def test_the_router_turns_file_commands_into_jobs() -> None:
    s = state(file_max=1000)
    s, _ = st.apply(s, offer("aaaaaaaa"), NOW)
    out = commands.submit(s, "/get 1", NOW, max_bytes=100)
    assert out.send == f.GetFile(id="aaaaaaaa") and isinstance(out.job, commands.GetJob)
    out = commands.submit(s, "/get AAAAAAAA", NOW, max_bytes=100)
    assert out.send == f.GetFile(id="aaaaaaaa")
    out = commands.submit(s, '/share "~/My Report.pdf"', NOW, max_bytes=100)
    assert out.job == commands.ShareJob("~/My Report.pdf", "lobby") and out.send is None
    bob = state(private("Bob", members=("alice", "Bob")), active="@bob", file_max=1000)
    assert commands.submit(bob, "/share x", NOW, max_bytes=100).job == commands.ShareJob(
        "x", "@Bob")
    assert commands.submit(bob, "/files", NOW, max_bytes=100).send == f.ListFiles(
        target="@Bob")
    for line, error in (("/get 7", "No file [7]"), ("/share", "Usage: /share"),
                        ("/get", "Usage: /get"), ("/get ../x", "neither")):
        out = commands.submit(s, line, NOW, max_bytes=100)
        assert out.send is None and out.job is None and error in out.state.current.lines[-1].text
    no_files = state()  # a server without files= in its HELLO
    out = commands.submit(no_files, "/share x", NOW, max_bytes=100)
    assert out.job is None and out.state.current.lines[-1].text == commands.NO_FILE_SHARING


# ----------------------------------------------------------------------------- Pilot


def make_file(path: Path, size: int, seed: int = 0) -> str:
    data = hashlib.shake_256(f"{seed}".encode()).digest(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


async def paste_line(pilot: Pilot[None], app: ChatApp, text: str) -> None:
    """A long line (a path) put in the input at once, then Enter: typing it key by key costs
    about 0.1 s a key under Pilot."""
    app.input.value = text
    await pilot.press("enter")


def make_app(server: ChatServer, downloads: Path, nick: str = "alice") -> ChatApp:
    return ChatApp(Address("127.0.0.1", server.port), nick, reconnect_base=0.1,
                   reconnect_cap=0.5, download_dir=downloads)


async def test_share_from_the_chat_ui(make_server: ServerFactory, tmp_path: Path) -> None:
    server = await make_server()
    bob = await registered(server.port, "bob")
    src = tmp_path / "report.pdf"
    sha = make_file(src, 300_000)
    app = make_app(server, tmp_path / "dl")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice" and app.chat.file_max is not None,
                    "registration")
        await paste_line(pilot, app, f"/share {src}")
        got = await next_frame(bob, f.FileOffer)
        assert isinstance(got, f.FileOffer)
        assert (got.sender, got.target, got.name, got.sha256) == ("alice", "lobby",
                                                                  "report.pdf", sha)
        await until(pilot, lambda: any("[1] you shared report.pdf" in s
                                       for s in plain(app, "lobby")), "the offer line")
        await until(pilot, lambda: any("the server verified it" in s
                                       for s in plain(app, "lobby")), "the upload's end")
        assert (server.config.data_dir / "files" / sha).read_bytes() == src.read_bytes()
        # privately, from the conversation with bob
        await type_line(pilot, "/msg bob here it comes")
        await until(pilot, lambda: app.chat.active == "@bob", "the private conversation")
        await paste_line(pilot, app, f"/share {src}")
        got = await next_frame(bob, f.FileOffer)
        assert isinstance(got, f.FileOffer) and got.target == "@bob"
        # too large for the server: refused before a byte (the server's limit from HELLO)
        app.chat = replace(app.chat, file_max=10)
        before = server.files.bytes_in  # type: ignore[union-attr]
        await paste_line(pilot, app, f"/share {src}")
        await until(pilot, lambda: any("Not shared: report.pdf" in s
                                       for s in plain(app, "@bob")), "the refusal")
        assert server.files.bytes_in == before  # type: ignore[union-attr]
    await bob.close()


async def test_get_from_the_chat_ui(make_server: ServerFactory, tmp_path: Path) -> None:
    server = await make_server()
    src = tmp_path / "notes.txt"
    sha = make_file(src, 50_000)
    dl = tmp_path / "dl"
    app = make_app(server, dl)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await share_file(Address("127.0.0.1", server.port), "bob", src)
        await until(pilot, lambda: any("[1] bob shared notes.txt" in s
                                       for s in plain(app, "lobby")), "the offer")
        await type_line(pilot, "/get 1")
        await until(pilot, lambda: (dl / "notes.txt").exists(), "the download")
        await until(pilot, lambda: any(s.endswith("sha256 verified).")
                                       for s in plain(app, "lobby")), "the saved line")
        assert hashlib.sha256((dl / "notes.txt").read_bytes()).hexdigest() == sha
        # F4: pick it from the list, Enter downloads it again, beside the first
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, FilesScreen), "the files list")
        await pilot.press("enter")
        await until(pilot, lambda: (dl / "notes (1).txt").exists(), "the second download")
        assert app.input.has_focus
        await type_line(pilot, "/files")
        await until(pilot, lambda: any("1 file(s) shared in #lobby" in s
                                       for s in plain(app, "lobby")), "the listing")
        await type_line(pilot, "/get 9")
        assert "No file [9]" in plain(app, "lobby")[-1]
    assert sorted(p.name for p in dl.iterdir()) == ["notes (1).txt", "notes.txt"]


async def test_a_server_without_file_sharing_says_so(make_server: ServerFactory,
                                                      tmp_path: Path) -> None:
    """On a server started with --no-files, F4 said "No files known here yet" (as if some
    might come); /share said "does not share files". Both now say the server does not
    offer file sharing, and nothing is sent."""
    server = await make_server(files=False)
    src = tmp_path / "notes.txt"
    make_file(src, 100)
    app = make_app(server, tmp_path / "dl")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        assert app.chat.file_max is None  # the HELLO offered no files=
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, FilesScreen), "the files list")
        text = " ".join(str(label.render()) for label in app.screen.query(Label))
        assert "does not offer file sharing" in text and "No files known" not in text
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, FilesScreen), "the list closed")
        await paste_line(pilot, app, f"/share {src}")
        await until(pilot, lambda: any("does not offer file sharing" in s
                                       for s in plain(app, "lobby")), "the refusal")
    assert not (server.config.data_dir / "files").exists() or not any(
        (server.config.data_dir / "files").iterdir())


async def test_a_transfer_never_blocks_typing(make_server: ServerFactory,
                                              tmp_path: Path) -> None:
    """While a slow download runs (the server's speed limit), lines typed are sent at once."""
    src = tmp_path / "slow.bin"
    make_file(src, 2_000_000)
    fast = await make_server()
    shared = await share_file(Address("127.0.0.1", fast.port), "bob", src)
    await fast.stop()
    # the same data directory; 10 s to fetch: the echo of a typed line comes long before the
    # end, even on a loaded machine (at 1 MB/s, 3 s, it did not always)
    server = await make_server(file_rate=200_000)
    bob = await registered(server.port, "bob")
    dl = tmp_path / "dl"
    app = make_app(server, dl)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await type_line(pilot, "/files")
        await until(pilot, lambda: app.chat.file(shared.id) is not None, "the listing")
        await type_line(pilot, f"/get {shared.id}")
        await until(pilot, lambda: bool(app._progress), "the download to start")
        await until(pilot, lambda: app.transfer_bar.has_class("-busy"), "the progress bar")
        await type_line(pilot, "still typing")
        got = await next_frame(bob, f.RoomMessage)
        assert isinstance(got, f.RoomMessage) and got.text == "still typing"
        assert app._progress, "the download ended before the message went: nothing shown"
        assert "slow.bin" in str(app.transfer_bar.render())
        await until(pilot, lambda: (dl / "slow.bin").exists(), "the download", timeout=90)
        await until(pilot, lambda: not app.transfer_bar.has_class("-busy"), "the bar to go")
    await bob.close()
    await asyncio.sleep(0)


async def test_a_small_window_keeps_following_the_chat_through_a_download(
        make_server: ServerFactory, tmp_path: Path) -> None:
    """40x10: the transfer bar takes two of the chat's three rows while a download runs, so
    the end of the chat moved below a view that had not moved; the chat then stopped
    following new lines ('1 new below') although the user never scrolled up."""
    server = await make_server()
    src = tmp_path / "notes.txt"
    make_file(src, 50_000)
    bob = await registered(server.port, "bob")
    app = make_app(server, tmp_path / "dl")
    async with app.run_test(size=(40, 10)) as pilot:
        log = app.chat_log
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        for n in range(6):
            await bob.say(f"line {n} " + "word " * 12)
        await share_file(Address("127.0.0.1", server.port), "carl", src)
        await until(pilot, lambda: any("[1] carl shared notes.txt" in s
                                       for s in plain(app, "lobby")), "the offer")
        await until(pilot, lambda: log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y,
                    "the view at the end")
        await type_line(pilot, "/get 1")
        await until(pilot, lambda: any(s.endswith("sha256 verified).")
                                       for s in plain(app, "lobby")), "the saved line")
        await bob.say("after the download")
        await until(pilot, lambda: any("after the download" in s
                                       for s in plain(app, "lobby")), "the next line")
        await until(pilot, lambda: log.scroll_y == log.max_scroll_y, "the view at the end")
        assert app.new_below == 0
        assert "after the download" in "".join(strip.text for strip in log.lines[-3:])
    await bob.close()


async def test_get_twice_while_the_download_runs(make_server: ServerFactory,
                                                 tmp_path: Path) -> None:
    """/get N twice: the second said 'Download of X failed (/get it again to resume): cannot
    name the download: No such file or directory' once the first had finished, and took the
    first download's progress line away when it ended."""
    src = tmp_path / "slow.bin"
    make_file(src, 3_000_000)
    fast = await make_server()
    shared = await share_file(Address("127.0.0.1", fast.port), "bob", src)
    await fast.stop()
    # the same data directory, 6 s to fetch: the second /get comes while the first runs
    server = await make_server(file_rate=500_000)
    dl = tmp_path / "dl"
    app = make_app(server, dl)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await type_line(pilot, "/files")
        await until(pilot, lambda: app.chat.file(shared.id) is not None, "the listing")
        await paste_line(pilot, app, f"/get {shared.id}")
        await until(pilot, lambda: bool(app._progress), "the download to start")
        await paste_line(pilot, app, f"/get {shared.id}")  # at once (typing costs 0.1 s a key)
        await until(pilot, lambda: any("slow.bin is already being downloaded" in s
                                       for s in plain(app, "lobby")), "the second /get's note")
        assert app._progress, "the first download's progress line is gone"
        await until(pilot, lambda: (dl / "slow.bin").exists(), "the download", timeout=30)
        await until(pilot, lambda: not app._progress, "the download's end")
        assert not any("failed" in s for s in plain(app, "lobby"))
    assert sorted(p.name for p in dl.iterdir()) == ["slow.bin"]
    assert hashlib.sha256((dl / "slow.bin").read_bytes()).hexdigest() == shared.sha256


async def test_an_empty_file_is_shared_as_one_from_the_chat_ui_and_send(
    make_server: ServerFactory, tmp_path: Path,
) -> None:
    """A 0-byte file is a file the server stores and serves (recipients get 0 bytes): /share
    and send --file share it and both say it is empty; neither says the server "had it
    already" (send said so, the message of a deduplicated upload, as 0 bytes were sent)."""
    import json
    import subprocess
    import sys

    from tests.client.servers import cli_env

    server = await make_server()
    bob = await registered(server.port, "bob")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    sha = hashlib.sha256(b"").hexdigest()
    app = make_app(server, tmp_path / "dl")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice" and app.chat.file_max is not None,
                    "registration")
        await paste_line(pilot, app, f"/share {empty}")
        got = await next_frame(bob, f.FileOffer)
        assert isinstance(got, f.FileOffer)
        assert (got.sender, got.name, got.size, got.sha256) == ("alice", "empty.txt", 0, sha)
        await until(pilot, lambda: any("the server verified it" in s
                                       for s in plain(app, "lobby")), "the upload's end")
        lines = plain(app, "lobby")
        assert any("Sharing empty.txt (an empty file) with" in s for s in lines), lines
        assert not any("already" in s for s in lines), lines
    assert (server.config.data_dir / "files" / sha).read_bytes() == b""

    cli = [sys.executable, "-m", "richchat", "send", f"127.0.0.1:{server.port}", "--nick",
           "carol", "--file", str(empty)]
    for extra in ([], ["--json"]):
        proc = await asyncio.create_subprocess_exec(
            *cli, *extra, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=cli_env())
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err
        offer = await next_frame(bob, f.FileOffer)
        assert isinstance(offer, f.FileOffer) and (offer.sender, offer.size) == ("carol", 0)
        if extra:
            result = json.loads(out)
            # the server held these (no) bytes already: shared by alice above
            assert (result["size"], result["sent"], result["held"]) == (0, 0, True)
        else:
            assert err.decode().startswith(
                f"shared empty.txt (0 B, sha256 {sha[:12]}) in lobby as carol (an empty file): "
                f"file {offer.id}\n"), err
            assert "already" not in err.decode()
    await bob.close()


async def test_get_with_a_number_int_refuses_is_one_line_not_a_crash(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    """Found by the fifth exploratory pass: ``/get ²`` (a digit to str.isdigit, not to int)
    and ``/get`` with 5,000 digits (over int()'s 4,300) raised ValueError out of the input
    handler, and the chat UI died with a traceback."""
    server = await make_server()
    app = make_app(server, tmp_path / "dl")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        for line, says in (("/get \u00b2", "No file [\u00b2] here"),
                           ("/get " + "9" * 5000, "No file [999999999999...] here")):
            before = len(plain(app, "lobby"))
            await paste_line(pilot, app, line)
            await until(pilot, lambda n=before: len(plain(app, "lobby")) > n, "the answer")
            said = plain(app, "lobby")[before:]
            assert len(said) == 1 and says in said[0], said
            assert app.is_running and app.input.value == line


async def test_share_waits_while_another_upload_of_the_same_bytes_runs(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    """``/share`` of a file whose bytes another client is uploading at that moment (the same
    build shared twice): the server answers the second upload ``busy``. The chat UI said
    "Upload of X failed (/share it again to resume)" at once, as send --file gave up after
    four tries (fixed there in the sixth exploratory pass); now it waits for the other
    upload, as send does, and then shares the copy the server holds."""
    from tests.linechat import HeldUpload

    server = await make_server()
    bob = await registered(server.port, "bob")
    src = tmp_path / "build.tar.gz"
    sha = make_file(src, 200_000)
    # the first upload, by another client: under way, and held there (a slow link)
    first = await HeldUpload.start(server.port, src.read_bytes(), sha, "build.tar.gz")
    app = make_app(server, tmp_path / "dl")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.chat.nick == "alice"
                        and app.chat.file_max is not None, "registration")
            await paste_line(pilot, app, f"/share {src}")
            await until(pilot, lambda: any("another upload of the same bytes is under way"
                                           in s for s in plain(app, "lobby")), "the wait")
            await first.finish()  # the first upload ends
            await until(pilot, lambda: any("you shared build.tar.gz" in s
                                           for s in plain(app, "lobby")), "alice's offer")
            assert not any("failed" in s for s in plain(app, "lobby")), plain(app, "lobby")
        offers = []
        while len(offers) < 2:  # ci1's and alice's offers of the one stored file
            got = await next_frame(bob, f.FileOffer)
            assert isinstance(got, f.FileOffer)
            offers.append((got.sender, got.sha256))
        assert sorted(offers) == [("alice", sha), ("ci1", sha)]
    finally:
        await first.close()
        await bob.close()


async def test_a_resumed_download_shows_the_rate_of_its_own_bytes(
        make_server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A download resumed at 90% showed a rate counting the 90% held already as if received
    in its first moment (``done / elapsed``): 9 times the real rate, where ``get`` shows the
    rate of the bytes moved since it started. A clock that steps 1 s per reading makes the
    rate exact: never more than the bytes received this run per second."""
    from richchat.core.tui import app as app_module

    clock = iter(range(1, 1_000_000))
    monkeypatch.setattr(app_module, "time", SimpleNamespace(
        monotonic=lambda: float(next(clock)), time=time.time))
    rates: list[float] = []
    line = render.transfer_line

    def recorded(direction: str, name: str, done: int, total: int,
                 rate: float | None) -> Text:
        if rate is not None:
            rates.append(rate)
        return line(direction, name, done, total, rate)

    monkeypatch.setattr(render, "transfer_line", recorded)
    server = await make_server()
    src = tmp_path / "big.bin"
    size, held = 1_000_000, 900_000
    sha = make_file(src, size)
    dl = tmp_path / "dl"
    app = make_app(server, dl)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        shared = await share_file(Address("127.0.0.1", server.port), "bob", src)
        await until(pilot, lambda: app.chat.file("1") is not None, "the offer")
        dl.mkdir()  # what an interrupted download left: its first 900 kB
        (dl / f".richchat-{shared.id}.part").write_bytes(src.read_bytes()[:held])
        await type_line(pilot, "/get 1")
        await until(pilot, lambda: any(s.endswith("resumed at 900 kB).")
                                       for s in plain(app, "lobby")), "the saved line")
    assert hashlib.sha256((dl / "big.bin").read_bytes()).hexdigest() == sha
    assert rates, "no rate was shown"
    assert max(rates) <= size - held, rates
