"""Table-driven frame tests in both directions (bytes <-> frames), no network."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import (
    InvalidFrame,
    decode_client_line,
    decode_server_line,
    encode,
)

ALICE = f.UserEntry(name="alice", host="10.0.0.5", port=50432)
BOB6 = f.UserEntry(name="bob", host="::1", port=40100)

SERVER_TABLE: list[tuple[str, f.Frame]] = [
    # Seed frames: byte-exact compatibility contract.
    ("MSG|alice: hi", f.ChatMessage(name="alice", text="hi")),
    ("MSG|alice: a: b | c", f.ChatMessage(name="alice", text="a: b | c")),
    ("SRV|alice joined", f.Notice(text="alice joined")),
    ("ULIST|alice(10.0.0.5:50432),bob([::1]:40100)", f.UserList(users=(ALICE, BOB6))),
    ("ULIST|", f.UserList(users=())),
    # Additions.
    (
        "HELLO|1|richchat-server/0.1.0|name=Lab|users=3|tls=0|features=rooms,priv",
        f.Hello(
            version=1,
            agent="richchat-server/0.1.0",
            name="Lab",
            users=3,
            tls=False,
            features=("rooms", "priv"),
        ),
    ),
    (
        "HELLO|1|richchat-server/0.1.0|role=server|tls=1|fp=SHA256:" + "Ab+/" * 10 + "xyz",
        f.Hello(version=1, agent="richchat-server/0.1.0", role="server", tls=True,
                fingerprint="SHA256:" + "Ab+/" * 10 + "xyz"),
    ),
    (
        "ERR|name_taken|the nickname bob is already in use",
        f.Error(code="name_taken", text="the nickname bob is already in use"),
    ),
    ("YOU|alice", f.You(name="alice")),
    (
        "RMSG|dev|42|1700000000000|alice|hello | world",
        f.RoomMessage(room="dev", id=42, ts=1700000000000, name="alice", text="hello | world"),
    ),
    (
        "ACTION|lobby|7|1700000000000|alice|waves",
        f.Action(room="lobby", id=7, ts=1700000000000, name="alice", text="waves"),
    ),
    (
        "PRIV|1700000000000|alice|bob|psst",
        f.Private(ts=1700000000000, sender="alice", to="bob", text="psst"),
    ),
    ("JOIN|dev|alice(10.0.0.5:50432)", f.UserJoined(room="dev", user=ALICE)),
    ("PART|dev|alice|left", f.UserLeft(room="dev", name="alice", reason="left")),
    ("NICK|alice|alicia", f.NickChanged(old="alice", new="alicia")),
    ("RLIST|dev|alice(10.0.0.5:50432)", f.RoomUsers(room="dev", users=(ALICE,))),
    (
        "ROOMS|lobby:3,dev:1",
        f.RoomList(rooms=(f.RoomInfo(room="lobby", members=3), f.RoomInfo(room="dev", members=1))),
    ),
    ("TOPIC|dev|alice|release friday", f.Topic(room="dev", setter="alice", text="release friday")),
    (
        "BYE|shutdown|Server is shutting down",
        f.Bye(code="shutdown", text="Server is shutting down"),
    ),
    ("PING|123", f.Ping(token="123")),
    ("PONG|123", f.Pong(token="123")),
]

CLIENT_TABLE: list[tuple[str, f.Frame]] = [
    ("CMD_USER|alice", f.SetNick(name="alice")),
    ("MSG|hi there", f.Say(text="hi there")),
    ("MSG|", f.Say(text="")),
    ("HELLO|1|richchat/0.1.0", f.Hello(version=1, agent="richchat/0.1.0")),
    ("RMSG|dev|x|y", f.SayRoom(room="dev", text="x|y")),
    ("CMD_JOIN|dev", f.JoinRoom(room="dev")),
    ("CMD_PART|dev", f.PartRoom(room="dev")),
    ("CMD_ROOMS|", f.ListRooms()),
    ("CMD_TOPIC|dev|new topic", f.SetTopic(room="dev", text="new topic")),
    ("CMD_MSG|bob|psst", f.SendPrivate(to="bob", text="psst")),
    ("CMD_ME|dev|waves", f.SendAction(room="dev", text="waves")),
    ("CMD_WHO|dev", f.Who(room="dev")),
    ("CMD_QUIT|bye", f.Quit(reason="bye")),
]


@pytest.mark.parametrize(("line", "frame"), SERVER_TABLE, ids=[t[0][:30] for t in SERVER_TABLE])
def test_server_frames_both_directions(line: str, frame: f.Frame) -> None:
    assert encode(frame) == (line + "\n").encode()
    assert decode_server_line(line) == frame


@pytest.mark.parametrize(("line", "frame"), CLIENT_TABLE, ids=[t[0][:30] for t in CLIENT_TABLE])
def test_client_frames_both_directions(line: str, frame: f.Frame) -> None:
    assert encode(frame) == (line + "\n").encode()
    assert decode_client_line(line) == frame


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("CMD_USER|bad name", "name_invalid"),
        ("CMD_USER|", "name_invalid"),
        ("CMD_USER|a|b", "name_invalid"),
        ("CMD_JOIN|no spaces", "room_invalid"),
        ("RMSG|only-room", "bad_frame"),  # too few fields: the frame, not its room
        ("CMD_MSG|bob", "bad_frame"),
        ("CMD_TOPIC|dev", "bad_frame"),
        ("CMD_ME|dev", "bad_frame"),
        ("HELLO|x|agent", "bad_frame"),
        ("HELLO|1", "bad_frame"),
        ("PING|bad token!", "bad_frame"),
    ],
)
def test_invalid_client_frames(line: str, code: str) -> None:
    res = decode_client_line(line)
    assert isinstance(res, InvalidFrame)
    assert res.code == code
    assert res.reason


def test_a_ping_token_of_64_characters_is_taken_and_65_refused() -> None:
    """docs/security.md: a ``PING`` token is at most 64 characters (letters, digits, .-_)."""
    longest = "a.-_9" * 12 + "bcde"
    assert len(longest) == 64
    assert decode_client_line(f"PING|{longest}") == f.Ping(token=longest)
    assert encode(f.Ping(token=longest)) == f"PING|{longest}\n".encode()
    too_long = decode_client_line(f"PING|{longest}x")
    assert isinstance(too_long, InvalidFrame) and too_long.code == "bad_frame"
    with pytest.raises(ValidationError):
        f.Ping(token=longest + "x")


@pytest.mark.parametrize(
    "line", ["hello world", "msg|lowercase is text", "/nick bob", "", "|", "NOTAFRAME|x"]
)
def test_non_frames_are_raw_text(line: str) -> None:
    assert decode_client_line(line) == f.RawText(text=line)


@pytest.mark.parametrize(
    "line", ["BOGUS|x", "MSG|no colon", "ULIST|garbage", "RMSG|dev|x|1|a|b", "plain"]
)
def test_unexpected_server_lines_are_unknown(line: str) -> None:
    assert isinstance(decode_server_line(line), f.Unknown)


def test_hello_ignores_unknown_keys_for_forward_compatibility() -> None:
    frame = decode_server_line("HELLO|2|future/9|name=X|colour=blue|bare")
    assert isinstance(frame, f.Hello)
    assert frame.version == 2 and frame.name == "X"


def test_frames_are_immutable() -> None:
    frame = f.Say(text="x")
    with pytest.raises(ValidationError) as info:
        frame.text = "y"  # type: ignore[misc]
    assert [e["type"] for e in info.value.errors()] == ["frozen_instance"]
    assert frame.text == "x"
    assert hash(frame) == hash(f.Say(text="x"))  # frozen models hash by value: usable as keys


def test_text_fields_neutralise_control_characters() -> None:
    frame = f.ChatMessage(name="alice", text="a\x1b[31mb\nc\x9bd\te")
    assert frame.text == "a\u241b[31mb\u240ac\ufffdd e"
    assert encode(frame).count(b"\n") == 1


def test_validated_names_cannot_be_built() -> None:
    with pytest.raises(ValueError):
        f.ChatMessage(name="mal:lory", text="x")
    with pytest.raises(ValueError):
        f.SetNick(name="x" * 25)


@given(st.text(max_size=300))
def test_any_text_round_trips_as_one_line(text: str) -> None:
    frame = f.RoomMessage(room="lobby", id=1, ts=2, name="alice", text=text)
    data = encode(frame)
    assert data.endswith(b"\n") and data.count(b"\n") == 1 and b"\r" not in data
    decoded = decode_server_line(data[:-1].decode())
    assert isinstance(decoded, f.RoomMessage)
    assert decoded.text == frame.text


def test_hello_fingerprint_hint_must_look_like_one() -> None:
    """A malformed fp= is no hint (dropped, not an error: it is advisory only)."""
    for bad in ("fp=", "fp=SHA256:short", "fp=MD5:" + "A" * 43, "fp=SHA256:" + "A" * 42 + "!"):
        frame = decode_server_line(f"HELLO|1|srv/1|role=server|tls=1|{bad}")
        assert isinstance(frame, f.Hello) and frame.tls and frame.fingerprint is None
    with pytest.raises(ValueError):
        f.Hello(version=1, agent="x", fingerprint="SHA256:nope")
