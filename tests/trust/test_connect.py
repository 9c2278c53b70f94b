"""Trust on first use through real components: a real TLS richchat server, real clients, and
impostors that really listen (socat with its own key, a plaintext richchat server, socat as a
TLS-terminating man in the middle). What an impostor receives is captured and checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from richchat.core.client import ChatClient
from richchat.core.errors import (
    ConnectionLostError,
    KeyMismatchError,
    ProtocolError,
    TimeoutRichchatError,
    UntrustedServerError,
)
from richchat.core.exit_codes import ExitStatus
from richchat.core.server.tls import CERT_FILE, KEY_FILE
from richchat.core.trust.connect import UnknownServerKey
from richchat.core.trust.known import Pin
from tests.tlskit import openssl_fingerprint, openssl_keypair
from tests.trust.conftest import ServerFactory, policy, tls_listen, wait_listening


async def connect(port: int, trust: object, host: str = "127.0.0.1",
                  timeout: float = 5.0) -> ChatClient:
    client = ChatClient(host, port, timeout=timeout, trust=trust)  # type: ignore[arg-type]
    await client.connect()
    return client


async def test_first_contact_pins_then_reconnect_is_silent(
        start_server: ServerFactory, tmp_path: Path) -> None:
    server = await start_server()
    assert server.tls is not None
    fp = server.tls.fingerprint
    assert fp == openssl_fingerprint(tmp_path / "data" / CERT_FILE)
    pinned: list[Pin] = []
    first = policy(tmp_path, on_pinned=pinned.append)
    client = await connect(server.port, first)
    assert client.security.encrypted and client.security.trust == "new"
    assert client.security.version in ("TLSv1.3", "TLSv1.2")
    assert client.security.fingerprint == fp
    assert client.server_hello is not None
    assert client.server_hello.tls and client.server_hello.fingerprint == fp
    assert await client.register("alice") == "alice"
    await client.close()
    assert [p.fingerprint for p in pinned] == [fp]
    assert first.known.get("127.0.0.1", server.port) is not None

    # again, refusing anything unknown: the pin lets it through, nothing is asked or printed
    again = policy(tmp_path, unknown="refuse", on_pinned=pinned.append)
    client = await connect(server.port, again)
    assert client.security.trust == "pinned"
    assert "pinned" in client.security.describe()
    await client.close()
    assert len(pinned) == 1


async def test_regenerated_key_is_refused_with_both_fingerprints_and_nothing_sent(
        start_server: ServerFactory, tmp_path: Path, socat: object) -> None:
    server = await start_server()
    port, old = server.port, server.tls.fingerprint  # type: ignore[union-attr]
    trust = policy(tmp_path)
    await (await connect(port, trust)).close()
    await server.stop()

    # the real server, its key regenerated (data dir wiped of the key), on the same port
    for name in (CERT_FILE, KEY_FILE):
        (tmp_path / "data" / name).unlink()
    server = await start_server(port=port)
    new = server.tls.fingerprint  # type: ignore[union-attr]
    assert new != old
    with pytest.raises(KeyMismatchError) as info:
        await connect(port, policy(tmp_path))
    text = info.value.message + " " + (info.value.hint or "")
    for needed in (old, new, f"127.0.0.1:{port}", str(tmp_path / "known_servers"),
                   f"richchat trust forget 127.0.0.1:{port}", "nothing was sent"):
        assert needed in text
    assert info.value.exit_status == ExitStatus.KEY_MISMATCH
    assert server.hub.users_online == 0  # type: ignore[union-attr]
    await server.stop()

    # a recording impostor with a key of its own: it receives not one byte of chat
    got = tmp_path / "received"
    pair = openssl_keypair(tmp_path / "impostor")
    proc = socat("-u", tls_listen(port, pair), f"OPEN:{got},creat,append")  # type: ignore[operator]
    await wait_listening(port, proc.proc)
    with pytest.raises(KeyMismatchError, match=pair.fingerprint.replace("+", r"\+")):
        await connect(port, policy(tmp_path))
    assert not got.exists() or got.read_bytes() == b""


async def test_tls_terminating_man_in_the_middle_is_refused(
        start_server: ServerFactory, tmp_path: Path, socat: object) -> None:
    server = await start_server()
    port = server.port
    await (await connect(port, policy(tmp_path))).close()  # pinned: the real server's key
    await server.stop()
    real = await start_server()  # the same key, now behind the proxy on another port
    pair = openssl_keypair(tmp_path / "mitm", cn="richchat")
    proxy = socat("-v", tls_listen(port, pair),  # type: ignore[operator]
                  f"OPENSSL:127.0.0.1:{real.port},verify=0")
    await wait_listening(port, proxy.proc)
    with pytest.raises(KeyMismatchError) as info:
        await connect(port, policy(tmp_path))
    assert pair.fingerprint in info.value.message
    assert real.tls.fingerprint in info.value.message  # type: ignore[union-attr]
    proxy.stop()
    forwarded = proxy.log.read_bytes()
    assert b"HELLO|" not in forwarded and b"CMD_USER" not in forwarded
    assert real.hub.users_online == 0  # type: ignore[union-attr]
    # a client that never pinned this address would have met the proxy's key, not silently
    with pytest.raises(UnknownServerKey):
        proxy2 = socat(tls_listen(port, pair), f"OPENSSL:127.0.0.1:{real.port},verify=0")  # type: ignore[operator]
        await wait_listening(port, proxy2.proc)
        await connect(port, policy(tmp_path / "fresh", unknown="ask"))


async def test_plaintext_impostor_on_a_pinned_address_gets_no_downgrade(
        start_server: ServerFactory, tmp_path: Path, socat: object) -> None:
    server = await start_server()
    port = server.port
    await (await connect(port, policy(tmp_path))).close()
    await server.stop()

    # a real richchat server without TLS takes the address over
    plain = await start_server(port=port, tls=False, data_dir=tmp_path / "plain")
    with pytest.raises(KeyMismatchError, match="never falls back to plaintext"):
        await connect(port, policy(tmp_path))
    assert plain.hub.users_online == 0  # type: ignore[union-attr]
    await plain.stop()

    # an impostor that swallows what it gets: the handshake times out, no plaintext follows
    got = tmp_path / "received"
    sink = socat("-u", f"TCP-LISTEN:{port},reuseaddr,fork", f"OPEN:{got},creat,append")  # type: ignore[operator]
    await wait_listening(port, sink.proc)
    with pytest.raises(TimeoutRichchatError):
        await connect(port, policy(tmp_path), timeout=1.0)
    sink.stop()
    data = got.read_bytes()
    assert data.startswith(b"\x16\x03")  # a TLS ClientHello, and nothing after it
    assert b"HELLO|" not in data and b"CMD_USER" not in data


async def test_never_pinned_plaintext_server_falls_back(
        start_server: ServerFactory, tmp_path: Path) -> None:
    plain = await start_server(tls=False)
    client = await connect(plain.port, policy(tmp_path))
    assert not client.security.encrypted
    assert client.security.describe() == "not encrypted"
    assert client.server_hello is not None and not client.server_hello.tls
    assert await client.register("bob") == "bob"
    await client.close()
    assert policy(tmp_path).known.pins() == []  # nothing recorded for plaintext
    # --tls (or discovery, or a scan, said TLS): no fallback
    with pytest.raises(ProtocolError, match="does not speak TLS"):
        await connect(plain.port, policy(tmp_path, mode="tls"))
    assert not [c for c in plain.hub.conns if c.name]  # type: ignore[union-attr]


async def test_explicit_fingerprint(start_server: ServerFactory, tmp_path: Path) -> None:
    server = await start_server()
    fp = server.tls.fingerprint  # type: ignore[union-attr]
    other = "SHA256:" + "A" * 42 + "E"
    with pytest.raises(KeyMismatchError, match="not the one --fingerprint names"):
        await connect(server.port, policy(tmp_path, fingerprint=other))
    trust = policy(tmp_path, fingerprint=fp)
    trust.known.add("127.0.0.1", server.port, other)  # an old pin: the explicit key wins
    client = await connect(server.port, trust)
    assert client.security.trust == "explicit"
    await client.close()
    assert trust.known.get("127.0.0.1", server.port).fingerprint == fp  # type: ignore[union-attr]


async def test_strict_and_ask(start_server: ServerFactory, tmp_path: Path) -> None:
    server = await start_server()
    fp = server.tls.fingerprint  # type: ignore[union-attr]
    with pytest.raises(UntrustedServerError) as info:
        await connect(server.port, policy(tmp_path, unknown="refuse"))
    assert info.value.exit_status == ExitStatus.UNTRUSTED and fp in info.value.message
    assert server.hub.users_online == 0  # type: ignore[union-attr]

    trust = policy(tmp_path, unknown="ask", hint=fp)
    trust.known.add("localhost", server.port, fp)  # the same server under another name
    with pytest.raises(UnknownServerKey) as asked:
        await connect(server.port, trust)
    assert asked.value.fingerprint == fp and asked.value.advertised == fp
    assert asked.value.also_pinned_as == [f"localhost:{server.port}"]
    trust.trust_once("127.0.0.1", server.port, fp)  # "trust this time": nothing stored
    client = await connect(server.port, trust)
    assert client.security.trust == "once"
    await client.close()
    assert trust.known.get("127.0.0.1", server.port) is None


async def test_full_tls_server_is_a_lost_connection_not_a_downgrade(
        start_server: ServerFactory, tmp_path: Path) -> None:
    server = await start_server(max_clients=1)
    trust = policy(tmp_path)
    first = await connect(server.port, trust)
    with pytest.raises(ConnectionLostError, match="during the TLS handshake"):
        await connect(server.port, trust)
    await first.close()


@pytest.mark.parametrize(("host", "named"), [
    ("127.0.0.1", ""), ("::1", ""), ("fe80::1%lo", ""), ("10.0.0.5", ""),
    ("chat.lan", "chat.lan"), ("localhost", "localhost"),
])
def test_the_tls_hello_names_a_host_but_never_an_address(host: str, named: str) -> None:
    # SNI carries host names only (RFC 6066); "" leaves it out (and ssl then needs no idna)
    from richchat.core.trust.connect import _server_name

    assert _server_name(host) == named
