"""Text rules of the protocol: nicknames, room names, and neutralising control characters."""

from __future__ import annotations

import functools
import re
import unicodedata

MAX_NICK_LEN = 24
MAX_ROOM_LEN = 32
MAX_TOPIC_LEN = 200
#: a quit reason longer than this is cut (leaving always works)
MAX_QUIT_REASON = 200
DEFAULT_ROOM = "lobby"
#: The longest chat message a user may send: its text in UTF-8 bytes (after control
#: characters are neutralised), whatever carries it: ``MSG|``, ``RMSG|room|``, ``CMD_ME|``,
#: ``CMD_MSG|user|``, a netcat line or ``/msg user``. The one definition used by the server,
#: ``richchat send``, the chat UI and the docs. The line limit (``codec.MAX_LINE_BYTES``,
#: 2048) leaves room for the longest frame around it: ``CMD_ME|`` + a 32-character room of
#: up to 4 bytes a character + ``|`` is 136 bytes (a test checks every frame).
MAX_MESSAGE_BYTES = 1900

# Characters that carry meaning in frames, or that make names ambiguous on screen.
_NICK_FORBIDDEN = set("|,():[]*@#!/\\\"' ")

_ROOM_RE = re.compile(r"^[^\W_][\w.\-]*\Z", re.UNICODE)  # \Z: "$" would take "dev\n"


def is_digits(text: str, max_digits: int = 19) -> bool:
    """``text`` is a non-negative integer written with the ASCII digits 0-9 only, at most
    ``max_digits`` of them (19: any 64-bit value): what ``int()`` takes as expected.
    ``str.isdigit`` also says yes to ``²`` and ``₁``, which ``int()`` refuses with a
    ValueError, and to numbers past ``int()``'s limit of 4,300 digits."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def _is_control(ch: str) -> bool:
    cat = unicodedata.category(ch)
    # Cc: C0/C1 controls and DEL. Cf: format chars (bidi overrides, zero-width joiners...).
    return cat in ("Cc", "Cf", "Zl", "Zp")


def _control_picture(ch: str) -> str:
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)  # U+2400 block: visible pictures of C0 controls
    if code == 0x7F:
        return "\u2421"
    return "\ufffd"


#: Format characters that text needs and that neither reorder it nor drive a terminal: the
#: zero-width non-joiner and joiner, which emoji sequences (👩‍💻, 🏳️‍🌈) and scripts such as
#: Persian, Arabic and the Indic ones use between letters. Names never take them
#: (:func:`nick_problem`): an invisible character would make two names look alike.
_TEXT_JOINERS = frozenset("\u200c\u200d")


def sanitize_text(text: str) -> str:
    """Neutralise control characters so relayed text can never drive a terminal.

    Tabs become a space; every other C0/C1 control, DEL, and Unicode format/separator
    character (bidi overrides) becomes a visible placeholder, except the zero-width
    (non-)joiners (:data:`_TEXT_JOINERS`). ESC becomes U+241B, so an ANSI sequence is shown
    as text instead of being interpreted.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == "\t":
            out.append(" ")
        elif ch in _TEXT_JOINERS:
            out.append(ch)
        elif _is_control(ch):
            out.append(_control_picture(ch))
        else:
            out.append(ch)
    return "".join(out)


def message_size(text: str) -> int:
    """The size of a chat message as :data:`MAX_MESSAGE_BYTES` counts it: UTF-8 bytes of the
    text once control characters are neutralised (an ESC becomes 3-byte U+241B)."""
    return len(sanitize_text(text).encode("utf-8"))


def message_problem(text: str) -> str | None:
    """Why ``text`` cannot be sent as one chat message, or None when it can."""
    size = message_size(text)
    if size > MAX_MESSAGE_BYTES:
        return f"message too long ({size} bytes; at most {MAX_MESSAGE_BYTES})"
    return None


def fold_name(name: str) -> str:
    """A nickname or room NFKC-normalised and case-folded (how it is spelt, ignoring case)."""
    return unicodedata.normalize("NFKC", name).casefold()


@functools.lru_cache(maxsize=8192)
def name_key(name: str) -> str:
    """The identity of a nickname or room: two names are the same name when their keys are
    equal. The UTS #39 confusable skeleton of the NFKC-normalised, case-folded name, so that
    ``admin``, ``ADMIN``, ``ＡＤＭＩＮ``, ``аdmin`` (Cyrillic а) and ``ΑDMIN`` (Greek Α) are one
    name. Loads the Unicode confusables data on first use (see :mod:`.confusables`)."""
    from richchat.core.protocol.confusables import skeleton

    # NFKC again after case-folding: folding can produce compatibility characters
    return skeleton(unicodedata.normalize("NFKC", fold_name(name)))


def script_problem(name: str, what: str = "nickname") -> str | None:
    """Why ``name`` cannot be claimed because it mixes scripts (``Ωmega``), or None.

    Checked where a name is claimed (registration, rename, a new room), not on every frame
    that carries a name: names already in history or on an older server still display.
    """
    if name.isascii():
        return None
    from richchat.core.protocol.confusables import mixed_script_problem

    problem = mixed_script_problem(unicodedata.normalize("NFKC", name))
    return f"a {what} cannot mix {problem}; use the letters of one script" if problem else None


def claim_problem(name: str) -> str | None:
    """Why ``name`` cannot be claimed as a nickname (its syntax, or mixed scripts), or None."""
    return nick_problem(name) or script_problem(name)


def nick_problem(name: str) -> str | None:
    """Why ``name`` is not a valid nickname, or None when it is."""
    if not name:
        return "a nickname cannot be empty"
    normal = unicodedata.normalize("NFKC", name)
    if len(normal) > MAX_NICK_LEN:
        return f"a nickname has at most {MAX_NICK_LEN} characters"
    for ch in normal:
        if ch in _NICK_FORBIDDEN:
            shown = "space" if ch == " " else repr(ch)
            return f"a nickname cannot contain {shown}"
        if _is_control(ch) or ch.isspace():
            return "a nickname cannot contain spaces or control characters"
    return None


def validate_nick(name: str) -> str:
    """Return the NFKC form of a valid nickname; raise ValueError with the reason otherwise."""
    problem = nick_problem(name)
    if problem:
        raise ValueError(problem)
    return unicodedata.normalize("NFKC", name)


def room_problem(name: str) -> str | None:
    if not name:
        return "a room name cannot be empty"
    normal = unicodedata.normalize("NFKC", name)
    if len(normal) > MAX_ROOM_LEN:
        return f"a room name has at most {MAX_ROOM_LEN} characters"
    if not _ROOM_RE.match(normal):
        return (
            "a room name starts with a letter or digit and contains only letters, "
            "digits, '.', '-' and '_'"
        )
    return None


def validate_room(name: str) -> str:
    """Return the canonical (NFKC, case-folded) room name; raise ValueError otherwise."""
    name = name.lstrip("#")
    problem = room_problem(name)
    if problem:
        raise ValueError(problem)
    return fold_name(name)
