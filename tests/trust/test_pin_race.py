"""First contact while another process pins the same address to another key (from the sixth
exploratory pass): two ``richchat send`` through one address that reaches two nodes with
their own keys (a load balancer in front of a cluster), or a ``trust add`` during a
``send``'s handshake. The send stopped with 'unexpected KeyError: Pin(...)', exit 1. A real
TLS server and the real client; the other process's pin is written in the moment between
the client's look-up and its pin (the look-up is wrapped to do so), so the race is certain."""

from __future__ import annotations

from pathlib import Path

import pytest

from richchat.core.client import ChatClient
from richchat.core.errors import KeyMismatchError
from richchat.core.trust.connect import TrustPolicy, UnknownServerKey
from richchat.core.trust.known import KnownServers, Pin
from tests.trust.conftest import ServerFactory

OTHER = "SHA256:" + "A" * 42 + "E"


def racing_policy(path: Path, monkeypatch: pytest.MonkeyPatch, **kw: object) -> TrustPolicy:
    known = KnownServers(path)
    real_get = known.get

    def get_then_another_process_pins(host: str, port: int) -> Pin | None:
        pin = real_get(host, port)
        KnownServers(path).add(host, port, OTHER)  # the other send, a moment later
        return pin

    monkeypatch.setattr(known, "get", get_then_another_process_pins)
    return TrustPolicy(known, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("unknown", ["accept-new", "ask"])
async def test_a_key_pinned_by_another_process_meanwhile_is_a_changed_key(
        start_server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        unknown: str) -> None:
    """``send`` (accept-new) pinned the presented key: the pin of the other process is there
    by then, another key: KeyError. The chat UI and the wizard (ask) remember the key the user
    accepted the same way. Both are a changed key (exit 16, nothing sent), named as such."""
    server = await start_server()
    assert server.tls is not None
    path = tmp_path / "known_servers"
    trust = racing_policy(path, monkeypatch, unknown=unknown)
    client = ChatClient("127.0.0.1", server.port, timeout=5, trust=trust)
    if unknown == "accept-new":
        with pytest.raises(KeyMismatchError, match="CHANGED") as caught:
            await client.connect()
        assert OTHER in str(caught.value) and server.tls.fingerprint in str(caught.value)
    else:
        # asked (the connection closed), the user answers "remember": the other pin is there
        with pytest.raises(UnknownServerKey):
            await client.connect()
        with pytest.raises(KeyMismatchError, match="CHANGED"):
            trust.remember("127.0.0.1", server.port, server.tls.fingerprint)
    assert [p.fingerprint for p in KnownServers(path).pins()] == [OTHER]  # kept as it was
