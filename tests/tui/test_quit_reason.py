"""``/quit REASON`` in the chat UI tells the others the reason, as it does for netcat users.

Found by the tenth exploratory pass: ``/quit lunch`` in the chat UI was announced as
``yan left (quit: bye)``: the UI sent ``bye`` whatever was typed (the netcat ``/quit lunch``
says ``lunch``)."""

from __future__ import annotations

from richchat.core.client import ChatClient
from richchat.core.protocol import frames as f
from tests.client.servers import chat_server, next_frame
from tests.tui.test_app import SIZE, make_app, type_line, until
from tests.tui.test_commands import run, state

__all__ = ["chat_server"]


def test_the_quit_reason_is_kept() -> None:
    assert run(state(), "/quit back at 2").quit_reason == "back at 2"
    assert run(state(), "/QUIT   lunch ").quit_reason == "lunch"
    out = run(state(), "/quit")
    assert out.quit and out.quit_reason == ""
    assert run(state(), "/quit a\x1b[2Jb").quit_reason == "a\u241b[2Jb"  # as the server shows it


async def _quit_as_watched(port: int, line: str) -> str:
    watcher = ChatClient("127.0.0.1", port)
    await watcher.connect()
    await watcher.register("watcher")
    app = make_app(port)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await type_line(pilot, line)
        await until(pilot, lambda: not app.is_running, "exit")
    left = await next_frame(watcher, f.UserLeft)
    assert isinstance(left, f.UserLeft) and left.name == "alice"
    await watcher.close()
    return left.reason


async def test_others_read_the_reason(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    assert await _quit_as_watched(port, "/quit lunch, back at 2") == "quit: lunch, back at 2"
    assert await _quit_as_watched(port, "/quit") == "quit: bye"  # as Ctrl+C says it
