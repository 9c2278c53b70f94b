"""Real listeners on loopback for the scanner tests: silent, SSH-like, HTTP, a chat server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from richchat.core.server import ChatServer, ServerConfig

SSH_BANNER = b"SSH-2.0-OpenSSH_9.2p1 richchat-test\r\n"


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A listener that accepts and says nothing (it reads and discards)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(1024):
                pass
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
async def ssh_port() -> AsyncIterator[int]:
    """A tiny server that greets like SSH does."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(SSH_BANNER)
        try:
            await writer.drain()
            await reader.read(1024)
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
def http_port(tmp_path: Path) -> Iterator[int]:
    """python's http.server on loopback, serving a page with a title."""
    (tmp_path / "index.html").write_text(
        "<html><head><title>Scanner &amp; test page</title></head><body>hi</body></html>"
    )
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections: bound (so nobody else takes it) but not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
async def chat_server(tmp_path: Path) -> AsyncIterator[ChatServer]:
    """The real richchat server, with one registered user (alice) connected."""
    server = ChatServer(
        ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path / "chat", beacon=False,
                     mdns=False, name="scan-lab")
    )
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"HELLO|1|richchat-test/0\nCMD_USER|alice\n")
    await writer.drain()
    while True:  # registered once the server says YOU|alice
        line = await asyncio.wait_for(reader.readline(), 10)
        assert line, "server closed the connection"
        if line.startswith(b"YOU|alice"):
            break
    try:
        yield server
    finally:
        writer.close()
        await server.stop()


@pytest.fixture
def ssh_port_thread() -> Iterator[int]:
    """An SSH-like greeter in a thread, for tests that run the CLI as a subprocess."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.sendall(SSH_BANNER)

    thread = threading.Thread(target=serve)
    thread.start()
    yield srv.getsockname()[1]
    stop.set()
    thread.join(5)
    srv.close()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    return cert_path, key_path


@pytest.fixture
def https_port(tmp_path: Path) -> Iterator[int]:
    """python's http.server behind TLS (self-signed) on loopback."""
    import ssl

    cert, key = _self_signed(tmp_path)
    (tmp_path / "index.html").write_text("<html><title>Secure page</title></html>")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)
