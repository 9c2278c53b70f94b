"""Pure rendering of chat lines: literal text, mentions, colours, wide characters."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.text import Text

from richchat.core.tui import render
from richchat.core.tui.state import ChatLine, ChatState, Conversation


def fixed(_ts: int) -> str:
    return "12:00"


@pytest.mark.parametrize(
    ("text", "nick", "expected"),
    [
        ("hi alice", "alice", True),
        ("Hi ALICE!", "alice", True),
        ("malice aforethought", "alice", False),
        ("alice_2 is here", "alice", False),
        ("@alice: look", "alice", True),
        ("anything", None, False),
    ],
)
def test_mentions(text: str, nick: str | None, expected: bool) -> None:
    assert render.mentions(text, nick) is expected


def test_message_line_is_literal_and_highlights_mentions() -> None:
    line = render.message_line(0, "bob", "[bold]hey[/bold] alice", "alice", fixed)
    assert line.plain == "12:00 <bob> [bold]hey[/bold] alice"
    assert any(span.style == render.MENTION_STYLE for span in line.spans)
    own = render.message_line(0, "alice", "talking about alice", "alice", fixed)
    assert not any(span.style == render.MENTION_STYLE for span in own.spans)


def test_nick_colour_is_stable_and_case_insensitive() -> None:
    assert render.nick_colour("Bob") == render.nick_colour("bob")
    assert render.nick_colour("bob") in render.NICK_COLOURS


def test_private_and_system_lines() -> None:
    out = render.private_line(0, "alice", "bob", "psst", "alice", fixed)
    assert out.plain == "12:00 -> *bob* psst"
    incoming = render.private_line(0, "bob", "alice", "psst", "alice", fixed)
    assert incoming.plain == "12:00 *bob* psst"
    assert render.system_line(0, "x", fixed, error=True).plain == "12:00 -!- x"


def test_wide_characters_keep_alignment() -> None:
    console = Console(file=io.StringIO(), width=30, color_system=None, legacy_windows=False)
    line = render.message_line(0, "李", "你好世界🙂 ok", None, fixed)
    lines = console.render_lines(line, console.options.update_width(30))
    widths = {sum(seg.cell_length for seg in row) for row in lines}
    assert widths == {30}  # every rendered row is exactly the width: no overflow or gaps
    assert Text("你好").cell_len == 4


def test_chat_lines_use_what_was_decided_on_arrival() -> None:
    mention = ChatLine(0, "message", "hi alice", name="bob", mention=True)
    assert any(span.style == render.MENTION_STYLE for span in render.chat_line(mention, fixed).spans)
    plain = ChatLine(0, "message", "hi alice", name="bob")
    assert not any(span.style == render.MENTION_STYLE
                   for span in render.chat_line(plain, fixed).spans)
    mine = ChatLine(0, "private", "psst", name="alice", to="bob", mine=True)
    assert render.chat_line(mine, fixed).plain == "12:00 -> *bob* psst"
    theirs = ChatLine(0, "private", "psst", name="bob", to="alice")
    assert render.chat_line(theirs, fixed).plain == "12:00 *bob* psst"
    assert render.chat_line(ChatLine(0, "action", "waves", name="bob"), fixed).plain == (
        "12:00 * bob waves"
    )
    assert render.chat_line(ChatLine(0, "error", "no"), fixed).plain == "12:00 -!- no"
    assert render.chat_line(ChatLine(0, "notice", "yes"), fixed).plain == "12:00 --- yes"


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (100, "richchat Office (10.0.0.5:5050)  nick: alice  ● disconnected (reconnecting in 2.1 s)"),
        (70, "richchat Office  nick: alice  ● disconnected (reconnecting in 2.1 s)"),
        (60, "nick: alice  ● disconnected (reconnecting in 2.1 s)"),
        (45, "alice ● disconnected (reconnecting in 2.1 s)"),
        (38, "alice ● disconnected (reconnecting in…"),
        (24, "alice ● disconnected"),
        (12, "alice ● dis…"),
    ],
)
def test_status_line_keeps_nick_and_state_when_narrow(width: int, expected: str) -> None:
    line = render.status_line(server="Office", address="10.0.0.5:5050", nick="alice",
                              state="disconnected", detail="reconnecting in 2.1 s", width=width)
    assert line.plain == expected
    assert line.cell_len <= width


def test_topic_line_and_conversation_list() -> None:
    state = ChatState(conversations={
        "lobby": Conversation("lobby", topic="standup at 10"),
        "dev": Conversation("dev", unread=2),
        "@bob": Conversation("@bob", peer="Bob", unread=1, mentioned=True),
    })
    assert render.topic_line(state.current, 0).plain == "#lobby  standup at 10"
    assert render.topic_line(state.conversations["@bob"], 3).plain == (
        "@Bob  private conversation  ▼ 3 new below"
    )
    listing = render.conversation_list(state)
    assert listing.plain.splitlines() == ["Conversations", "▶ #lobby", "  #dev (2)", "  @Bob (1)"]
    assert any(span.style == "bold red" for span in listing.spans)  # the mention's count


def test_conversation_list_fits_its_width_without_folding() -> None:
    state = ChatState(conversations={
        "lobby": Conversation("lobby"),
        "@x": Conversation("@x", peer="averyveryverylongnick12", unread=12),
    })
    assert render.conversation_list(state, width=13).plain.splitlines()[0] == "Conversations"
    listing = render.conversation_list(state, width=11).plain.splitlines()
    # the short heading; the title gives way to the unread count, with an ellipsis
    assert listing == ["Chats", "▶ #lobby", "  @av… (12)"]
    assert all(len(line) <= 11 for line in listing)
