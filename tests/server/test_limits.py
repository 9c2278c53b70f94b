"""Limits of the threat model (docs/security.md) that no other test pinned down: unused
transfer tokens per connection, transfer connections at once, a transfer connection's first
line, and who may read the data directory. Real server on 127.0.0.1, real sockets, real files."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from pathlib import Path

import pytest

from richchat.core.protocol.transfer import MAX_TRANSFER_LINE
from richchat.core.server.transfer import MAX_GRANTS_PER_PEER
from tests.conditions import wait_until
from tests.linechat import LineClient
from tests.server.conftest import ServerFactory

#: a well-formed token that the server never issued
UNKNOWN = b"n" * 32


async def test_a_connection_holds_at_most_8_unused_transfer_tokens(
        make_server: ServerFactory) -> None:
    """Each CMD_SHARE issues a token that waits up to 5 minutes for its transfer connection:
    one client asking again and again gets ERR|too_many_transfers after 8, and the others
    still get theirs."""
    server = await make_server()
    mallory = await LineClient.connect(server.port, hello="t", nick="mallory")
    for i in range(MAX_GRANTS_PER_PEER):
        sha = hashlib.sha256(b"%d" % i).hexdigest()
        mallory.send(f"CMD_SHARE|lobby|1|{sha}|f{i}.txt")
        answer = await mallory.expect(lambda l: l.startswith(("UPLOAD|", "ERR|")))
        assert answer.startswith(f"UPLOAD|{sha}|"), answer
    mallory.send(f"CMD_SHARE|lobby|1|{hashlib.sha256(b'x').hexdigest()}|one-more.txt")
    answer = await mallory.expect(lambda l: l.startswith(("UPLOAD|", "ERR|")))
    assert answer.startswith("ERR|too_many_transfers|"), answer
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    sha = hashlib.sha256(b"bob").hexdigest()
    bob.send(f"CMD_SHARE|lobby|3|{sha}|bob.txt")
    assert (await bob.expect(lambda l: l.startswith(("UPLOAD|", "ERR|")))).startswith("UPLOAD|")
    await mallory.close()
    await bob.close()


async def test_transfer_connections_beyond_the_cap_are_told_busy(
        make_server: ServerFactory) -> None:
    """A transfer connection holds a slot from its first bytes; one beyond max_transfers gets
    XERR|busy and is closed, and a slot is free again once a holder goes."""
    server = await make_server(max_transfers=1)
    assert server.files is not None
    holder_r, holder_w = await asyncio.open_connection("127.0.0.1", server.port)
    holder_w.write(b"XFER|1|PUT|")  # the first line, unfinished: it holds its slot
    await wait_until(lambda: len(server.files.active) == 1,  # type: ignore[union-attr]
                     "the first transfer connection to be taken over")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"XFER|1|PUT|" + UNKNOWN + b"\n")
    line = await asyncio.wait_for(reader.readline(), 10)
    assert line.startswith(b"XERR|busy|"), line
    assert await asyncio.wait_for(reader.read(), 10) == b""  # and closed
    writer.close()
    holder_w.write(UNKNOWN + b"\n")
    assert (await asyncio.wait_for(holder_r.readline(), 10)).startswith(b"XERR|bad_token|")
    holder_w.close()
    await wait_until(lambda: not server.files.active,  # type: ignore[union-attr]
                     "the slot to be free again")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"XFER|1|PUT|" + UNKNOWN + b"\n")
    assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"XERR|bad_token|")
    writer.close()


async def test_a_transfer_connections_first_line_is_bounded(make_server: ServerFactory) -> None:
    """A transfer connection that never ends its first line is not buffered for ever: past
    MAX_TRANSFER_LINE bytes it gets XERR|bad_request and is closed."""
    server = await make_server()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"XFER|1|PUT|" + b"a" * (MAX_TRANSFER_LINE + 10))  # no end of line
    line = await asyncio.wait_for(reader.readline(), 10)
    assert line.startswith(b"XERR|bad_request|the first line is too long"), line
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
async def test_a_new_data_directory_is_for_its_owner_only(make_server: ServerFactory,
                                                            tmp_path: Path) -> None:
    """The history (room messages), the file index (who shared what with whom, private
    files included) and the stored files live in the data directory: a data directory the
    server creates is readable by its user only (0700), whatever the umask."""
    old = os.umask(0o022)
    try:
        server = await make_server(data_dir=tmp_path / "fresh" / "data")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "fresh" / "data").stat().st_mode)
    assert mode == 0o700, oct(mode)
    # a directory the user made and chose stays as it is (it may be shared on purpose)
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    os.chmod(mine, 0o755)
    await server.stop()
    await make_server(data_dir=mine)
    assert stat.S_IMODE(mine.stat().st_mode) == 0o755
