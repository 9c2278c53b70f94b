"""The chat UI against a real TLS server: the trust prompt (remember, this time, cancel), the
header's security indicator, a changed key (at start and on a reconnect), plaintext warned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.widgets import Label

from richchat.core.client import Address
from richchat.core.errors import KeyMismatchError, UntrustedServerError
from richchat.core.server import ChatServer, ServerConfig
from richchat.core.server.tls import CERT_FILE, KEY_FILE
from richchat.core.trust.connect import TrustPolicy
from richchat.core.trust.known import KnownServers
from richchat.core.tui import ChatApp, render
from richchat.core.tui.widgets import TrustScreen
from tests.tui.test_app import SIZE, plain, until

OTHER = "SHA256:" + "A" * 42 + "E"


async def tls_server(data_dir: Path, port: int = 0, **kw: Any) -> ChatServer:
    server = ChatServer(ServerConfig(host="127.0.0.1", port=port, data_dir=data_dir,
                                     beacon=False, mdns=False, name="secure", tls=True, **kw))
    await server.start()
    return server


async def with_new_key(server: ChatServer, data_dir: Path) -> ChatServer:
    """``server`` back on its port with a new key (a wiped data dir, or an impostor)."""
    port = server.port
    await server.stop()
    for name in (CERT_FILE, KEY_FILE):
        (data_dir / name).unlink()
    return await tls_server(data_dir, port=port)


async def plain_server(data_dir: Path, port: int = 0) -> ChatServer:
    server = ChatServer(ServerConfig(host="127.0.0.1", port=port, data_dir=data_dir,
                                     beacon=False, mdns=False, name="plain"))
    await server.start()
    return server


async def without_tls(server: ChatServer, data_dir: Path) -> ChatServer:
    """``server`` back on its port in plaintext (it lost --tls, or an impostor)."""
    port = server.port
    await server.stop()
    return await plain_server(data_dir, port)


def app_for(port: int, known: Path, **kw: Any) -> ChatApp:
    trust = TrustPolicy(KnownServers(known), unknown="ask")
    return ChatApp(Address("127.0.0.1", port), "alice", reconnect_base=0.1,
                   reconnect_cap=0.5, trust=trust, **kw)


def header(app: ChatApp) -> str:
    return str(app.status_bar.render())


def prompt_shown(app: ChatApp) -> bool:
    """The trust prompt is on screen with its widgets mounted (a screen is pushed before it
    is composed: a query or a key press right after the push can come too early)."""
    return isinstance(app.screen, TrustScreen) and bool(app.screen.query("#trust-fingerprint"))


async def test_first_contact_asks_then_remembers(tmp_path: Path) -> None:
    server = await tls_server(tmp_path / "data")
    fp = server.tls.fingerprint  # type: ignore[union-attr]
    known = tmp_path / "known"
    try:
        app = app_for(server.port, known)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: prompt_shown(app), "the trust prompt")
            shown = str(app.screen.query_one("#trust-fingerprint", Label).render())
            assert shown == fp
            assert server.hub.users_online == 0  # type: ignore[union-attr]  # nothing sent meanwhile
            assert not server.hub.conns  # type: ignore[union-attr]  # not even connected
            await pilot.press("r")
            await until(pilot, lambda: app.chat.nick == "alice", "registration")
            assert f"TLS 1.3 · {fp[:19]}… (pinned)" in header(app)
        assert KnownServers(known).get("127.0.0.1", server.port).fingerprint == fp  # type: ignore[union-attr]

        # the second time: no prompt, straight in
        app = app_for(server.port, known)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.chat.nick == "alice", "registration")
            assert not isinstance(app.screen, TrustScreen)
            assert "(pinned)" in header(app)
    finally:
        await server.stop()


async def test_trust_this_time_and_cancel(tmp_path: Path) -> None:
    server = await tls_server(tmp_path / "data")
    known = tmp_path / "known"
    try:
        app = app_for(server.port, known)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: prompt_shown(app), "the trust prompt")
            await pilot.press("o")
            await until(pilot, lambda: app.chat.nick == "alice", "registration")
            assert "(trusted this time)" in header(app)
        assert KnownServers(known).pins() == []

        app = app_for(server.port, known, fail_fast=True)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: prompt_shown(app), "the trust prompt")
            await pilot.pause()
            await pilot.press("enter")  # Enter is on Cancel: it never trusts by accident
            await until(pilot, lambda: app.failure is not None, "the app giving up")
        assert isinstance(app.failure, UntrustedServerError)
        assert server.hub.users_online == 0  # type: ignore[union-attr]
    finally:
        await server.stop()


async def test_changed_key_at_start_and_on_a_reconnect(tmp_path: Path) -> None:
    server = await tls_server(tmp_path / "data")
    port, fp = server.port, server.tls.fingerprint  # type: ignore[union-attr]
    known = tmp_path / "known"
    KnownServers(known).add("127.0.0.1", port, OTHER)
    try:
        app = app_for(port, known, fail_fast=True)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.failure is not None, "the refusal")
        assert isinstance(app.failure, KeyMismatchError)
        assert OTHER in app.failure.message and fp in app.failure.message
        assert server.hub.users_online == 0  # type: ignore[union-attr]

        KnownServers(known).add("127.0.0.1", port, fp, replace=True)
        app = app_for(port, known)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.chat.nick == "alice", "registration")
            # the server comes back with a new key (a wiped data dir, or an impostor)
            server = await with_new_key(server, tmp_path / "data")
            await until(pilot, lambda: app.session.status.state == "failed", "the refusal")
            assert "SERVER KEY CHANGED" in header(app)
            assert any("has CHANGED" in line for line in plain(app, "lobby"))
            assert server.hub.users_online == 0  # type: ignore[union-attr]
            assert app.session.status.retry_at is None  # no reconnection loop
    finally:
        await server.stop()


async def test_plaintext_server_is_shown_as_not_encrypted(tmp_path: Path) -> None:
    server = await plain_server(tmp_path / "data")
    try:
        app = app_for(server.port, tmp_path / "known")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.chat.nick == "alice", "registration")
            line = app.status_bar.render()
            assert " not encrypted " in str(line)
            assert any(span.style == render.INSECURE_STYLE for span in line.spans)  # type: ignore[union-attr]
            assert any("not encrypted" in l for l in plain(app, "lobby"))
    finally:
        await server.stop()


async def test_ctrl_c_at_the_trust_prompt_just_quits(tmp_path: Path) -> None:
    server = await tls_server(tmp_path / "data")
    try:
        app = app_for(server.port, tmp_path / "known", fail_fast=True)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: prompt_shown(app), "the trust prompt")
            await pilot.press("ctrl+c")
            await until(pilot, lambda: not app.is_running, "the app to quit")
        assert app.failure is None  # leaving is not a refused key (no exit 17)
        assert KnownServers(tmp_path / "known").pins() == []
    finally:
        await server.stop()


def _whole_on_screen(app: ChatApp, selector: str) -> bool:
    """The widget is drawn in full inside the terminal and inside its dialog's visible part."""
    widget = app.screen.query_one(selector)
    region = widget.region
    if not widget.content_region.width or not widget.content_region.height:
        return False
    visible = app.screen.region
    for node in widget.ancestors_with_self:
        if node is app.screen:
            break
        if hasattr(node, "scrollable_content_region") and node is not widget:
            visible = visible.intersection(node.scrollable_content_region)  # type: ignore[attr-defined]
    return visible.contains_region(region)


