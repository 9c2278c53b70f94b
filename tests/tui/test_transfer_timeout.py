"""The chat UI's file transfers wait as long as ``join --timeout`` says (eighth exploratory
pass): a download from a frozen server (``kill -STOP``) failed after 10 s, the transfers'
default, whatever ``--timeout`` the chat was given."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from richchat.core.client import Address
from richchat.core.sharing import share_file
from richchat.core.tui import ChatApp
from tests.commands.test_files_cli import make_file
from tests.serverproc import ServerProc
from tests.tui.test_app import SIZE, plain, type_line, until


async def test_a_download_from_a_frozen_server_fails_after_the_timeout(tmp_path: Path) -> None:
    src = tmp_path / "slow.bin"
    make_file(src, 2_000_000)
    server = ServerProc(tmp_path / "data")
    try:
        shared = await share_file(Address("127.0.0.1", server.port), "bob", src)
    finally:
        server.stop()
    server = ServerProc(tmp_path / "data", "--file-rate", "200K")
    try:
        app = ChatApp(Address("127.0.0.1", server.port), "alice", timeout=2.0,
                      reconnect_base=0.1, reconnect_cap=0.5, download_dir=tmp_path / "dl")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.chat.nick == "alice", "registration")
            await type_line(pilot, "/files")
            await until(pilot, lambda: app.chat.file(shared.id) is not None, "the listing")
            await type_line(pilot, f"/get {shared.id}")
            await until(pilot, lambda: (tmp_path / "dl").is_dir() and any(
                p.stat().st_size > 0 for p in (tmp_path / "dl").iterdir()), "the download")
            os.kill(server.pid, signal.SIGSTOP)
            try:
                await until(pilot, lambda: any("Download of slow.bin failed" in line
                                               for line in plain(app, "lobby")),
                            "the failure", timeout=60)
            finally:
                os.kill(server.pid, signal.SIGCONT)
            failure = [line for line in plain(app, "lobby") if "Download of" in line]
            assert "for 2 s" in failure[0], failure
    finally:
        server.stop()
