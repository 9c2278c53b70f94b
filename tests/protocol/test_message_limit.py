"""One longest message: MAX_MESSAGE_BYTES of text fits in a client line in every frame."""

from __future__ import annotations

from richchat.commands import send as send_command
from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import MAX_LINE_BYTES, encode
from richchat.core.protocol.text import (
    MAX_MESSAGE_BYTES,
    MAX_NICK_LEN,
    MAX_ROOM_LEN,
    message_problem,
    message_size,
)

# CJK extension B: a letter, 4 bytes in UTF-8, unchanged by NFKC and case-folding: the
# longest room and nickname in bytes
ROOM = "\U00020000" * MAX_ROOM_LEN
NICK = "\U00020001" * MAX_NICK_LEN


def test_the_longest_message_fits_every_frame() -> None:
    text = "é" * (MAX_MESSAGE_BYTES // 2)
    assert message_size(text) == MAX_MESSAGE_BYTES
    frames: list[f.Frame] = [
        f.Say(text=text),
        f.SayRoom(room=ROOM, text=text),
        f.SendAction(room=ROOM, text=text),
        f.SendPrivate(to=NICK, text=text),
    ]
    assert len(encode(frames[2])) - len(text.encode()) == len("CMD_ME||\n") + 4 * MAX_ROOM_LEN
    for frame in frames:
        line = encode(frame)[:-1]  # the terminator does not count
        assert len(line) <= MAX_LINE_BYTES, (frame.tag, len(line))
    for raw in (f"/msg {NICK} {text}", f"/me {text}", f"//{text}"):
        assert len(raw.encode()) <= MAX_LINE_BYTES


def test_message_problem_counts_neutralised_bytes() -> None:
    assert message_problem("x" * MAX_MESSAGE_BYTES) is None
    assert message_problem("x" * (MAX_MESSAGE_BYTES + 1)) == (
        f"message too long ({MAX_MESSAGE_BYTES + 1} bytes; at most {MAX_MESSAGE_BYTES})"
    )
    # ESC is shown as U+241B (3 bytes): the server relays that, so that is what counts
    assert message_size("\x1b") == 3
    assert message_problem("\x1b" * (MAX_MESSAGE_BYTES // 3 + 1)) is not None


def test_send_help_states_the_same_limit() -> None:
    # the command module is import-free for a fast start, so it keeps a copy of the number
    assert send_command.MAX_MESSAGE_BYTES == MAX_MESSAGE_BYTES
