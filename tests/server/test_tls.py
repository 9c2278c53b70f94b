"""The TLS chat port: the generated key, handshakes bounded and counted against the cap, every
dialect over TLS, outside TLS clients (ncat --ssl, openssl s_client), and the plaintext port's
answer to a TLS client."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from richchat.core.client import ChatClient
from richchat.core.errors import ConnectionLostError
from richchat.core.protocol.codec import TLS_ALERT_PROTOCOL_VERSION
from richchat.core.server import ChatServer
from richchat.core.server.tls import CERT_FILE, KEY_FILE
from richchat.core.trust.connect import TrustPolicy
from richchat.core.trust.known import KnownServers
from tests.linechat import LineClient
from tests.server.conftest import ServerFactory
from tests.tlskit import client_context, need, openssl_fingerprint


def trust(tmp_path: Path) -> TrustPolicy:
    return TrustPolicy(KnownServers(tmp_path / "known"), unknown="accept-new")


async def tls_client(server: ChatServer, tmp_path: Path, nick: str) -> ChatClient:
    client = ChatClient("127.0.0.1", server.port, timeout=10, trust=trust(tmp_path))
    await client.connect()
    await client.register(nick)
    return client


def client_hello() -> bytes:
    """The first bytes a real TLS client sends."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


async def wait_for(condition: object, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- the key


async def test_generated_key_is_private_reused_and_survives_a_new_certificate(
        make_server: ServerFactory, tmp_path: Path) -> None:
    server = await make_server(tls=True)
    data = tmp_path / "data"
    assert server.tls is not None and server.tls.origin == "generated"
    fp = server.tls.fingerprint
    assert stat.S_IMODE((data / KEY_FILE).stat().st_mode) == 0o600
    assert openssl_fingerprint(data / CERT_FILE) == fp
    cert = x509.load_pem_x509_certificate((data / CERT_FILE).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    await server.stop()

    again = await make_server(tls=True)
    assert again.tls is not None and (again.tls.origin, again.tls.fingerprint) == ("loaded", fp)
    await again.stop()

    (data / CERT_FILE).unlink()  # lost certificate, key kept: issued again, same pin
    third = await make_server(tls=True)
    assert third.tls is not None and (third.tls.origin, third.tls.fingerprint) == ("reissued", fp)
    assert cert.serial_number != x509.load_pem_x509_certificate(
        (data / CERT_FILE).read_bytes()).serial_number


async def test_hello_carries_tls_and_the_fingerprint(make_server: ServerFactory,
                                                     tmp_path: Path) -> None:
    server = await make_server(tls=True)
    raw = await LineClient.connect(server.port, ssl=client_context(), hello="t")
    line = await raw.expect(lambda l: l.startswith("HELLO|"))
    assert f"|tls=1|fp={server.tls.fingerprint}|" in line  # type: ignore[union-attr]
    await raw.close()
    plain = await make_server(data_dir=tmp_path / "plain")
    raw = await LineClient.connect(plain.port, hello="t")
    line = await raw.expect(lambda l: l.startswith("HELLO|"))
    assert "|tls=0|" in line and "fp=" not in line
    await raw.close()


# --------------------------------------------------------------------------- handshakes


async def test_silent_connections_do_not_stop_a_new_client(make_server: ServerFactory,
                                                           tmp_path: Path) -> None:
    """200 silent TCP connections (handshakes never started) are open; a TLS client still
    connects and registers. Their handshake bound (60 s here) is far away: they are still
    open, counted, while it does."""
    server = await make_server(tls=True, tls_handshake_timeout=60)
    silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(200)]
    assert server.handshakes is not None
    await wait_for(lambda: server.handshakes.pending == 200)  # type: ignore[union-attr]
    client = await tls_client(server, tmp_path, "alice")
    assert client.nick == "alice"
    assert server.handshakes.pending == 200  # all still there, still counted
    await client.close()
    for _, writer in silent:
        writer.close()
    await wait_for(lambda: server.handshakes.pending == 0)  # type: ignore[union-attr]


async def test_silent_and_slow_handshakes_are_closed_after_the_bound(
        make_server: ServerFactory) -> None:
    server = await make_server(tls=True, tls_handshake_timeout=1.0)
    hello = client_hello()
    silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(20)]
    slow = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(5)]
    for _, writer in slow:
        writer.write(hello[:20])  # half a ClientHello, then nothing
    for reader, _ in silent + slow:  # every one is closed by the server (EOF or reset)
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), 15) == b""
    assert server.handshakes is not None
    await wait_for(lambda: server.handshakes.pending == 0)  # type: ignore[union-attr]
    assert server.handshakes.finished == 25
    for _, writer in silent + slow:
        writer.close()


