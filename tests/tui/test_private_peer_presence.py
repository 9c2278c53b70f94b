"""The chat UI's private conversation says when its other user leaves the chat, and when
they come back.

Found by the tenth exploratory pass: bob quit while alice had a private conversation with
him open; nothing in it said so (the lobby's notice was in another window), its user list
still showed bob, and alice's next line there came back as ``no user named bob is online``."""

from __future__ import annotations

from richchat.core.protocol import frames as f
from tests.client.servers import chat_server, next_frame, registered
from tests.tui.test_app import SIZE, make_app, plain, type_line, until

__all__ = ["chat_server"]


async def test_the_private_conversation_says_its_user_left_and_came_back(
    chat_server: object,
) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    bob = await registered(port, "bob")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await type_line(pilot, "/msg bob are you there?")
        got = await next_frame(bob, f.Private)
        assert isinstance(got, f.Private) and got.text == "are you there?"
        await until(pilot, lambda: app.chat.active == "@bob", "the private conversation")
        await until(pilot, lambda: set(app.chat.current.users) == {"alice", "bob"}, "users")
        await bob.quit("lunch")
        await until(pilot, lambda: any("bob left the chat (quit: lunch)" in s
                                       for s in plain(app, "@bob")), "bob's departure")
        assert set(app.chat.current.users) == {"alice"}
        assert app.chat.current.unread == 0  # a notice on screen, not a message
        bob = await registered(port, "bob")
        await until(pilot, lambda: any("bob is online again" in s for s in plain(app, "@bob")),
                    "bob's return")
        assert set(app.chat.current.users) == {"alice", "bob"}
        await type_line(pilot, "welcome back")
        got = await next_frame(bob, f.Private)
        assert isinstance(got, f.Private) and got.text == "welcome back"
    await bob.close()
