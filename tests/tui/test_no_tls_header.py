"""A pinned server that answers without TLS on a reconnect is refused (no downgrade); the
header must say what happened, not 'SERVER KEY CHANGED' (no key was shown at all; eighth
exploratory pass)."""

from __future__ import annotations

from pathlib import Path

from richchat.core.trust.known import KnownServers
from tests.tui.test_app import SIZE, until
from tests.tui.test_tls_ui import app_for, header, tls_server, without_tls


async def test_a_pinned_server_without_tls_is_not_called_a_changed_key(tmp_path: Path) -> None:
    server = await tls_server(tmp_path / "data")
    port, fp = server.port, server.tls.fingerprint  # type: ignore[union-attr]
    known = tmp_path / "known"
    KnownServers(known).add("127.0.0.1", port, fp)
    try:
        app = app_for(port, known)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.chat.nick == "alice", "registration")
            server = await without_tls(server, tmp_path / "data")
            await until(pilot, lambda: app.session.status.state == "failed", "the refusal")
            assert "KEY CHANGED" not in header(app), header(app)
            assert "NO TLS" in header(app), header(app)
            assert server.hub.users_online == 0  # type: ignore[union-attr]
    finally:
        await server.stop()
