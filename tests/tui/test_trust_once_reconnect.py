"""A key trusted "this time only" (the trust dialog's ``o``) binds the rest of the run as a pin
does: a reconnection never falls back to plaintext, and a changed key is refused with both
fingerprints instead of being asked about as a first contact (eighth exploratory pass)."""

from __future__ import annotations

from pathlib import Path

from richchat.core.trust.known import KnownServers
from richchat.core.tui.widgets import TrustScreen
from tests.tui.test_app import SIZE, plain, until
from tests.tui.test_tls_ui import (
    app_for,
    header,
    prompt_shown,
    tls_server,
    with_new_key,
    without_tls,
)


async def test_trusted_this_time_never_falls_back_to_plaintext(tmp_path: Path) -> None:
    server = await tls_server(tmp_path / "data")
    port, fp = server.port, server.tls.fingerprint  # type: ignore[union-attr]
    known = tmp_path / "known"
    try:
        app = app_for(port, known)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: prompt_shown(app), "the trust prompt")
            await pilot.press("o")
            await until(pilot, lambda: app.chat.nick == "alice", "registration")
            assert "(trusted this time)" in header(app)
            # the same address answers in plaintext (the server lost --tls, or an impostor)
            server = await without_tls(server, tmp_path / "data")
            await until(pilot, lambda: app.session.status.state == "failed"
                        or "not encrypted" in header(app), "the reconnection's outcome")
            assert app.session.status.state == "failed", header(app)
            assert server.hub.users_online == 0  # type: ignore[union-attr]  # nothing sent
            assert any(fp in line for line in plain(app, "lobby"))
            assert app.session.status.retry_at is None  # no reconnection loop
        assert KnownServers(known).pins() == []
    finally:
        await server.stop()


async def test_a_key_trusted_this_time_that_changes_is_refused(tmp_path: Path) -> None:
    server = await tls_server(tmp_path / "data")
    port, fp = server.port, server.tls.fingerprint  # type: ignore[union-attr]
    known = tmp_path / "known"
    try:
        app = app_for(port, known)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: prompt_shown(app), "the trust prompt")
            await pilot.press("o")
            await until(pilot, lambda: app.chat.nick == "alice", "registration")
            server = await with_new_key(server, tmp_path / "data")
            new = server.tls.fingerprint  # type: ignore[union-attr]
            await until(pilot, lambda: app.session.status.state == "failed"
                        or isinstance(app.screen, TrustScreen), "the refusal")
            assert not isinstance(app.screen, TrustScreen), "asked as a first contact"
            assert "SERVER KEY CHANGED" in header(app)
            refusal = [line for line in plain(app, "lobby") if "CHANGED" in line]
            assert refusal and fp in refusal[0] and new in refusal[0], plain(app, "lobby")
            assert server.hub.users_online == 0  # type: ignore[union-attr]
            assert app.session.status.retry_at is None
        assert KnownServers(known).pins() == []
    finally:
        await server.stop()
