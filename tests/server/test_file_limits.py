"""The file-sharing limits of docs/security.md, on a real server on loopback: a transfer
token's lifetime, how many files ``CMD_FILES`` lists, how long a kept file name may be."""

from __future__ import annotations

import time
from pathlib import Path

from richchat.core.client import ChatClient
from richchat.core.protocol import frames as f
from richchat.core.sharing import share_file
from tests.client.servers import next_frame, registered
from tests.conditions import wait_until
from tests.server.conftest import ServerFactory
from tests.server.test_files import addr, make_file, transfer_line


async def _download_token(port: int, nick: str, file_id: str) -> tuple[str, float]:
    """A download token for ``file_id`` and the (monotonic) time it was received: it was
    issued before that, so it expires before that time plus the server's ttl."""
    client = await registered(port, nick)
    await client.get(file_id)
    ready = await next_frame(client, f.DownloadReady)
    received = time.monotonic()
    assert isinstance(ready, f.DownloadReady)
    await client.close()
    return ready.token, received


async def _listing(client: ChatClient, count: int | None = None) -> list[f.FileInfo]:
    """The FILEINFO lines of one CMD_FILES answer (its FILES count checked against them)."""
    infos: list[f.FileInfo] = []
    while True:
        frame = await next_frame(client, (f.FileInfo, f.FileList))
        if isinstance(frame, f.FileList):
            assert frame.count == len(infos)
            assert count is None or frame.count == count
            return infos
        assert isinstance(frame, f.FileInfo)
        infos.append(frame)


async def test_a_transfer_token_expires(make_server: ServerFactory, tmp_path: Path) -> None:
    """A token used after ``transfer_token_ttl`` is refused; the same wait with the default
    (5 minutes) is not: the difference is the ttl."""
    ttl = 0.5
    short = await make_server(transfer_token_ttl=ttl, data_dir=tmp_path / "short")
    usual = await make_server(data_dir=tmp_path / "usual")
    src = tmp_path / "a.txt"
    make_file(src, 100)
    short_file = await share_file(addr(short), "alice", src)
    usual_file = await share_file(addr(usual), "alice", src)
    short_token, t_short = await _download_token(short.port, "bob", short_file.id)
    usual_token, t_usual = await _download_token(usual.port, "bob", usual_file.id)
    await wait_until(lambda: time.monotonic() > max(t_short, t_usual) + ttl + 0.1,
                     "the short token's lifetime to pass")
    expired = await transfer_line(short.port, f"XFER|1|GET|{short_token}|0")
    assert expired[0].startswith("XERR|bad_token|"), expired[0]
    kept = await transfer_line(usual.port, f"XFER|1|GET|{usual_token}|0")
    assert kept[0] == f"XOK|0|100|{usual_file.sha256}|a.txt"


async def test_cmd_files_lists_the_newest_100(make_server: ServerFactory,
                                              tmp_path: Path) -> None:
    """105 offers in a room (the same bytes, uploaded once, shared again under other names:
    no upload each time); ``CMD_FILES`` answers the newest 100, oldest first."""
    server = await make_server(flood_rate=0)  # 105 lines at once: no flood control
    src = tmp_path / "f.txt"
    make_file(src, 10)
    first = await share_file(addr(server), "alice", src)  # the bytes, once
    total = 105
    alice = await registered(server.port, "alice2")
    for i in range(1, total):
        await alice.share("lobby", first.size, first.sha256, f"f{i:03}.txt")
    for i in range(1, total):
        offer = await next_frame(alice, f.FileOffer)
        assert isinstance(offer, f.FileOffer) and offer.name == f"f{i:03}.txt"
    await alice.list_files("lobby")
    infos = await _listing(alice, count=100)
    assert [i.name for i in infos] == [f"f{i:03}.txt" for i in range(total - 100, total)]
    await alice.close()


async def test_the_server_keeps_255_characters_of_a_file_name(make_server: ServerFactory,
                                                              tmp_path: Path) -> None:
    """A 1,000-character name (CMD_SHARE takes up to 1,024) is kept as its first characters
    and its extension, 255 in all: in the FILE offer and in the listing."""
    server = await make_server()
    src = tmp_path / "short.txt"
    make_file(src, 50)
    first = await share_file(addr(server), "alice", src)
    bob = await registered(server.port, "bob")
    long_name = "".join(chr(ord("a") + i % 26) for i in range(996)) + ".txt"
    assert len(long_name) == 1000
    await bob.share("lobby", first.size, first.sha256, long_name)
    offer = await next_frame(bob, f.FileOffer)
    assert isinstance(offer, f.FileOffer) and offer.sender == "bob"
    assert len(offer.name) == 255
    assert offer.name == long_name[:251] + ".txt"
    await bob.list_files("lobby")
    assert [(i.id, i.name) for i in await _listing(bob)] == [
        (first.id, "short.txt"), (offer.id, offer.name)]
    await bob.close()