async def test_the_trust_prompt_fits_the_smallest_terminal(tmp_path: Path) -> None:
    """At 40x12 (the size the README promises) the dialog showed the fingerprint and no
    button at all (nor which keys answer it), with the focus on an invisible Cancel."""
    server = await tls_server(tmp_path / "data")
    try:
        app = app_for(server.port, tmp_path / "known")
        async with app.run_test(size=(40, 12)) as pilot:
            await until(pilot, lambda: prompt_shown(app), "the trust prompt")
            await pilot.pause()
            for selector in ("#trust-fingerprint", "#remember", "#once", "#cancel"):
                assert _whole_on_screen(app, selector), selector
            fingerprint = "".join(
                str(app.screen.query_one("#trust-fingerprint", Label).render()).split())
            assert fingerprint == server.tls.fingerprint  # type: ignore[union-attr]
            assert app.screen.focused is not None and app.screen.focused.id == "cancel"
            await pilot.press("r")
            await until(pilot, lambda: app.chat.nick == "alice", "registration")
        async with app_for(server.port, tmp_path / "other").run_test(size=SIZE) as pilot:
            # a roomy terminal still shows the explanation beside the buttons
            app2 = pilot.app
            await until(pilot, lambda: prompt_shown(app2), "the prompt")
            await pilot.pause()
            for selector in ("#trust-fingerprint", "#trust-explain", "#remember", "#cancel"):
                assert _whole_on_screen(app2, selector), selector  # type: ignore[arg-type]
            await pilot.press("escape")
    finally:
        await server.stop()


async def test_an_answer_before_the_prompt_is_mounted_is_taken(tmp_path: Path) -> None:
    """An answer typed at once (the prompt dismissed before its own mount handler ran) is
    taken; the prompt's mount handler found its buttons gone and crashed the chat UI
    (``NoMatches: '#cancel'``: once in about 45 runs of the first-contact test under load,
    found by an exploratory pass)."""
    from textual.app import App

    from richchat.core.trust.connect import UnknownServerKey

    question = UnknownServerKey("127.0.0.1", 5050, OTHER, also_pinned_as=[], hint=None,
                                store=str(tmp_path / "known"))
    answers: list[str | None] = []

    class Host(App[None]):
        def on_mount(self) -> None:
            prompt = TrustScreen(question)
            self.push_screen(prompt, callback=answers.append)
            prompt.action_answer("remember")  # before the prompt's Mount is handled

    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: answers == ["remember"], "the answer")
        await pilot.pause()
    assert app.return_code in (None, 0)


@pytest.mark.parametrize("size", [(20, 6), (40, 12), SIZE])
async def test_the_trust_prompt_names_its_keys_at_every_size(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """Found by the fifth exploratory pass: at 20x6 the dialog showed its title and nothing
    else, neither the buttons nor which keys answer it. Its bottom border names them."""
    server = await tls_server(tmp_path / "data")
    try:
        app = app_for(server.port, tmp_path / "known")
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: prompt_shown(app), "the trust prompt")
            await pilot.pause()
            box = app.screen.query_one(VerticalScroll)
            assert app.screen.region.contains_region(box.region)
            width, height = box.outer_size
            bottom = box.render_lines(Region(0, height - 1, width, 1))[0].text
            assert "r: trust · o: once · Esc" in bottom or "r / o / Esc" in bottom, bottom
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, TrustScreen), "cancelled")
    finally:
        await server.stop()
