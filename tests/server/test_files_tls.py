"""Transfers over TLS: the server's listener gets ``ssl=`` (as the TLS work does: the same
Connection class behind it, the same hub), the client an opener with ``ssl=``. The chat
connection and the transfer connections go through TLS alike; the transfer's first line is
detected in the decrypted stream, the server sends with asyncio's TLS sendfile path, and the
client receives into its buffers through the TLS layer. Real sockets, a real certificate."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from richchat.core.client import Address
from richchat.core.server import ChatServer
from richchat.core.server.connection import Connection
from richchat.core.sharing import fetch_file, share_file
from richchat.core.transfer import DownloadDir
from tests.server.conftest import ServerFactory

cryptography = pytest.importorskip("cryptography")


def self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "richchat-test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
async def tls_port(make_server: ServerFactory, tmp_path: Path) -> AsyncIterator[
        tuple[ChatServer, int]]:
    server = await make_server()
    assert server.hub is not None
    hub = server.hub
    cert, key = self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: Connection(hub), "127.0.0.1", 0, ssl=ctx)
    yield server, listener.sockets[0].getsockname()[1]
    listener.close()


async def tls_opener(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a test certificate (pinning is the TLS work's)
    return await asyncio.open_connection(host, port, ssl=ctx, limit=2**20)


async def test_share_and_fetch_over_tls(tls_port: tuple[ChatServer, int],
                                        tmp_path: Path) -> None:
    server, port = tls_port
    src = tmp_path / "secret.bin"
    data = hashlib.shake_256(b"tls").digest(6_000_000)
    src.write_bytes(data)
    address = Address("127.0.0.1", port)
    shared = await share_file(address, "alice", src, opener=tls_opener)
    assert shared.sent == len(data)
    assert server.files is not None
    assert server.files.recent[-1].outcome == "stored"
    got = await fetch_file(address, shared.id, DownloadDir(tmp_path / "dl"), nick="bob",
                           opener=tls_opener)
    assert Path(got.path).read_bytes() == data
    assert server.files.recent[-1][-1] == "sent"

    # resumed over TLS too: a part file of the first 2 MB
    where = DownloadDir(tmp_path / "dl2")
    where.ensure()
    with open(where.part_path(shared.id), "wb") as fh:
        fh.write(data[:2_000_000])
    again = await fetch_file(address, shared.id, where, nick="bob", opener=tls_opener)
    assert (again.resumed_from, again.received) == (2_000_000, 4_000_000)
    assert Path(again.path).read_bytes() == data