async def test_unfinished_handshakes_count_against_the_cap(make_server: ServerFactory,
                                                           tmp_path: Path) -> None:
    server = await make_server(tls=True, max_clients=20, tls_handshake_timeout=2.0)
    silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(20)]
    assert server.handshakes is not None
    await wait_for(lambda: server.handshakes.pending == 20)  # type: ignore[union-attr]
    with pytest.raises(ConnectionLostError, match="during the TLS handshake"):
        await tls_client(server, tmp_path, "late")
    assert server.handshakes.refused >= 1
    # once the bound closed them, there is room again
    await wait_for(lambda: server.handshakes.pending == 0)  # type: ignore[union-attr]
    client = await tls_client(server, tmp_path, "late")
    assert client.nick == "late"
    await client.close()
    for _, writer in silent:
        writer.close()


# --------------------------------------------------------------------------- dialects


async def test_seed_hello_and_netcat_dialects_over_tls(make_server: ServerFactory,
                                                       tmp_path: Path) -> None:
    server = await make_server(tls=True)
    ctx = client_context()
    hello = await tls_client(server, tmp_path, "hal")
    seed = await LineClient.connect(server.port, ssl=ctx)
    seed.send("CMD_USER|sid")
    await seed.expect("SRV|sid joined")
    raw = await LineClient.connect(server.port, ssl=ctx)  # silent: a netcat user
    await raw.expect(lambda l: l.startswith("*** Type a nickname"))
    raw.send("nat")
    await raw.expect(lambda l: l.startswith("*** You are nat."))

    seed.send("MSG|from seed")
    await raw.expect("sid: from seed")
    raw.send("from netcat")
    await seed.expect("MSG|nat: from netcat")
    await hello.say("from hello")
    await seed.expect("MSG|hal: from hello")
    await raw.expect("hal: from hello")
    texts = []
    async for frame in hello:
        text = getattr(frame, "text", None)
        if text in ("from seed", "from netcat"):
            texts.append(text)
        if len(texts) == 2:
            break
    assert texts == ["from seed", "from netcat"]
    for c in (seed, raw):
        await c.close()
    await hello.close()


