"""The chat UI's ``/get`` of a file that expired on the server after an interrupted download
of it (#16): the server's 'no file ID (files expire ...)' was shown, and the part file the
interrupted download left stayed in the download directory for good, unmentioned. A line
now says where it is (kept: a private file asked for under another nickname gets the same
answer, and resumes under the right one). A real server in this test's event loop; the interrupted download is a
real ``richchat get``, killed halfway."""

from __future__ import annotations

from pathlib import Path

from richchat.core.client import Address
from richchat.core.protocol.filenames import human_size
from richchat.core.sharing import share_file
from tests.commands.test_files_cli import make_file
from tests.commands.test_files_odd import interrupted_get
from tests.server.conftest import ServerFactory, make_server
from tests.tui.test_app import SIZE, plain, type_line, until
from tests.tui.test_files_ui import make_app

__all__ = ["make_server"]


async def test_get_of_an_expired_file_says_where_the_part_file_left_is(
        make_server: ServerFactory, tmp_path: Path) -> None:
    server = await make_server(file_rate=1_000_000)
    assert server.files is not None
    src = tmp_path / "notes.bin"
    sha = make_file(src, 3_000_000)
    dl = tmp_path / "dl"
    app = make_app(server, dl)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        shared = await share_file(Address("127.0.0.1", server.port), "bob", src)
        await until(pilot, lambda: any("[1] bob shared notes.bin" in s
                                       for s in plain(app, "lobby")), "the offer")
        # an earlier download into the same directory, killed halfway
        part, held = await interrupted_get(f"127.0.0.1:{server.port}", shared.id, "carol", dl)
        server.files.store.delete_blob(sha)  # expired (what the retention sweep does)

        await type_line(pilot, "/get 1")
        said = (f"File {shared.id} is not on the server: {part} holds the "
                f"{human_size(held)} an interrupted download of it received: kept in case "
                "only the nickname was not the addressee's; delete it if the file is gone.")
        await until(pilot, lambda: any(said in s for s in plain(app, "lobby")),
                    "the line saying where the part file is")
        assert any(f"no file {shared.id}" in s for s in plain(app, "lobby"))
        assert part.stat().st_size == held
