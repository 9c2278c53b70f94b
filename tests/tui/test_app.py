"""Textual Pilot drives the real chat app against a real server on loopback."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.text import Text
from textual import events
from textual.pilot import Pilot

from richchat.core.client import Address, ChatClient
from richchat.core.protocol import frames as f
from richchat.core.tui import ChatApp, render
from richchat.core.tui.app import NARROW, PASTE_LINE_LIMIT, WIDE
from richchat.core.tui.render import MENTION_STYLE
from richchat.core.tui.widgets import NickScreen
from tests.client.servers import next_frame, registered, start_server

SIZE = (110, 32)


async def until(
    pilot: Pilot[None], cond: Callable[[], bool], what: str, timeout: float = 10
) -> None:
    """Let the app run until ``cond()`` holds (never a fixed sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def plain(app: ChatApp, key: str) -> list[str]:
    """The lines of conversation ``key`` as the chat panel shows them."""
    return [text.plain for text in rendered(app, key)]


def rendered(app: ChatApp, key: str) -> list[Text]:
    return [render.chat_line(line, app.time_format) for line in app.chat.conversations[key].lines]


def status(app: ChatApp) -> str:
    return app.session.status.state


def dialog_ready(app: ChatApp) -> bool:
    """The nickname dialog is shown and composed."""
    return isinstance(app.screen, NickScreen) and bool(app.screen.query("#nick-input"))


def make_app(port: int, nick: str | None = "alice") -> ChatApp:
    return ChatApp(Address("127.0.0.1", port), nick, reconnect_base=0.1, reconnect_cap=0.5)


async def type_line(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*text)
    await pilot.press("enter")


async def test_send_and_receive(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        assert status(app) == "connected"
        await type_line(pilot, "hello bob")
        got = await next_frame(bob, f.RoomMessage)
        assert isinstance(got, f.RoomMessage) and (got.name, got.text) == ("alice", "hello bob")
        assert app.input.value == ""
        await bob.say("hi alice, welcome")
        await until(pilot, lambda: any("<bob> hi alice" in s for s in plain(app, "lobby")), "bob")
        line = rendered(app, "lobby")[-1]
        assert any(span.style == MENTION_STYLE for span in line.spans)  # mention highlighted
        await until(pilot, lambda: "bob" in app.chat.conversations["lobby"].users, "user list")
        assert {str(o.prompt) for o in app.user_list.options} >= {"bob", "alice (you)"}
    await bob.close()


async def test_markup_and_escapes_shown_literally(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await bob.say("[bold red]not bold[/] \x1b[31mred? 你好🙂 done")
        await until(pilot, lambda: any("not bold" in s for s in plain(app, "lobby")), "message")
        line = rendered(app, "lobby")[-1]
        assert "[bold red]not bold[/]" in line.plain
        assert "\x1b" not in line.plain and "\u241b[31mred?" in line.plain
        assert not any("red" in str(span.style) for span in line.spans)
        assert "你好🙂 done" in line.plain
        await until(pilot, lambda: any("done" in strip.text for strip in app.chat_log.lines),
                    "the line in the chat panel")
        width = app.chat_log.scrollable_content_region.width
        assert all(strip.cell_length <= width for strip in app.chat_log.lines)
    await bob.close()


async def test_tab_scrolling_and_typing_reaches_input(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    for n in range(5):
        await registered(port, f"user{n}")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        for n in range(60):
            await bob.say(f"line {n}")
        await until(pilot, lambda: any("line 59" in s for s in plain(app, "lobby")), "lines")
        log = app.chat_log
        await until(pilot, lambda: log.max_scroll_y > 0 and log.scroll_y == log.max_scroll_y,
                    "the view at the bottom of a scrollable log")
        await pilot.press("pageup")
        await until(pilot, lambda: log.scroll_y < log.max_scroll_y, "a page up")
        reading = log.scroll_y
        await pilot.press("up")
        await until(pilot, lambda: log.scroll_y == reading - 1, "one line up")
        reading = log.scroll_y
        await bob.say("a new line while reading")
        await until(pilot, lambda: app.new_below == 1, "the new line counted below")
        assert "1 new below" in str(app.query_one("#topic").render())
        # Typing goes through the app's message queue after the new line's redraw, so if the
        # line were to move the view, it would have by the time the input shows the text.
        await pilot.press("h", "i")
        await until(pilot, lambda: app.input.value == "hi", "typing")
        assert log.scroll_y == reading  # not yanked to the bottom
        # TAB: the users panel becomes active; Up/Down now move in the user list
        await pilot.press("tab")
        assert app.active_panel == "users"
        assert app.user_list.has_class("-active") and not app.query_one("#main").has_class(
            "-active"
        )
        await pilot.press("down")
        first = app.user_list.highlighted
        await pilot.press("down")
        assert app.user_list.highlighted == (first or 0) + 1
        assert log.scroll_y == reading
        await pilot.press("tab")
        assert app.active_panel == "chat"
        await pilot.press("pagedown", "pagedown", "pagedown", "pagedown")
        await until(pilot, lambda: log.scroll_y == log.max_scroll_y, "back at the bottom")
        await until(pilot, lambda: app.new_below == 0, "the count cleared")
        assert "new below" not in str(app.query_one("#topic").render())
        assert app.input.value == "hi" and app.input.has_focus
    await bob.close()


async def test_nick_change_accepted_and_refused(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await type_line(pilot, "/nick alicia")
        await until(pilot, lambda: app.chat.nick == "alicia", "rename")
        assert any("now known as alicia" in s for s in plain(app, "lobby"))
        await type_line(pilot, "/nick BOB")
        await until(pilot, lambda: any("name_taken" in s for s in plain(app, "lobby")), "refusal")
        assert app.chat.nick == "alicia"
        await type_line(pilot, "/nick bad|name")
        assert any("cannot contain '|'" in s for s in plain(app, "lobby"))
        assert app.input.value == "/nick bad|name"  # kept for correction
    await bob.close()


async def test_refused_initial_nick_is_asked_again(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port, nick="bob")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: dialog_ready(app), "nickname dialog")
        assert "refused" in str(app.screen.query_one("#nick-reason").render())
        field = app.screen.query_one("#nick-input")
        field.value = ""  # type: ignore[attr-defined]
        await type_line(pilot, "carol")
        await until(pilot, lambda: app.chat.nick == "carol", "registration as carol")
        assert not isinstance(app.screen, NickScreen)
    await bob.close()


async def test_no_nick_given_asks_for_one(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    app = make_app(port, nick=None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: dialog_ready(app), "nickname dialog")
        await type_line(pilot, "bad name")
        assert "space" in str(app.screen.query_one("#nick-reason").render())
        field = app.screen.query_one("#nick-input")
        field.value = ""  # type: ignore[attr-defined]
        await type_line(pilot, "dora")
        await until(pilot, lambda: app.chat.nick == "dora", "registration")
        assert "nick: dora" in str(app.query_one("#status").render())


async def test_commands_help_clear_unknown(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await type_line(pilot, "/help")
        assert any("/join ROOM" in s for s in plain(app, "lobby"))
        await type_line(pilot, "/frobnicate")
        assert any("Unknown command /frobnicate" in s and "/help" in s for s in plain(app, "lobby"))
        assert app.input.value == "/frobnicate"  # kept, to fix the typo
        app.input.value = ""
        await type_line(pilot, "/users")
        assert any("Users in #lobby (1): alice" in s for s in plain(app, "lobby"))
        await type_line(pilot, "/clear")
        assert plain(app, "lobby") == []
        assert app.input.value == ""


async def test_multi_line_paste(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        app.input.post_message(events.Paste("first\n\nsecond\r\nthird"))
        texts = []
        for _ in range(3):
            got = await next_frame(bob, f.RoomMessage)
            assert isinstance(got, f.RoomMessage)
            texts.append(got.text)
        assert texts == ["first", "second", "third"]
        big = "\n".join(f"l{n}" for n in range(PASTE_LINE_LIMIT + 1))
        app.input.post_message(events.Paste(big))
        await until(pilot, lambda: any("not sent" in s for s in plain(app, "lobby")), "refusal")
        await bob.say("marker")
        got = await next_frame(bob, f.RoomMessage)
        assert isinstance(got, f.RoomMessage) and got.text == "marker"  # nothing else was sent
    await bob.close()


async def test_rooms_join_switch_isolation(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    await bob.join("dev")
    await next_frame(bob, f.RoomUsers)
    await bob.say("old dev news", room="dev")
    await next_frame(bob, f.RoomMessage)  # bob's own echo
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await type_line(pilot, "/join dev")
        await until(pilot, lambda: app.chat.active == "dev", "switch to dev")
        await until(pilot, lambda: any("old dev news" in s for s in plain(app, "dev")), "history")
        await until(pilot, lambda: set(app.chat.conversations["dev"].users) == {"alice", "bob"}, "rlist")
        await type_line(pilot, "/topic shipping today")
        await until(pilot, lambda: app.chat.conversations["dev"].topic == "shipping today", "topic")
        await type_line(pilot, "in dev")
        got = await next_frame(bob, f.RoomMessage)
        assert isinstance(got, f.RoomMessage) and (got.room, got.text) == ("dev", "in dev")
        await bob.say("lobby chatter")
        await until(pilot, lambda: app.chat.conversations["lobby"].unread == 1, "unread count")
        assert not any("lobby chatter" in s for s in plain(app, "dev"))
        assert "(1)" in str(app.query_one("#conversations").render())
        await pilot.press("ctrl+p")
        assert app.chat.active == "lobby" and app.chat.conversations["lobby"].unread == 0
        await pilot.press("ctrl+n")
        assert app.chat.active == "dev"
        await pilot.click("#conversations", offset=(3, 1))  # the "#lobby" line
        assert app.chat.active == "lobby"
        await pilot.click("#conversations", offset=(3, 2))  # the "#dev" line
        assert app.chat.active == "dev"
        assert app.input.has_focus
        await type_line(pilot, "/me waves")
        await until(pilot, lambda: any("* alice waves" in s for s in plain(app, "dev")), "action")
        await type_line(pilot, "/leave")
        await until(pilot, lambda: "dev" not in app.chat.conversations, "leave")
        assert app.chat.active == "lobby"
        await type_line(pilot, "/who lobby")
        await until(pilot, lambda: any("Users in #lobby: " in s and "bob" in s
                                       for s in plain(app, "lobby")), "who")
        await type_line(pilot, "/rooms")
        await until(pilot, lambda: any("Rooms:" in s for s in plain(app, "lobby")), "rooms")
    await bob.close()


async def test_private_conversation_view(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await bob.private("alice", "secret plan")
        await next_frame(bob, f.Private)  # bob's own echo
        await until(pilot, lambda: "@bob" in app.chat.conversations, "private conversation")
        conv = app.chat.conversations["@bob"]
        assert conv.unread == 1 and conv.mentioned
        assert not any("secret plan" in s for s in plain(app, "lobby"))
        await pilot.press("ctrl+n")
        assert app.chat.active == "@bob"
        assert "private conversation" in str(app.query_one("#topic").render())
        await type_line(pilot, "got it")
        got = await next_frame(bob, f.Private)
        assert isinstance(got, f.Private) and (got.sender, got.to, got.text) == (
            "alice", "bob", "got it",
        )
        await until(pilot, lambda: any("-> *bob* got it" in s for s in plain(app, "@bob")), "echo")
        await pilot.press("ctrl+p")
        assert app.chat.active == "lobby"
        await until(pilot, lambda: app.user_list.option_count == 2, "user list")
        bob_row = next(i for i, o in enumerate(app.user_list.options) if str(o.prompt) == "bob")
        await pilot.click("#users", offset=(3, 1 + bob_row))  # 1: the border
        assert app.chat.active == "@bob"
        assert app.input.has_focus
        await type_line(pilot, "/msg carol hi")  # nobody of that name: refused, nothing opened
        await until(pilot, lambda: any("no_such_user" in s for s in plain(app, "@bob")), "err")
        assert "@carol" not in app.chat.conversations and app.chat.active == "@bob"
    await bob.close()


async def test_reconnect_after_server_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = await start_server(data)
    port = server.port  # type: ignore[attr-defined]
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await type_line(pilot, "/join dev")
        await until(pilot, lambda: app.chat.active == "dev", "join dev")
        await type_line(pilot, "before restart")
        await until(pilot, lambda: any("before restart" in s for s in plain(app, "dev")), "echo")
        await server.stop()  # type: ignore[attr-defined]
        await until(pilot, lambda: status(app) == "disconnected", "lost connection")
        assert "disconnected" in str(app.query_one("#status").render())
        await pilot.press(*"typed while offline")
        await pilot.press("enter")
        assert app.input.value == "typed while offline"  # unsent input kept
        server = await start_server(data, port=port)
        try:
            await until(pilot, lambda: status(app) == "connected" and app.session.sessions == 2,
                        "reconnect", timeout=20)
            assert app.chat.nick == "alice"
            await until(pilot, lambda: app.chat.conversations["dev"].joined, "rejoined dev")
            await pilot.press("enter")
            await until(pilot, lambda: any("typed while offline" in s
                                           for s in plain(app, "dev")), "sent after reconnect")
            assert sum("before restart" in s for s in plain(app, "dev")) == 1  # no duplicates
            assert app.input.value == ""
        finally:
            await server.stop()  # type: ignore[attr-defined]


async def test_quit_command_exits(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    watcher = ChatClient("127.0.0.1", port)
    await watcher.connect()
    await watcher.register("watcher")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await type_line(pilot, "/quit")
        await until(pilot, lambda: not app.is_running, "exit")
    left = await next_frame(watcher, f.UserLeft)
    assert isinstance(left, f.UserLeft) and left.name == "alice"
    await watcher.close()


async def test_reconnect_waits_for_a_nickname_taken_meanwhile(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = await start_server(data)
    port = server.port  # type: ignore[attr-defined]
    app = ChatApp(Address("127.0.0.1", port), "alice", reconnect_base=1.0, reconnect_cap=1.0)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.registered, "registration")
        await server.stop()  # type: ignore[attr-defined]
        await until(pilot, lambda: status(app) == "disconnected", "lost connection")
        server = await start_server(data, port=port)
        try:
            imposter = await registered(port, "alice")  # takes the name before we are back
            await until(pilot, lambda: any("still taken" in s for s in plain(app, "lobby")),
                        "retry notice", timeout=20)
            assert not isinstance(app.screen, NickScreen)
            await imposter.close()
            await until(pilot, lambda: app.session.registered and app.session.sessions == 2, "re-registered",
                        timeout=20)
            assert app.chat.nick == "alice"
            assert not isinstance(app.screen, NickScreen)
        finally:
            await server.stop()  # type: ignore[attr-defined]


async def test_first_connection_failure_exits_when_fail_fast() -> None:
    from richchat.core.errors import ConnectionRefusedRichchatError
    from tests.client.servers import free_port

    app = ChatApp(Address("127.0.0.1", free_port()), "alice", fail_fast=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: not app.is_running, "exit")
    assert isinstance(app.failure, ConnectionRefusedRichchatError)


async def test_invalid_nick_option_opens_the_dialog(chat_server: object) -> None:
    app = make_app(chat_server.port, nick="no spaces")  # type: ignore[attr-defined]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: dialog_ready(app), "nickname dialog")
        assert "space" in str(app.screen.query_one("#nick-reason").render())


async def test_one_line_paste_is_inserted_once(chat_server: object) -> None:
    app = make_app(chat_server.port)  # type: ignore[attr-defined]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await pilot.press("a")
        app.input.post_message(events.Paste("XYZ"))
        await until(pilot, lambda: app.input.value != "a", "the paste")
        assert app.input.value == "aXYZ"


async def test_query_opens_a_private_conversation(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await type_line(pilot, "/query bad|name")
        assert any("Bad user name" in s for s in plain(app, "lobby"))
        assert app.input.value == "/query bad|name"  # kept for correction
        app.input.value = ""
        await type_line(pilot, "/query Bob")
        assert app.chat.active == "@bob" and app.input.value == ""
        assert "@Bob  private conversation" in str(app.query_one("#topic").render())
        await type_line(pilot, "just us")
        got = await next_frame(bob, f.Private)
        assert isinstance(got, f.Private) and (got.to, got.text) == ("bob", "just us")
        await pilot.press("ctrl+p")
        assert app.chat.active == "lobby"
        await type_line(pilot, "/query bob and again")  # with text: opened and sent
        got = await next_frame(bob, f.Private)
        assert isinstance(got, f.Private) and got.text == "and again"
        assert app.chat.active == "@bob"
        await until(pilot, lambda: any("-> *bob* and again" in s for s in plain(app, "@bob")),
                    "the echo")
    await bob.close()


async def test_msg_to_nobody_online_opens_nothing(chat_server: object) -> None:
    """``/msg nobody hello``: the server's refusal is one line where the command was typed,
    and no empty conversation is left in the list; a bad name is refused before sending."""
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await type_line(pilot, "/msg nobody hello")
        await until(pilot, lambda: any("no user named nobody is online [no_such_user]" in s
                                       for s in plain(app, "lobby")), "the refusal")
        assert app.chat.keys() == ["lobby"] and app.chat.active == "lobby"
        assert "nobody" not in str(app.conversation_list.render())
        before = len(app.chat.current.lines)
        await type_line(pilot, "/msg bad|name hello")
        said = plain(app, "lobby")[before:]
        assert len(said) == 1, said  # one line
        assert said[0].endswith("-!- Bad user name 'bad|name': a nickname cannot contain '|'")
        assert app.chat.keys() == ["lobby"] and app.input.value == "/msg bad|name hello"
        app.input.value = ""
        await type_line(pilot, "/msg bob hello")  # someone online: opened once delivered
        got = await next_frame(bob, f.Private)
        assert isinstance(got, f.Private) and got.text == "hello"
        await until(pilot, lambda: app.chat.active == "@bob", "the conversation with bob")
        assert app.chat.keys() == ["lobby", "@bob"] and app.chat.current.unread == 0
    await bob.close()


async def test_ctrl_q_quits(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    watcher = await registered(port, "watcher")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running, "exit")
    left = await next_frame(watcher, f.UserLeft)
    assert isinstance(left, f.UserLeft) and left.name == "alice" and "bye" in left.reason
    await watcher.close()


async def test_reconnect_countdown_in_the_header(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = await start_server(data)
    port = server.port  # type: ignore[attr-defined]
    # backoff of 2-4 s: long enough to watch the countdown move
    app = ChatApp(Address("127.0.0.1", port), "alice", reconnect_base=4.0, reconnect_cap=4.0)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.registered, "registration")
        await server.stop()  # type: ignore[attr-defined]

        def countdown() -> float | None:
            m = re.search(r"reconnecting in (\d+\.\d) s", str(app.status_bar.render()))
            return float(m.group(1)) if m else None

        await until(pilot, lambda: countdown() is not None, "the countdown")
        first = countdown()
        assert first is not None and 0 < first <= 4.0
        assert "disconnected" in str(app.status_bar.render())
        assert app.status_bar.has_class("-offline")
        await until(pilot, lambda: (countdown() or first) < first - 0.5, "the countdown moving")
        server = await start_server(data, port=port)
        try:
            await until(pilot, lambda: app.session.sessions == 2, "reconnected", timeout=30)
            assert "reconnecting" not in str(app.status_bar.render())
            assert not app.status_bar.has_class("-offline")
        finally:
            await server.stop()  # type: ignore[attr-defined]


async def test_shutdown_shown_in_the_room_on_screen(chat_server: object) -> None:
    app = make_app(chat_server.port)  # type: ignore[attr-defined]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await type_line(pilot, "/join dev")
        await until(pilot, lambda: app.chat.active == "dev", "join dev")
        await chat_server.stop()  # type: ignore[attr-defined]
        await until(pilot, lambda: any("Server is shutting down" in s for s in plain(app, "dev")),
                    "the shutdown in #dev")
        assert any("Server is shutting down" in s for s in plain(app, "lobby"))


# --------------------------------------------------------------------------- small terminals

FOX = "the quick brown fox jumps over the lazy dog"
LONG = " ".join([FOX] * 3)


def shown(app: ChatApp, selector: str) -> bool:
    return bool(app.query_one(selector).display)


@pytest.mark.parametrize("size", [(40, 12), (60, 20), (120, 35)])
async def test_small_terminals_keep_the_chat_usable(
    chat_server: object, size: tuple[int, int]
) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    width, _height = size
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        header = str(app.status_bar.render())
        assert "alice" in header and "connected" in header  # nick and state always stay
        log = app.chat_log
        wide = width >= WIDE
        assert shown(app, "#conversations") == wide and shown(app, "#users") == wide
        if wide:
            assert app.query_one("#conversations").outer_size.width == 18
        else:
            # the side panels are hidden: the chat has the width, less its borders/scrollbar
            assert log.scrollable_content_region.width >= width - 4
        await bob.say(LONG)
        await until(pilot, lambda: any("lazy dog" in s.text for s in log.lines), "bob's line")
        text_width = log.scrollable_content_region.width
        assert all(strip.cell_length <= text_width for strip in log.lines)  # wrapped, not cut
        assert log.max_scroll_x == 0 and not log.show_horizontal_scrollbar
        # F3 / F2 show the hidden panels (and hide them again)
        await pilot.press("f3")
        await until(pilot, lambda: shown(app, "#users") != wide, "users panel toggled")
        await pilot.press("f3")
        await until(pilot, lambda: shown(app, "#users") == wide, "users panel back")
        await pilot.press("f2")
        await until(pilot, lambda: shown(app, "#conversations") != wide, "list toggled")
    await bob.close()


async def test_medium_width_shrinks_the_side_panels(chat_server: object) -> None:
    app = make_app(chat_server.port)  # type: ignore[attr-defined]
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        assert NARROW <= 80 < WIDE
        assert app.query_one("#conversations").outer_size.width == 14
        assert app.query_one("#users").outer_size.width == 16
        assert app.chat_log.scrollable_content_region.width >= 40


async def test_lines_rewrap_when_the_terminal_grows(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=(40, 12)) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        log = app.chat_log
        await bob.say(FOX)
        await until(pilot, lambda: any("lazy dog" in s.text for s in log.lines), "bob's line")
        small = len(log.lines)
        assert not any(FOX in s.text for s in log.lines)  # wrapped over several rows
        await pilot.resize_terminal(120, 35)
        await until(pilot, lambda: any(FOX in s.text for s in log.lines),
                    "the line on one row", timeout=10)
        assert len(log.lines) < small
        text_width = log.scrollable_content_region.width
        assert all(strip.cell_length <= text_width for strip in log.lines)
        await pilot.resize_terminal(40, 12)  # and back: wrapped again, nothing cut
        await until(pilot, lambda: len(log.lines) == small, "wrapped again")
        text_width = log.scrollable_content_region.width
        assert all(strip.cell_length <= text_width for strip in log.lines)
    await bob.close()


async def test_a_look_alike_spelling_opens_the_one_private_conversation(
    chat_server: object,
) -> None:
    """``/msg аdmin psst`` (Cyrillic а) reaches ``admin`` (the server resolves look-alike
    names); the echo names ``admin``. It must land in the conversation on screen, which then
    shows the real name, not in a second conversation next to an empty one."""
    port = chat_server.port  # type: ignore[attr-defined]
    admin = await registered(port, "admin")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await type_line(pilot, "/msg \u0430dmin psst")
        got = await next_frame(admin, f.Private)
        assert isinstance(got, f.Private) and (got.to, got.text) == ("admin", "psst")
        await until(pilot, lambda: any("psst" in s for key in app.chat.conversations
                                       for s in plain(app, key)), "the echo")
        private = [c for c in app.chat.conversations.values() if c.private]
        assert len(private) == 1, [c.title for c in private]
        assert app.chat.current is private[0] and private[0].peer == "admin"
        assert private[0].unread == 0
        assert any("-> *admin* psst" in s for s in plain(app, app.chat.active))
        await type_line(pilot, "again")  # goes to the name as online
        got = await next_frame(admin, f.Private)
        assert isinstance(got, f.Private) and (got.to, got.text) == ("admin", "again")
    await admin.close()