async def _ncat_ssl(port: int) -> asyncio.subprocess.Process:
    need("ncat")
    return await asyncio.create_subprocess_exec(
        "ncat", "--ssl", "127.0.0.1", str(port), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


async def _read_until(stream: asyncio.StreamReader, needle: bytes, timeout: float = 10) -> bytes:
    data = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while needle not in data:
        chunk = await asyncio.wait_for(stream.read(4096), max(0.01, deadline - loop.time()))
        assert chunk, f"EOF before {needle!r}; got {data[-300:]!r}"
        data += chunk
    return data


@pytest.mark.parametrize("tool", ["ncat", "openssl"])
async def test_outside_tls_clients_chat_with_richchat_clients(
        make_server: ServerFactory, tmp_path: Path, tool: str) -> None:
    server = await make_server(tls=True)
    if tool == "ncat":
        proc = await _ncat_ssl(server.port)
    else:
        need("openssl")
        proc = await asyncio.create_subprocess_exec(
            "openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{server.port}",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        await _read_until(proc.stdout, b"Type a nickname")
        proc.stdin.write(f"{tool}user\n".encode())
        await _read_until(proc.stdout, f"You are {tool}user".encode())
        alice = await tls_client(server, tmp_path, "alice")
        await alice.say("hello outside")
        await _read_until(proc.stdout, b"alice: hello outside")
        proc.stdin.write(b"hello richchat\n")
        async for frame in alice:
            if getattr(frame, "text", None) == "hello richchat":
                assert getattr(frame, "name", None) == f"{tool}user"
                break
        await alice.close()
    finally:
        proc.kill()
        await proc.wait()


async def test_plaintext_on_the_tls_port_is_told_to_use_tls(make_server: ServerFactory,
                                                           tmp_path: Path) -> None:
    """A netcat user's line (or a plaintext HELLO) on the TLS port was met by a silent
    close. Now the first byte, not a TLS record, gets one readable line saying how to
    connect, then the end of the connection; it counts as a failed handshake (bounds and
    cap accounting unchanged) and TLS clients are not affected."""
    server = await make_server(tls=True, tls_handshake_timeout=60)
    assert server.handshakes is not None
    expected = (f"*** This port speaks TLS only: connect with richchat join --tls "
                f"127.0.0.1:{server.port}, or ncat --ssl 127.0.0.1 {server.port}\n").encode()
    for first in (b"alice\n", b"HELLO|1|client|x\n", b"G"):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(first)
        assert await asyncio.wait_for(reader.read(), 10) == expected  # then EOF
        writer.close()
    await wait_for(lambda: server.handshakes.pending == 0)  # type: ignore[union-attr]
    assert (server.handshakes.finished, server.handshakes.failed) == (3, 3)
    client = await tls_client(server, tmp_path, "alice")
    assert client.nick == "alice"
    await client.close()


# --------------------------------------------------------------------------- plaintext port


async def test_plaintext_port_refuses_a_tls_client_at_once(make_server: ServerFactory) -> None:
    """The ClientHello is answered with a TLS alert and the connection closed: no raw session,
    no nickname prompt, nothing of its bytes read as chat."""
    server = await make_server()
    watcher = await LineClient.connect(server.port, hello="t", nick="watcher")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(client_hello())
    assert await asyncio.wait_for(reader.read(), 5) == TLS_ALERT_PROTOCOL_VERSION
    writer.close()
    ctx = client_context()
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
        await asyncio.open_connection("127.0.0.1", server.port, ssl=ctx)
    await wait_for(lambda: len(server.hub.conns) == 1)  # type: ignore[union-attr]
    assert [c.name for c in server.hub.conns if c.name] == ["watcher"]  # type: ignore[union-attr]
    watcher.send("MSG|still here")
    await watcher.expect(lambda l: l.endswith("|watcher|still here"))
    assert not any("guest" in l or ("joined" in l and "watcher" not in l) for l in watcher.lines)
    await watcher.close()


async def test_a_burst_of_full_tls_records_arrives_whole(
        make_server: ServerFactory) -> None:
    """40 lines of 1,800 bytes written at once (72 KB: several full TLS records, more than
    one read of the TCP transport) are all relayed, intact and in order."""
    server = await make_server(tls=True, flood_rate=0)
    ctx = client_context()
    sender = await LineClient.connect(server.port, ssl=ctx, hello="t", nick="big")
    reader = await LineClient.connect(server.port, ssl=ctx, hello="t", nick="watch")
    lines = [f"{i:02d}" + chr(ord("a") + i % 26) * 1798 for i in range(40)]
    sender.send(b"".join(f"MSG|{text}\n".encode() for text in lines))
    got = []
    while len(got) < 40:
        line = await reader.expect(lambda l: l.startswith("RMSG|lobby|") and "|big|" in l)
        got.append(line.rsplit("|", 1)[1])
    assert got == lines
    for c in (sender, reader):
        await c.close()


class BioClient:
    """A TLS client over a blocking socket and memory BIOs: full control of what is sent
    (lines, then close_notify without closing the socket)."""

    def __init__(self, port: int) -> None:
        import socket

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = client_context().wrap_bio(self.incoming, self.outgoing)
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._pump()
        self._send()

    def _send(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _pump(self) -> bool:
        self._send()
        data = self.sock.recv(65536)
        if not data:
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    def write(self, data: bytes) -> None:
        self.obj.write(data)
        self._send()

    def close_notify(self) -> None:
        with contextlib.suppress(ssl.SSLWantReadError):
            self.obj.unwrap()
        self._send()

    def read_all(self) -> bytes:
        """Everything until the server ends the TLS session (close_notify) or the TCP one."""
        out = b""
        while True:
            try:
                chunk = self.obj.read(65536)
                if not chunk:
                    return out
                out += chunk
            except ssl.SSLWantReadError:
                if not self._pump():
                    with contextlib.suppress(ssl.SSLError):
                        out += self.obj.read(65536)
                    return out
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return out


async def test_lines_sent_before_close_notify_are_answered(make_server: ServerFactory) -> None:
    """Like ``printf ... | nc -N`` on plain TCP: a client that sends its lines and then its
    close_notify still gets every answer, then the server's close_notify."""
    server = await make_server(tls=True)

    def run() -> bytes:
        client = BioClient(server.port)
        client.write(b"HELLO|1|t\nCMD_USER|halfway\nMSG|one\nMSG|two\n")
        client.close_notify()
        return client.read_all()

    got = (await asyncio.to_thread(run)).decode()
    assert "YOU|halfway" in got
    assert got.index("|halfway|one") < got.index("|halfway|two")


async def test_key_updates_from_the_client_keep_the_session(make_server: ServerFactory) -> None:
    """TLS 1.3 KeyUpdate (openssl s_client's K: the server must update its keys too, and k)
    between chat lines: the session goes on in both directions."""
    need("openssl")
    server = await make_server(tls=True)
    proc = await asyncio.create_subprocess_exec(
        "openssl", "s_client", "-tls1_3", "-connect", f"127.0.0.1:{server.port}",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        await _read_until(proc.stdout, b"Type a nickname")
        proc.stdin.write(b"K\n")  # a KeyUpdate asking the server to update as well
        await _read_until(proc.stdout, b"KEYUPDATE")
        proc.stdin.write(b"updated\n")
        await _read_until(proc.stdout, b"You are updated")
        proc.stdin.write(b"k\n")
        await _read_until(proc.stdout, b"KEYUPDATE")
        proc.stdin.write(b"still here\n")
        await _read_until(proc.stdout, b"updated: still here")
    finally:
        proc.kill()
        await proc.wait()


async def test_stopping_closes_connections_still_in_their_handshake(
        make_server: ServerFactory) -> None:
    server = await make_server(tls=True, tls_handshake_timeout=600)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert server.handshakes is not None
    await wait_for(lambda: server.handshakes.pending == 1)  # type: ignore[union-attr]
    await server.stop()
    with contextlib.suppress(ConnectionResetError):
        assert await asyncio.wait_for(reader.read(), 10) == b""  # not 600 s later
    writer.close()


async def _small_window_tls_client(port: int) -> LineClient:
    """A TLS client ``slowpoke`` registered over a socket with a 4 KiB receive buffer (so it
    backs up soon once it stops reading)."""
    import socket

    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    raw.setblocking(False)
    slow = LineClient(*await asyncio.open_connection(sock=raw, limit=2**22, ssl=client_context(),
                                                     server_hostname=""))
    slow.send("HELLO|1|t")
    slow.send("CMD_USER|slowpoke")
    await slow.expect(lambda l: l.startswith("YOU|"))
    return slow


async def test_backed_up_tls_reader_gets_everything_in_order(make_server: ServerFactory) -> None:
    """The link writes straight to the socket only while the TCP transport holds nothing:
    a reader that stops reading gets every message, in order, once it reads again, and
    direct writes resume after the backlog drained."""

    from richchat.core.server.tls_link import TlsLink

    server = await make_server(tls=True, output_limit=16 * 1024 * 1024, flood_rate=0)
    slow = await _small_window_tls_client(server.port)
    (conn,) = [c for c in server.hub.conns if c.name == "slowpoke"]  # type: ignore[union-attr]
    link = conn.transport
    assert isinstance(link, TlsLink) and link._fd >= 0  # nothing buffered: direct writes
    slow.writer.transport.pause_reading()  # type: ignore[attr-defined]
    sender = await LineClient.connect(server.port, ssl=client_context(), hello="t",
                                      nick="sender")
    payload = "z" * 1890
    count = 2000  # ~3.8 MB: far more than the kernel buffers of a reader that takes nothing
    await sender.send_numbered(count, payload)
    await sender.expect(lambda l: f"|sender|{count - 1} " in l, timeout=60)
    assert link.get_write_buffer_size() > 0 and link._fd == -1  # backed up: in order
    slow.writer.transport.resume_reading()  # type: ignore[attr-defined]
    await slow.expect(lambda l: f"|sender|{count - 1} " in l, timeout=60)
    got = [int(l.rsplit("|", 1)[1].split()[0]) for l in slow.lines if "|sender|" in l]
    assert got == list(range(count))
    await wait_for(lambda: link._fd >= 0)  # drained: direct writes again
    sender.send("MSG|after the backlog")
    await slow.expect(lambda l: l.endswith("|sender|after the backlog"))
    await slow.close()
    await sender.close()


async def test_slow_tls_reader_is_disconnected_alone(make_server: ServerFactory) -> None:
    """The flush writes TLS connections through ``TlsLink.send``, whose return value (what the
    TCP transport buffers) drives the output limit: a TLS client that stops reading is dropped
    with the documented reason once it is over the limit, and nobody else loses a message."""

    server = await make_server(tls=True, output_limit=64 * 1024, flood_rate=0)
    slow = await _small_window_tls_client(server.port)
    slow.writer.transport.pause_reading()  # type: ignore[attr-defined]
    sender = await LineClient.connect(server.port, ssl=client_context(), hello="t",
                                      nick="sender")
    fast = await LineClient.connect(server.port, ssl=client_context(), hello="t", nick="fast")
    await sender.expect(lambda l: "|fast(" in l)
    payload = "y" * 1890
    count = 4000  # ~7.6 MB: more than the kernel buffers of a reader that takes nothing
    await sender.send_numbered(count, payload)
    await fast.expect(lambda l: f"|sender|{count - 1} " in l, timeout=60)
    assert any(l.startswith("PART|lobby|slowpoke|output buffer overflow") for l in fast.lines)
    got = [int(l.rsplit("|", 1)[1].split()[0]) for l in fast.lines if "|sender|" in l]
    assert got == list(range(count))
    slow.writer.transport.abort()
    await sender.close()
    await fast.close()
