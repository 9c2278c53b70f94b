"""Pure rendering into rich Text (no Textual here; easy to test): chat lines, the conversation
list, the topic line and the header.

User-supplied text is always appended as plain :class:`rich.text.Text`, never parsed as
markup, so ``[bold]`` or escape sequences (already neutralised by the protocol) show literally.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import datetime

from rich.text import Text

from richchat.core.trust.connect import Security
from richchat.core.tui.state import (
    ChatLine,
    ChatState,
    Conversation,
    SharedFile,
    mentions,
    same_name,
)

__all__ = [
    "action_line", "chat_line", "conversation_list", "default_time_format", "file_choice",
    "file_line", "mentions", "message_line", "nick_colour", "private_line", "security_text",
    "status_line", "system_line", "topic_line", "transfer_line",
]

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


def _stamp(ts_ms: int, fmt: TimeFormat) -> Text:
    return Text(fmt(ts_ms) + " ", style=TIME_STYLE)


def _mentioned(name: str, text: str, me: str | None) -> bool:
    return me is not None and not same_name(name, me) and mentions(text, me)


def _message(ts_ms: int, name: str, text: str, mention: bool, fmt: TimeFormat) -> Text:
    line = _stamp(ts_ms, fmt)
    line.append(f"<{name}>", style=f"bold {nick_colour(name)}")
    line.append(" ")
    line.append(text)  # plain append: never markup
    if mention:
        line.stylize(MENTION_STYLE)
        line.stylize("bold", len(line) - len(text))
    return line


def _action(ts_ms: int, name: str, text: str, mention: bool, fmt: TimeFormat) -> Text:
    line = _stamp(ts_ms, fmt)
    line.append("* ", style="bold")
    line.append(name, style=f"bold {nick_colour(name)}")
    line.append(" ")
    line.append(text, style="italic")
    if mention:
        line.stylize(MENTION_STYLE)
    return line


def _private(ts_ms: int, sender: str, to: str, text: str, mine: bool, fmt: TimeFormat) -> Text:
    line = _stamp(ts_ms, fmt)
    if mine:
        line.append(f"-> *{to}*", style=f"bold {nick_colour(to)}")
    else:
        line.append(f"*{sender}*", style=f"bold {nick_colour(sender)}")
    line.append(" ")
    line.append(text)
    return line


def message_line(ts_ms: int, name: str, text: str, me: str | None, fmt: TimeFormat) -> Text:
    return _message(ts_ms, name, text, _mentioned(name, text, me), fmt)


def action_line(ts_ms: int, name: str, text: str, me: str | None, fmt: TimeFormat) -> Text:
    return _action(ts_ms, name, text, _mentioned(name, text, me), fmt)


def private_line(ts_ms: int, sender: str, to: str, text: str, me: str | None,
                 fmt: TimeFormat) -> Text:
    return _private(ts_ms, sender, to, text, same_name(sender, me), fmt)


def system_line(ts_ms: int, text: str, fmt: TimeFormat, *, error: bool = False) -> Text:
    line = _stamp(ts_ms, fmt)
    line.append("-!- " if error else "--- ", style=ERROR_STYLE if error else "grey50")
    line.append(text, style=ERROR_STYLE if error else SYSTEM_STYLE)
    return line


def file_line(line: ChatLine, fmt: TimeFormat) -> Text:
    """A shared file: ``10:42 [1] alice shared report.pdf (1.2 MB, sha256 3f2a9c0d1e2f)
    /get 1``. The name is the sender's (control characters neutralised by the protocol),
    shown as plain text."""
    from richchat.core.protocol.filenames import human_size, short_sha

    shared = line.file
    out = _stamp(line.ts, fmt)
    number = shared.number if shared is not None else 0
    out.append(f"[{number}] ", style="bold")
    if line.mine:
        out.append("you", style="bold")
    else:
        out.append(line.name, style=f"bold {nick_colour(line.name)}")
    out.append(" shared ")
    out.append(line.text, style="bold underline")
    if shared is not None:
        out.append(f" ({human_size(shared.size)}, sha256 {short_sha(shared.sha256)})",
                   style=TIME_STYLE)
        out.append(f"  /get {number}", style="italic")
    if line.mention:
        out.stylize(MENTION_STYLE)
    return out


def file_choice(shared: SharedFile) -> Text:
    """A file in the F4 list: ``[1] report.pdf  1.2 MB  from alice  sha256 3f2a9c0d1e2f``."""
    from richchat.core.protocol.filenames import human_size, short_sha

    out = Text(f"[{shared.number}] ", style="bold")
    out.append(shared.name, style="bold")
    out.append(f"  {human_size(shared.size)}  from ")
    out.append(shared.sender, style=f"bold {nick_colour(shared.sender)}")
    out.append(f"  sha256 {short_sha(shared.sha256)}", style=TIME_STYLE)
    return out


def transfer_line(direction: str, name: str, done: int, total: int, rate: float | None) -> Text:
    """A transfer under way: ``⇡ report.pdf  45%  [#########...........]  12 MB/s``."""
    from richchat.core.protocol.filenames import human_size

    fraction = done / total if total else 1.0
    filled = int(20 * fraction)
    out = Text(f"{direction} ", style="bold")
    out.append(name, style="bold")
    out.append(f"  {fraction:4.0%}  ")
    out.append("#" * filled, style="green")
    out.append("." * (20 - filled), style=TIME_STYLE)
    out.append(f"  {human_size(done)} of {human_size(total)}")
    if rate:
        out.append(f"  {human_size(int(rate))}/s", style=TIME_STYLE)
    return out


def chat_line(line: ChatLine, fmt: TimeFormat) -> Text:
    """One line of a conversation (whether it mentions us or is ours was decided on arrival)."""
    if line.kind == "message":
        return _message(line.ts, line.name, line.text, line.mention, fmt)
    if line.kind == "action":
        return _action(line.ts, line.name, line.text, line.mention, fmt)
    if line.kind == "private":
        return _private(line.ts, line.name, line.to, line.text, line.mine, fmt)
    if line.kind == "file":
        return file_line(line, fmt)
    return system_line(line.ts, line.text, fmt, error=line.kind == "error")


#: the conversation list's heading, longest first: the first that fits the panel is shown
LIST_HEADINGS = ("Conversations", "Chats")


def conversation_list(state: ChatState, width: int | None = None) -> Text:
    """The left panel: a heading, then one line per conversation (the one on screen marked).

    Each line stays one line (a folded line would also shift what a click picks): at
    ``width`` cells the heading is the longest of :data:`LIST_HEADINGS` that fits, and a
    line too long ends with an ellipsis, never broken inside a word."""
    heading = next((h for h in LIST_HEADINGS if width is None or len(h) <= width),
                   LIST_HEADINGS[-1])
    out = Text(heading + "\n", style="bold underline", no_wrap=True, overflow="ellipsis")
    for conv in state.conversations.values():
        active = conv.key == state.active
        entry = Text("▶ " if active else "  ")
        count = f" ({conv.unread})" if conv.unread else ""
        title = Text(conv.title, style="bold reverse" if active else "")
        if width is not None:  # the title gives way first: the unread count stays
            title.truncate(max(width - len(entry) - len(count), 1), overflow="ellipsis")
        entry.append_text(title)
        if count:
            entry.append(count, style="bold red" if conv.mentioned else "bold yellow")
        out.append_text(entry)
        out.append("\n")
    return out


def topic_line(conv: Conversation, new_below: int) -> Text:
    """The line above the chat: the conversation's title, its topic, unseen lines below."""
    topic = Text(conv.title, style="bold")
    if conv.private:
        topic.append("  private conversation", style="italic")
    elif conv.topic:
        topic.append("  ")
        topic.append(conv.topic)
    if new_below:
        topic.append(f"  ▼ {new_below} new below", style="bold yellow")
    return topic


SECURE_STYLE = "bold green"
#: a connection anyone on the LAN can read: the header says so in a warning style
INSECURE_STYLE = "bold black on yellow"


def security_text(security: Security, *, long: bool) -> Text:
    """``TLS 1.3 · SHA256:AbCdEfGhIjKl… (pinned)`` (long) or ``TLS`` (short); a plaintext
    connection is ``not encrypted`` / ``plain`` in the warning style."""
    if not security.encrypted:
        return Text(" not encrypted " if long else " plain ", style=INSECURE_STYLE)
    return Text(security.describe() if long else "TLS", style=SECURE_STYLE)


def status_line(*, server: str, address: str, nick: str | None, state: str, detail: str,
                width: int, security: Security | None = None) -> Text:
    """The header, made to fit ``width`` cells: nickname, the connection's security (when
    known) and connection state come first to stay; the address, then the server's name,
    then the long form of the security, then the detail go when space is short."""
    colour = {"connected": "green", "connecting": "yellow"}.get(state, "red")

    def build(with_server: bool, with_address: bool, with_detail: bool, long: bool,
              long_security: bool = True) -> Text:
        line = Text(style="bold")
        if with_server:
            if long:
                line.append("richchat ")
            line.append(server or "?", style="bold cyan")
            if with_address:
                line.append(f" ({address})")
            line.append("  ")
        line.append("nick: " if long else "")
        line.append(nick or "(none)", style="bold")
        line.append("  " if long else " ")
        if security is not None:
            line.append_text(security_text(security, long=long_security and long))
            line.append("  " if long else " ")
        line.append(f"● {state}", style=f"bold {colour}")
        if with_detail and detail:
            line.append(f" ({detail})", style="dim")
        return line

    for line in (
        build(True, True, True, True),
        build(True, False, True, True),
        build(False, False, True, True),
        build(False, False, True, True, long_security=False),
        build(False, False, True, False),
    ):
        if line.cell_len <= width:
            return line
    bare = build(False, False, False, False)
    # room left after nick and state: as much of the detail as fits, else none of it
    line = build(False, False, True, False) if detail and bare.cell_len + 8 <= width else bare
    line.truncate(max(width, 1), overflow="ellipsis")
    return line
