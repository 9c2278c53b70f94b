"""The chat UI takes messages up to the protocol's MAX_MESSAGE_BYTES, and no more (Pilot,
real server on loopback)."""

from __future__ import annotations

from richchat.core.protocol import frames as f
from richchat.core.protocol.text import MAX_MESSAGE_BYTES
from tests.client.servers import next_frame, registered
from tests.tui.test_app import SIZE, make_app, plain, until

LONGEST = "é" * (MAX_MESSAGE_BYTES // 2)


async def test_longest_message_sent_longer_one_kept(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        app.input.value = LONGEST + "x"
        await pilot.press("enter")
        await until(pilot, lambda: any("Message too long" in s for s in plain(app, "lobby")),
                    "the refusal")
        notice = next(s for s in plain(app, "lobby") if "Message too long" in s)
        assert f"({MAX_MESSAGE_BYTES + 1} bytes; at most {MAX_MESSAGE_BYTES})" in notice
        assert app.input.value == LONGEST + "x"
        app.input.value = LONGEST
        await pilot.press("enter")
        got = await next_frame(bob, f.RoomMessage)
        assert isinstance(got, f.RoomMessage) and got.text == LONGEST
        await until(pilot, lambda: app.input.value == "", "the input cleared")
    await bob.close()


async def test_too_long_msg_and_me_are_kept_not_dropped_by_the_server(
    chat_server: object,
) -> None:
    """``/msg bob TEXT`` and ``/me TEXT`` are held to the same limit as a typed message: the
    server dropped the whole line (``line_too_long``) and the text was gone from the input."""
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        for line in (f"/msg bob {LONGEST}x", f"/me {LONGEST}x"):
            before = len(plain(app, "lobby"))
            app.input.value = line
            await pilot.press("enter")
            await until(pilot, lambda n=before: len(plain(app, "lobby")) > n, "an answer")
            said = plain(app, "lobby")[before:]
            assert len(said) == 1 and "Message too long" in said[0], said
            assert app.input.value == line  # kept, to shorten it
        app.input.value = f"/msg bob {LONGEST}"  # the longest: sent
        await pilot.press("enter")
        got = await next_frame(bob, f.Private)
        assert isinstance(got, f.Private) and got.text == LONGEST
    await bob.close()
