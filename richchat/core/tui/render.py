"""Pure rendering of chat lines into rich Text (no Textual here; easy to test).

User-supplied text is always appended as plain :class:`rich.text.Text`, never parsed as
markup, so ``[bold]`` or escape sequences (already neutralised by the protocol) show literally.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from datetime import datetime

from rich.text import Text

NICK_COLOURS = (
    "bright_cyan", "bright_green", "bright_magenta", "bright_yellow", "bright_blue",
    "cyan", "green", "magenta", "yellow", "dark_orange", "orchid", "spring_green3",
)
SYSTEM_STYLE = "italic grey62"
ERROR_STYLE = "bold red"
MENTION_STYLE = "on grey23"
TIME_STYLE = "grey50"

TimeFormat = Callable[[int], str]


def default_time_format(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000).strftime("%H:%M")


def nick_colour(name: str) -> str:
    """A stable colour per nickname (crc32, not hash(): stable across processes)."""
    return NICK_COLOURS[zlib.crc32(name.casefold().encode("utf-8")) % len(NICK_COLOURS)]


def mentions(text: str, nick: str | None) -> bool:
    """Whether ``text`` mentions ``nick`` as a whole word (case-insensitive)."""
    if not nick:
        return False
    pattern = r"(?<![\w])" + re.escape(nick) + r"(?![\w])"
    return re.search(pattern, text, re.IGNORECASE) is not None


def _stamp(ts_ms: int, fmt: TimeFormat) -> Text:
    return Text(fmt(ts_ms) + " ", style=TIME_STYLE)


def message_line(ts_ms: int, name: str, text: str, me: str | None, fmt: TimeFormat) -> Text:
    line = _stamp(ts_ms, fmt)
    line.append(f"<{name}>", style=f"bold {nick_colour(name)}")
    line.append(" ")
    line.append(text)  # plain append: never markup
    if me and name.casefold() != me.casefold() and mentions(text, me):
        line.stylize(MENTION_STYLE)
        line.stylize("bold", len(line) - len(text))
    return line


def action_line(ts_ms: int, name: str, text: str, me: str | None, fmt: TimeFormat) -> Text:
    line = _stamp(ts_ms, fmt)
    line.append("* ", style="bold")
    line.append(name, style=f"bold {nick_colour(name)}")
    line.append(" ")
    line.append(text, style="italic")
    if me and name.casefold() != me.casefold() and mentions(text, me):
        line.stylize(MENTION_STYLE)
    return line


def private_line(ts_ms: int, sender: str, to: str, text: str, me: str | None,
                 fmt: TimeFormat) -> Text:
    line = _stamp(ts_ms, fmt)
    if me and sender.casefold() == me.casefold():
        line.append(f"-> *{to}*", style=f"bold {nick_colour(to)}")
    else:
        line.append(f"*{sender}*", style=f"bold {nick_colour(sender)}")
    line.append(" ")
    line.append(text)
    return line


def system_line(ts_ms: int, text: str, fmt: TimeFormat, *, error: bool = False) -> Text:
    line = _stamp(ts_ms, fmt)
    line.append("-!- " if error else "--- ", style=ERROR_STYLE if error else "grey50")
    line.append(text, style=ERROR_STYLE if error else SYSTEM_STYLE)
    return line
