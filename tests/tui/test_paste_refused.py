"""A multi-line paste that cannot be sent whole: the line refused goes to the one-line input,
never a newline, never a line already sent; a note says how many were sent and how many after
it were not.

Found by the fourth exploratory pass: in tmux, a bracketed paste of ``ok1 / <2000 bytes> / ok3``
sent ``ok1``, then set the input to ``"ok1\\n<L...>\\nok3"``; the Input widget printed the raw
newlines, which scrolled the terminal and garbled the whole screen (header gone, input bar drawn
many times) until the input was cleared and the window resized. Enter then sent ``ok1`` a
second time, joined with the rest into one message (``ok1␊LLL...``). The same happens to a paste
made while the connection is down (``app.py`` ``on_chat_input_multi_line_paste``:
``self.input.value = "\\n".join(lines)``).
"""

from __future__ import annotations

from textual import events

from richchat.core.protocol import frames as f
from tests.client.servers import next_frame, registered
from tests.tui.test_app import SIZE, make_app, plain, until


async def test_paste_with_a_too_long_line_keeps_no_newline_and_no_sent_line(
    chat_server: object,
) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        app.input.post_message(events.Paste("ok1\n" + "L" * 2000 + "\nok3"))
        got = await next_frame(bob, f.RoomMessage)
        assert isinstance(got, f.RoomMessage) and got.text == "ok1"
        await until(pilot, lambda: any("too long" in s for s in plain(app, "lobby")), "refusal")
        value = app.input.value
        assert "\n" not in value and "\r" not in value, (
            f"the one-line input holds newlines: {value[:40]!r}...")
        assert not value.startswith("ok1"), "the line already sent would be sent again"
        assert value == "L" * 2000
        await until(pilot, lambda: any("Sent 1 of 3 pasted lines" in s and "nor the 1 after it"
                                       in s for s in plain(app, "lobby")), "the note")
    await bob.close()


async def test_a_paste_split_by_any_line_boundary_is_sent_not_dropped(
    chat_server: object,
) -> None:
    """Found by the fifth exploratory pass: a paste that started with a line boundary other
    than a newline (NEL, U+2028, U+2029: ``str.splitlines`` splits at them) was inserted as
    its empty first line; Enter then sent nothing and the paste was gone without a word. A
    line pasted with its newline is sent without a note about "1 pasted lines"."""
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        app.input.post_message(events.Paste("\u2028first\u2029second"))
        for text in ("first", "second"):
            got = await next_frame(bob, f.RoomMessage)
            assert isinstance(got, f.RoomMessage) and got.text == text
        app.input.post_message(events.Paste("\x85nel"))
        got = await next_frame(bob, f.RoomMessage)
        assert isinstance(got, f.RoomMessage) and got.text == "nel"
        app.input.post_message(events.Paste("one line\n"))
        got = await next_frame(bob, f.RoomMessage)
        assert isinstance(got, f.RoomMessage) and got.text == "one line"
        await until(pilot, lambda: any("<alice> one line" in s for s in plain(app, "lobby")),
                    "the echo")
        notes = [s for s in plain(app, "lobby") if "pasted lines" in s]
        assert len(notes) == 1 and "Sent 2 pasted lines" in notes[0], notes
        assert app.input.value == ""
    await bob.close()


async def test_a_pasted_escape_sequence_never_reaches_the_terminal(chat_server: object) -> None:
    """Found by the fifth exploratory pass: a one-line paste kept its control characters in
    the input, and the Input widget drew them raw (ESC [2J clears a real terminal's screen).
    They are neutralised at once, as the protocol would before sending: the same text goes."""
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        app.input.post_message(events.Paste("A\x1b[31mRED\x1b[2J\x00\x07B"))
        await until(pilot, lambda: app.input.value != "", "the paste")
        assert app.input.value == "A\u241b[31mRED\u241b[2J\u2400\u2407B"
        await pilot.pause()
        drawn = [strip.text for strip in app.input.render_lines(app.input.region.reset_offset)]
        assert any("RED" in row for row in drawn)
        assert not any(ch in row for row in drawn for ch in "\x1b\x00\x07")
        await pilot.press("enter")
        got = await next_frame(bob, f.RoomMessage)
        assert isinstance(got, f.RoomMessage) and got.text == "A\u241b[31mRED\u241b[2J\u2400\u2407B"
    await bob.close()
