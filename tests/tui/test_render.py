"""Pure rendering of chat lines: literal text, mentions, colours, wide characters."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.text import Text

from richchat.core.tui import render
from richchat.core.tui.state import Conversations, private_key


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


def test_conversations_cycle_and_private_keys() -> None:
    convs = Conversations()
    convs.get_room("dev")
    convs.get_private("Bob")
    assert convs.keys() == ["lobby", "dev", private_key("bob")]
    assert convs.cycle(1) == "dev"
    assert convs.cycle(-1) == "@bob"
    convs.active = "dev"
    convs.remove("dev")
    assert convs.active == "lobby"
    convs.remove("lobby")
    assert "lobby" in convs.items  # the lobby always stays
