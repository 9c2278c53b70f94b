"""A failure the chat UI cannot get over by itself (a changed server key on a reconnect) says
what to do about it, as the command line does with its hint (eighth exploratory pass): the
note showed the error only, not 'richchat trust forget HOST:PORT, then connect again'."""

from __future__ import annotations

from pathlib import Path

from richchat.core.trust.known import KnownServers
from tests.tui.test_app import SIZE, plain, until
from tests.tui.test_tls_ui import app_for, tls_server, with_new_key


async def test_a_changed_key_on_a_reconnect_says_how_to_forget_it(tmp_path: Path) -> None:
    server = await tls_server(tmp_path / "data")
    port, fp = server.port, server.tls.fingerprint  # type: ignore[union-attr]
    known = tmp_path / "known"
    KnownServers(known).add("127.0.0.1", port, fp)
    try:
        app = app_for(port, known)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.chat.nick == "alice", "registration")
            server = await with_new_key(server, tmp_path / "data")
            await until(pilot, lambda: app.session.status.state == "failed", "the refusal")
            text = " ".join(plain(app, "lobby"))
            assert "has CHANGED" in text
            assert f"richchat trust forget 127.0.0.1:{port}" in text, text
    finally:
        await server.stop()
