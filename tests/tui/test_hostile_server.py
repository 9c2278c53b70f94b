"""The chat UI (``richchat join``'s Textual app, driven by Pilot) against hostile servers
(issue #17; the scenarios are tests/client/hostile.py, a real process on loopback).

Whatever the server does, the app keeps taking keys (typed text reaches the input), stays
within a generous memory bound (this process' growth while the scenario plays), says what
went wrong once and clearly (the header's connection detail, or a line in the chat), and shows
text literally: no escape sequence reaches any widget, markup is shown as typed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from richchat.core.client import Address
from richchat.core.protocol.text import fold_name
from richchat.core.tui import ChatApp
from tests.client.servers import Hostile
from tests.memory import rss_growth

SIZE = (100, 30)
#: this process may grow by this much while a scenario plays (100,000 users or messages kept
#: as rendered widgets, or a 10 MB line kept, would be far over)
GROWTH_MB = 120
CONTROLS = ("\x1b", "\x9b", "\x07", "\x08")

Start = Callable[[str], Hostile]


def lobby(app: ChatApp) -> list[str]:
    return [line.text for line in app.chat.conversations["lobby"].lines]


def errors(app: ChatApp) -> list[str]:
    return [line.text for conv in app.chat.conversations.values() for line in conv.lines
            if line.kind == "error"]


def detail(app: ChatApp) -> str:
    return app.session.status.detail


#: scenario -> (what the app must come to, in words and as a condition)
OUTCOMES: dict[str, tuple[str, Callable[[ChatApp], bool]]] = {
    "huge_line": ("registered, and the line after the big one shown",
                  lambda app: app.chat.nick == "alice" and "after the big line" in lobby(app)),
    "bad_utf8": ("registered, invalid bytes shown replaced",
                 lambda app: app.chat.nick == "alice"
                 and any("\ufffd" in text for text in lobby(app))),
    "markup": ("registered, the markup shown as text",
               lambda app: app.chat.nick == "alice"
               and any("[bold red]MARKUP[/bold red]" in text for text in lobby(app))),
    "big_userlist": ("100,000 users listed",
                     lambda app: len(app.chat.conversations["lobby"].users) == 100_001),
    "hello_silence": ("the unanswered nickname said, and a new attempt",
                      lambda app: any("did not answer" in text for text in errors(app))),
    "endless": ("a timeout said, and a new attempt",
                lambda app: "timed out" in detail(app)),
    "endless_after_hello": ("the unanswered nickname said",
                            lambda app: any("did not answer" in text for text in errors(app))),
    "wrong_order": ("not a richchat server, said once",
                    lambda app: app.session.status.state == "failed"),
    "disorder": ("registered under our own name",
                 lambda app: app.chat.nick == "alice" and app.session.registered),
    "flood": ("every message of the flood taken",
              lambda app: bool(lobby(app)) and lobby(app)[-1] == "flood 100000"),
    "tls_silent": ("a timeout said, and a new attempt",
                   lambda app: "timed out" in detail(app)),
}


async def until(pilot: Pilot[None], cond: Callable[[], bool], what: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def shown_text(app: ChatApp) -> str:
    """Everything the widgets would draw: the chat panel's lines, the header, the topic line,
    the conversation list, the user list."""
    parts = [strip.text for strip in app.chat_log.lines]
    parts.append(str(app.status_bar.render()))
    parts.append(str(app.topic_bar.render()))
    parts.append(str(app.conversation_list.render()))
    parts += [str(option.prompt) for option in app.user_list.options[:200]]
    return "\n".join(parts)


@pytest.mark.parametrize("scenario", sorted(OUTCOMES))
@pytest.mark.timeout(300)
async def test_chat_ui(scenario: str, hostile_server: Start) -> None:
    server = hostile_server(scenario)
    what, reached = OUTCOMES[scenario]
    app = ChatApp(Address("127.0.0.1", server.port), "alice", timeout=3, reconnect_base=0.5,
                  reconnect_cap=2.0)
    async with app.run_test(size=SIZE) as pilot:
        with rss_growth() as growth:
            await until(pilot, lambda: reached(app), what, timeout=180)
            # still taking keys: typed text reaches the input
            await pilot.press(*"still here")
            await until(pilot, lambda: app.input.value == "still here", "typed keys", 30)
            if app.session.registered:
                await pilot.press("enter")
                await until(pilot, lambda: any("still here" in t for t in lobby(app)),
                            "our message echoed", 60)
        text = shown_text(app)
        assert not any(c in text for c in CONTROLS), [line for line in text.splitlines()
                                                      if any(c in line for c in CONTROLS)][:5]
        if scenario == "markup":
            assert "[bold red]MARKUP[/bold red]" in text
        if scenario == "big_userlist":  # 1,000 names shown, the rest counted
            users = app.user_list
            await until(pilot, lambda: users.border_title == "Users (100001)",
                        "the count in the user list's title", 60)
            names = [o for o in users.options if not o.disabled]
            assert len(names) == 1000
            assert [o.id for o in names] == [
                fold_name(n) for n in app.chat.conversations["lobby"].sorted_users()[:1000]]
            assert [str(o.prompt) for o in users.options if o.disabled] == [
                "... and 99001 more"]
        assert growth.mb < GROWTH_MB, f"grew {growth.mb:.0f} MB"
        print(f"{scenario}: grew {growth.mb:.0f} MB")
        await app.action_quit_chat()
