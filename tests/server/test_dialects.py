"""The renderers' hand-written fast lines are the frame models' own bytes.

Hot paths (a message to 1,000 clients) render without building pydantic models; these
properties check, over every valid field value, that each such line is exactly what
``encode()`` of the frame model gives, and that every line a hello client can receive decodes
to a known frame that encodes back to the same bytes. No sockets.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import decode_server_line, encode
from richchat.core.protocol.text import nick_problem, room_problem, sanitize_text, validate_room
from richchat.core.server import events as ev
from richchat.core.server.dialects import hello, raw, seed
from richchat.core.server.hub import user_entry

names = st.text(min_size=1, max_size=24).filter(lambda s: nick_problem(s) is None).map(
    lambda s: f.SetNick(name=s).name  # the NFKC form the server keeps
)
rooms = st.text(min_size=1, max_size=32).filter(lambda s: room_problem(s) is None).map(
    validate_room
)
texts = st.text(max_size=200).map(sanitize_text).filter(lambda s: "\n" not in s)
ids = st.integers(min_value=0, max_value=2**53)
kinds = st.sampled_from(["msg", "action"])
hosts = st.sampled_from(["127.0.0.1", "10.0.0.5", "::1", "fe80::1%eth0"])
ports = st.integers(min_value=0, max_value=65535)


@given(rooms, ids, ids, names, kinds, texts)
def test_hello_message_line_is_the_frame_models_bytes(
    room: str, id: int, ts: int, name: str, kind: str, text: str
) -> None:
    model = f.Action if kind == "action" else f.RoomMessage
    expected = encode(model(room=room, id=id, ts=ts, name=name, text=text))
    assert hello.message_line(room, id, ts, name, kind, text) == expected


@given(names, kinds, texts)
def test_seed_message_line_is_the_frame_models_bytes(name: str, kind: str, text: str) -> None:
    if kind == "action":
        expected = encode(f.Notice(text=f"* {name} {text}"))
    else:
        expected = encode(f.ChatMessage(name=name, text=text))
    assert seed.message_line(name, kind, text) == expected


def _roundtrips(data: bytes) -> None:
    for line in data.decode().splitlines():
        frame = decode_server_line(line)
        assert not isinstance(frame, f.Unknown), line
        assert encode(frame) == (line + "\n").encode(), line


@given(rooms, names, names, texts, hosts, ports, ids)
def test_every_hello_event_line_decodes_and_encodes_back(
    room: str, name: str, other: str, text: str, host: str, port: int, n: int
) -> None:
    r = hello.HelloRenderer()
    entry = user_entry(name, host, port)
    events: list[bytes | None] = [
        r.message(ev.Message(room, n, n, name, "msg", text, None)),
        r.message(ev.Message(room, n, n, name, "action", text, None)),
        r.joined(ev.Joined(room, name, entry, None)),
        r.parted(ev.Parted(room, name, text, None)),
        r.topic_set(ev.TopicSet(room, name, text)),
        r.registered(ev.Registered(name, entry, None)),
        r.departed(ev.Departed(name, text, None)),
        r.renamed(ev.Renamed(name, other, entry, None)),
        r.private(ev.PrivateMessage(n, name, other, text, None, None), True),
        r.notice(text),
        r.failure("not_in_room", text),
        r.name_is(name),
        r.pong("abc-1.2"),
    ]
    for data in events:
        assert data is not None
        _roundtrips(data)


@given(names, kinds, texts, rooms)
def test_raw_lines_are_single_lines_of_text(name: str, kind: str, text: str, room: str) -> None:
    data = raw.RawRenderer().message(ev.Message(room, 1, 1, name, kind, text, None))
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert b"\x1b" not in data
