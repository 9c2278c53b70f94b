"""Transfers on a TLS server (``--tls``: the server's own TLS link in front of each
connection): the chat connection and the transfer connections go through TLS alike, opened
with the same trust policy (the key pinned on the chat connection is checked again on each
transfer connection). The transfer's first line is found in the decrypted stream; the server
sends the file through the TLS link; the client receives through its TLS layer. Real sockets,
the server's generated key."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from richchat.core.client import Address
from richchat.core.errors import KeyMismatchError
from richchat.core.sharing import fetch_file, share_file
from richchat.core.transfer import DownloadDir
from richchat.core.trust.connect import TrustPolicy
from richchat.core.trust.known import KnownServers
from tests.server.conftest import ServerFactory


async def test_share_fetch_and_resume_over_tls(make_server: ServerFactory,
                                               tmp_path: Path) -> None:
    server = await make_server(tls=True)
    assert server.tls is not None and server.files is not None
    known = KnownServers(tmp_path / "known")
    trust = TrustPolicy(known, mode="tls", unknown="accept-new")
    src = tmp_path / "secret.bin"
    data = hashlib.shake_256(b"tls").digest(6_000_000)
    src.write_bytes(data)
    address = Address("127.0.0.1", server.port)
    shared = await share_file(address, "alice", src, trust=trust)
    assert shared.sent == len(data)
    assert server.files.recent[-1].outcome == "stored"
    pin = known.get("127.0.0.1", server.port)
    assert pin is not None and pin.fingerprint == server.tls.fingerprint

    got = await fetch_file(address, shared.id, DownloadDir(tmp_path / "dl"), nick="bob",
                           trust=trust)
    assert Path(got.path).read_bytes() == data
    assert server.files.recent[-1][-1] == "sent"

    # resumed over TLS too: a part file of the first 2 MB
    where = DownloadDir(tmp_path / "dl2")
    where.ensure()
    with open(where.part_path(shared.id), "wb") as fh:
        fh.write(data[:2_000_000])
    again = await fetch_file(address, shared.id, where, nick="bob", trust=trust)
    assert (again.resumed_from, again.received) == (2_000_000, 4_000_000)
    assert Path(again.path).read_bytes() == data


async def test_a_share_checks_the_pinned_key(make_server: ServerFactory, tmp_path: Path) -> None:
    server = await make_server(tls=True)
    known = KnownServers(tmp_path / "known")
    # pinned: some other key for this address (a man in the middle would present his own)
    known.add("127.0.0.1", server.port, "SHA256:" + "A" * 43)
    src = tmp_path / "f.txt"
    src.write_text("hello\n")
    with pytest.raises(KeyMismatchError):
        await share_file(Address("127.0.0.1", server.port), "alice", src,
                         trust=TrustPolicy(known, unknown="accept-new"))
    assert server.files is not None and not server.files.recent


async def test_an_upload_to_a_speed_limited_tls_server(make_server: ServerFactory,
                                                       tmp_path: Path) -> None:
    """Found by the exploratory pass of stop 28: `send --file` (and the chat UI's /share) to a
    TLS server with --file-rate died with "unexpected AssertionError" (exit 1), and now and
    then without the limit for a large file: the upload sent each chunk with loop.sendfile,
    whose fallback on a TLS transport swaps the connection's protocol for each call; a
    transport paused between two calls (the server reading slowly) then resumed a stream
    protocol that had never been paused (asyncio's assert). A TLS upload now writes the
    chunks itself, read off the event loop, waiting for the buffer to drain."""
    server = await make_server(tls=True, file_rate=30_000_000)
    known = KnownServers(tmp_path / "known")
    trust = TrustPolicy(known, mode="tls", unknown="accept-new")
    for n in range(2):  # each chunk ending with the transport paused was a chance
        src = tmp_path / f"limited{n}.bin"
        data = hashlib.shake_256(b"limited%d" % n).digest(40_000_000)
        src.write_bytes(data)
        shared = await share_file(Address("127.0.0.1", server.port), "alice", src,
                                  trust=trust)
        assert (shared.resumed_from, shared.sent) == (0, len(data))
        assert server.files is not None and server.files.recent[-1].outcome == "stored"
