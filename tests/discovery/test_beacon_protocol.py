"""The discovery datagram codec (pure): tables of (message, bytes) in both directions."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from richchat.core.protocol.beacon import (
    MAGIC,
    MAX_DATAGRAM,
    Announce,
    BeaconDecodeError,
    Query,
    ServerInfo,
    decode_datagram,
    encode_datagram,
)
from richchat.core.protocol.text import sanitize_text

FP = "SHA256:" + "0123456789+/" * 3 + "abcdefg"
INFO = ServerInfo(server_id="a1b2c3", name="lab chat", port=5050, users=3, tls=True, version=1)

TABLE: list[tuple[Announce | Query, bytes]] = [
    (
        Announce.from_info(INFO),
        b'RCDISCO/1 {"type":"announce","reason":"beacon","id":"a1b2c3","name":"lab chat",'
        b'"port":5050,"users":3,"tls":true,"v":1}',
    ),
    (
        Announce.from_info(INFO, reason="reply", nonce="n0nce"),
        b'RCDISCO/1 {"type":"announce","reason":"reply","nonce":"n0nce","id":"a1b2c3",'
        b'"name":"lab chat","port":5050,"users":3,"tls":true,"v":1}',
    ),
    (Query(nonce="abc"), b'RCDISCO/1 {"type":"query","v":1,"nonce":"abc"}'),
    (
        Announce.from_info(INFO.model_copy(update={"fingerprint": FP})),
        b'RCDISCO/1 {"type":"announce","reason":"beacon","id":"a1b2c3","name":"lab chat",'
        b'"port":5050,"users":3,"tls":true,"fp":"' + FP.encode() + b'","v":1}',
    ),
]


@pytest.mark.parametrize(("message", "data"), TABLE)
def test_encode(message: Announce | Query, data: bytes) -> None:
    assert encode_datagram(message) == data


@pytest.mark.parametrize(("message", "data"), TABLE)
def test_decode(message: Announce | Query, data: bytes) -> None:
    assert decode_datagram(data) == message


def test_announce_round_trips_server_info() -> None:
    decoded = decode_datagram(encode_datagram(Announce.from_info(INFO)))
    assert isinstance(decoded, Announce)
    assert decoded.info() == INFO


@pytest.mark.parametrize(
    "data", [b"", b"hello", b"\x00\x01\x02", b"HELLO|1|x", b"RCDISCO/2 {}", b"rcdisco/1 {}"]
)
def test_foreign_datagrams_are_not_ours(data: bytes) -> None:
    assert decode_datagram(data) is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"type":"shout"}',
        b'{"type":"query"}',  # no nonce
        b'{"type":"query","nonce":"bad nonce!"}',
        b'{"type":"announce","id":"x","name":"n","port":0,"users":1,"tls":false,"v":1}',
        b'{"type":"announce","id":"x","name":"n","port":5050,"users":-1,"tls":false,"v":1}',
        b'{"type":"announce","id":"x y","name":"n","port":5050,"users":1,"tls":false,"v":1}',
        b'{"type":"announce","id":"x","name":"   ","port":5050,"users":1,"tls":false,"v":1}',
    ],
)
def test_malformed_datagrams_raise(body: bytes) -> None:
    with pytest.raises(BeaconDecodeError):
        decode_datagram(MAGIC + body)


def test_oversized_datagram_is_rejected_both_ways() -> None:
    with pytest.raises(BeaconDecodeError):
        decode_datagram(MAGIC + b" " * MAX_DATAGRAM)
    with pytest.raises(ValueError, match="too large"):
        encode_datagram(Query(nonce="a" * 64).model_copy(update={"nonce": "a" * 2000}))


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    obj = json.loads(encode_datagram(Announce.from_info(INFO))[len(MAGIC):])
    obj["future"] = {"x": 1}
    decoded = decode_datagram(MAGIC + json.dumps(obj).encode())
    assert isinstance(decoded, Announce)
    assert decoded.info() == INFO


def test_control_characters_in_the_name_are_neutralised() -> None:
    data = MAGIC + json.dumps({
        "type": "announce", "id": "x", "name": "evil\x1b[31mred", "port": 1, "users": 0,
        "tls": False, "v": 1,
    }).encode()
    decoded = decode_datagram(data)
    assert isinstance(decoded, Announce)
    assert "\x1b" not in decoded.name
    assert decoded.name.startswith("evil")


#: server names with something visible in them: no character that is blank (or becomes one)
#: after sanitising, so every generated name is a valid one; control characters included
VISIBLE = st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc", "Cf"))
NAMES = st.builds(
    lambda head, body: (head + body)[:64],
    VISIBLE,
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=63),
)


@given(
    name=NAMES,
    port=st.integers(1, 65535),
    users=st.integers(0, 10**6),
    tls=st.booleans(),
    sid=st.from_regex(r"\A[A-Za-z0-9_.\-]{1,64}\Z"),
)
def test_any_valid_announce_round_trips(
    name: str, port: int, users: int, tls: bool, sid: str
) -> None:
    # Every input here is valid (and at most ~330 bytes of JSON): nothing may be refused.
    info = ServerInfo(server_id=sid, name=name, port=port, users=users, tls=tls, version=1)
    assert info.name == sanitize_text(name).strip()
    data = encode_datagram(Announce.from_info(info))
    decoded = decode_datagram(data)
    assert isinstance(decoded, Announce)
    assert decoded.info() == info


def test_a_malformed_fingerprint_hint_makes_the_datagram_invalid() -> None:
    data = MAGIC + json.dumps({"type": "announce", "id": "x", "name": "n", "port": 1,
                               "users": 0, "tls": True, "fp": "SHA256:nope", "v": 1}).encode()
    with pytest.raises(BeaconDecodeError, match="fp"):
        decode_datagram(data)


@pytest.mark.parametrize("name", ["   ", "\t", " \t "])
def test_a_name_blank_after_sanitising_is_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="server name must not be empty"):
        ServerInfo(server_id="x", name=name, port=1, users=0, tls=False, version=1)
