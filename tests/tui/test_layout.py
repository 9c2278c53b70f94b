"""The chat screen at many terminal sizes, driven by Pilot against a real server: panel
titles are never folded inside a word, no size crashes the app, and the nickname dialog says
what its keys do and fits the screen."""

from __future__ import annotations

import re

import pytest
from textual import events
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Input

from richchat.core.protocol import frames as f
from richchat.core.tui.state import private_key
from richchat.core.tui.widgets import FilesScreen, NickScreen
from tests.client.servers import next_frame, registered
from tests.tui.test_app import dialog_ready, make_app, plain, type_line, until

LONG_NICK = "averyveryverylongnick12"
ROOM = "development-team"
WIDTHS = range(40, 141, 3)
HEIGHTS = (12, 24)
#: the conversation list's heading: the long one, or the short one on a narrow panel
HEADINGS = ("Conversations", "Chats")


def rows(widget: Widget) -> list[str]:
    """What ``widget`` draws (border and padding included), one string per row."""
    width, height = widget.outer_size
    return [strip.text for strip in widget.render_lines(Region(0, 0, width, height))]


def whole_or_cut(text: str, wholes: tuple[str, ...]) -> bool:
    """``text`` is one of ``wholes``, or the start of one cut with an ellipsis."""
    return text in wholes or (text.endswith("…") and any(
        w.startswith(text[:-1]) for w in wholes))


async def test_panel_titles_never_fold_inside_a_word(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    other = await registered(port, LONG_NICK)
    app = make_app(port)
    async with app.run_test(size=(40, 12)) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await other.private("alice", "hi")
        await next_frame(other, f.Private)
        await type_line(pilot, f"/join {ROOM}")
        await until(pilot, lambda: app.chat.active == ROOM and private_key(LONG_NICK)
                    in app.chat.conversations, "the room and the private conversation")
        await pilot.press("f2", "f3")  # both side panels, at every width
        titles = ("#lobby", f"#{ROOM}", f"@{LONG_NICK}")
        for height in HEIGHTS:
            for width in WIDTHS:
                await pilot.resize_terminal(width, height)
                size = (width, height)
                await until(pilot, lambda size=size: app.screen.size == size
                            and app.conversation_list.size.width > 0, "the new size")
                await pilot.pause()
                where = f"at {width}x{height}"
                listed = [r.strip() for r in rows(app.conversation_list)]
                listed = [r for r in listed if r.strip("│ ")]
                heading, *entries = [r.rstrip("│ ").strip() for r in listed]
                assert whole_or_cut(heading, HEADINGS), (where, listed)
                assert len(entries) == len(titles), (where, listed)  # one row each
                for entry in entries:
                    title = re.sub(r" \(\d+\)$", "", entry.removeprefix("▶").strip())
                    assert whole_or_cut(title, titles), (where, listed)
                top = rows(app.user_list)[0]
                users = re.search(r"Users[^─╮]*", top)
                shown = f"Users ({len(app.chat.current.users)})"
                assert users is not None and whole_or_cut(users.group().strip(),
                                                          (shown,)), (where, top)
        assert app.is_running
    await other.close()


@pytest.mark.parametrize("size", [(100, 24), (40, 12), (20, 6)])
async def test_esc_in_the_nickname_dialog_does_what_the_dialog_says(
    chat_server: object, size: tuple[int, int]
) -> None:
    """The dialog fits the screen with its input and its keys (in its border) in view; Esc
    closes it without a name, and the header and the chat say how to choose one later."""
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port, nick="bob")  # taken: the dialog opens
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: dialog_ready(app), "the nickname dialog")
        await pilot.pause()
        field = app.screen.query_one("#nick-input", Input)
        box = field.parent
        assert isinstance(box, Widget)
        screen = app.screen.region
        assert screen.contains_region(box.region), (box.region, screen)
        assert box.region.contains_region(field.region) and field.has_focus
        assert "Esc: no name" in rows(box)[-1]  # the border says what Esc does
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, NickScreen), "the dialog closed")
        assert app.session.status.detail == "no nickname: /nick NAME"
        assert any("No nickname yet: /nick NAME chooses one." in s
                   for s in plain(app, "lobby"))
        assert app.input.has_focus
    await bob.close()


async def test_a_tiny_terminal_still_shows_the_chat(chat_server: object) -> None:
    """At 20x6 the input and the chat panel's border took every row: no line of the chat
    showed. Below 12 rows the input is one row and the panel has no border."""
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=(20, 6)) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await bob.say("hi")
        await until(pilot, lambda: any("<bob> hi" in r for r in rows(app.chat_log)),
                    "bob's line on screen")
        assert app.chat_log.size.height >= 3 and app.input.outer_size.height == 1
        await type_line(pilot, "yo")
        await until(pilot, lambda: any("<alice> yo" in r for r in rows(app.chat_log)),
                    "our line on screen")
        await pilot.resize_terminal(100, 24)  # room again: the input has its border back
        await until(pilot, lambda: app.input.outer_size.height == 3, "the full input")
    await bob.close()


@pytest.mark.parametrize("size", [(100, 30), (40, 12), (20, 6)])
async def test_the_files_dialog_shows_its_content_and_keys(
    chat_server: object, size: tuple[int, int]
) -> None:
    """F4 at 20x6 drew an empty box (its spacing took every row): the dialog's text, title
    and keys are on screen at every size, and Esc closes it."""
    port = chat_server.port  # type: ignore[attr-defined]
    app = make_app(port)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await pilot.press("f4")
        await until(pilot, lambda: isinstance(app.screen, FilesScreen)
                    and bool(app.screen.query("#files-empty")), "the files dialog")
        await pilot.pause()
        empty = app.screen.query_one("#files-empty")
        box = empty.parent
        assert isinstance(box, Widget)
        assert app.screen.region.contains_region(box.region), (box.region, size)
        assert box.region.contains_region(empty.region) and empty.region.height > 0
        drawn = rows(box)
        assert "Files in" in drawn[0] and "Esc: close" in drawn[-1], drawn
        assert "No files" in " ".join(rows(empty))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, FilesScreen), "closed")


async def test_a_paste_with_control_characters_is_refused_by_the_nickname_field(
    chat_server: object,
) -> None:
    """Found by the fifth exploratory pass: the nickname field drew a pasted ESC [2J raw (to
    the terminal). No name has a control character: the paste is refused, with the reason."""
    port = chat_server.port  # type: ignore[attr-defined]
    app = make_app(port, nick=None)
    async with app.run_test(size=(100, 24)) as pilot:
        await until(pilot, lambda: dialog_ready(app), "the nickname dialog")
        field = app.screen.query_one("#nick-input", Input)
        field.post_message(events.Paste("\x1b[2Jevil"))
        reason = app.screen.query_one("#nick-reason")
        await until(pilot, lambda: "Paste not inserted" in str(reason.render()), "the refusal")
        assert "control characters" in str(reason.render())
        assert field.value == "" and "\x1b" not in " ".join(rows(field))
        field.post_message(events.Paste("dora\n"))  # a name copied with its newline
        await until(pilot, lambda: field.value == "dora", "the name pasted")
