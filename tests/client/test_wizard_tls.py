"""The wizard's trust step against a real TLS server (its Console and ``ask`` swapped for
test doubles of the terminal, nothing else): first contact asked and answered, a changed key
refused with both fingerprints, a corrupt known-servers file stops the wizard."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.console import Console

from richchat.core.client import Address
from richchat.core.errors import BadFileError
from richchat.core.server import ChatServer, ServerConfig
from richchat.core.trust.connect import TrustPolicy
from richchat.core.trust.known import KnownServers
from richchat.core.wizard import Wizard

OTHER = "SHA256:" + "A" * 42 + "E"


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[ChatServer]:
    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, data_dir=tmp_path / "data",
                                     beacon=False, mdns=False, name="secure", tls=True))
    await server.start()
    yield server
    await server.stop()


def wizard(tmp_path: Path, answers: list[str]) -> tuple[Wizard, io.StringIO, TrustPolicy]:
    out = io.StringIO()
    trust = TrustPolicy(KnownServers(tmp_path / "known"), unknown="ask")
    asked = iter(answers)
    return Wizard(Console(file=out, width=200, color_system=None), lambda _prompt: next(asked),
                  trust=trust), out, trust


async def test_first_contact_is_asked_and_remembered(tls_server: ChatServer,
                                                    tmp_path: Path) -> None:
    import asyncio

    fp = tls_server.tls.fingerprint  # type: ignore[union-attr]
    where = Address("127.0.0.1", tls_server.port)
    w, out, trust = wizard(tmp_path, ["maybe", "r"])
    w.expect_tls(True, fp)
    assert await asyncio.to_thread(w.check_server, where) is None
    text = out.getvalue()
    assert fp in text and "is the one the server advertised" in text
    assert "r, o, or Enter" in text  # "maybe" is no answer: asked again
    assert trust.known.get("127.0.0.1", tls_server.port).fingerprint == fp  # type: ignore[union-attr]

    w, out, _ = wizard(tmp_path / "fresh", [""])  # Enter: no
    reason = await asyncio.to_thread(w.check_server, where)
    assert reason is not None and "did not trust" in reason

    w, out, _ = wizard(tmp_path / "hint", ["o"])
    w.expect_tls(True, OTHER)  # an advertisement that does not match what the server shows
    assert await asyncio.to_thread(w.check_server, where) is None
    assert "NOT the fingerprint the server advertised" in out.getvalue()


async def test_changed_key_is_refused_with_both_fingerprints(tls_server: ChatServer,
                                                            tmp_path: Path) -> None:
    import asyncio

    w, _out, trust = wizard(tmp_path, [])
    trust.known.add("127.0.0.1", tls_server.port, OTHER)
    reason = await asyncio.to_thread(w.check_server, Address("127.0.0.1", tls_server.port))
    assert reason is not None and OTHER in reason
    assert tls_server.tls.fingerprint in reason  # type: ignore[union-attr]
    assert tls_server.hub.users_online == 0  # type: ignore[union-attr]


async def test_corrupt_known_servers_file_stops_the_wizard(tls_server: ChatServer,
                                                           tmp_path: Path) -> None:
    import asyncio

    w, _out, trust = wizard(tmp_path, [])
    trust.known.path.write_text("not a pin\n")
    with pytest.raises(BadFileError):
        await asyncio.to_thread(w.check_server, Address("127.0.0.1", tls_server.port))
