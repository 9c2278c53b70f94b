"""Properties of the decoder and the parsers over arbitrary input (issue #17).

* Any bytes, cut into any chunks, decode to the same events as in one piece, and to what a
  plain reference splitter says (terminators ``\\n``, ``\\r\\n``, bare ``\\r``; a line over the
  limit is one ``LineTooLong`` and is skipped; invalid UTF-8 replaced; the end of the stream
  gives a last unterminated line).
* Nothing raises on any line except the documented results: ``decode_client_line`` gives a
  client frame, ``RawText`` or ``InvalidFrame``; ``decode_server_line`` a server frame or
  ``Unknown``; every dialect's parser a frame, ``InvalidFrame``, a help request or nothing;
  ``parse_slash`` a frame, a help request or a ``SlashError``. Every text that comes out is
  free of control characters.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import (
    CLIENT_FRAMES,
    SERVER_FRAMES,
    InvalidFrame,
    LineDecoder,
    LineTooLong,
    decode_client_line,
    decode_server_line,
)
from richchat.core.protocol.slash import HelpRequest, SlashError, parse_slash
from richchat.core.protocol.text import DEFAULT_ROOM
from richchat.core.server.dialect import Dialect
from richchat.core.server.dialects import PARSERS, HelpCommand

Event = str | LineTooLong

# bytes that make decoding interesting: terminators, UTF-8 lead/continuation bytes, invalid
# bytes, ESC and other controls, the field separator
_SPECIAL = [b"\n", b"\r", b"\r\n", b"\r\x00", b"|", b"\x1b[31m", b"\xc3", b"\xa9", b"\xff", b"\x00",
            b"\xe2\x80\xae", b"\xf0\x9f\x99\x82", b"a", b"MSG|", b"HELLO|1|x"]
blobs = st.lists(
    st.one_of(st.sampled_from(_SPECIAL), st.binary(max_size=12)), max_size=40
).map(b"".join)


def reference(blob: bytes, max_line: int, *, eof: bool) -> list[Event]:
    """What the decoder must produce for ``blob`` in one piece: the definition, written
    plainly (split at every terminator; a last piece is a line only at the end of stream)."""
    parts = re.split(rb"\r\n|\r\x00|\r|\n", blob)
    last = parts.pop()
    out: list[Event] = []
    for part in parts:
        out.append(LineTooLong(max_line) if len(part) > max_line else part.decode("utf-8", "replace"))
    if len(last) > max_line:
        out.append(LineTooLong(max_line))  # reported as soon as the buffer outgrows the limit
    elif eof and last:
        out.append(last.decode("utf-8", "replace"))
    return out


def decode(chunks: list[bytes], max_line: int, *, eof: bool) -> list[Event]:
    decoder = LineDecoder(max_line=max_line)
    out: list[Event] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    if eof:
        out += decoder.eof()
    return out


def cut(blob: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(set(cuts))
    return [blob[a:b] for a, b in zip([0, *points], [*points, len(blob)], strict=False)]


@given(blobs, st.lists(st.integers(0, 600), max_size=30), st.integers(1, 24), st.booleans())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_any_bytes_in_any_chunks_decode_as_in_one_piece(
    blob: bytes, cuts: list[int], max_line: int, eof: bool
) -> None:
    chunks = cut(blob, [c for c in cuts if c <= len(blob)])
    whole = decode([blob], max_line, eof=eof)
    assert decode(chunks, max_line, eof=eof) == whole
    assert decode([blob[i : i + 1] for i in range(len(blob))], max_line, eof=eof) == whole
    assert whole == reference(blob, max_line, eof=eof)


@given(blobs, st.integers(1, 24))
def test_decoder_buffers_at_most_the_limit(blob: bytes, max_line: int) -> None:
    """However long a line without an end, the decoder keeps at most the limit in memory."""
    decoder = LineDecoder(max_line=max_line)
    for i in range(0, len(blob), 7):
        decoder.feed(blob[i : i + 7])
        assert decoder.pending <= max_line


def test_a_never_ending_line_is_reported_once_and_kept_small() -> None:
    decoder = LineDecoder(max_line=2048)
    events: list[Event] = []
    for _ in range(500):  # 500 x 64 KiB = 32 MiB without a terminator
        events += decoder.feed(b"x" * 65536)
        assert decoder.pending <= 2048
    assert events == [LineTooLong(2048)]
    assert decoder.feed(b"\nafter\n") == ["after"]


# ----------------------------------------------------------------------------- parsers

_TAGS = sorted({*CLIENT_FRAMES, *SERVER_FRAMES})
_FIELD = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "lobby", "#Dev", "alice", "ALICE", "аlice", "Ωmega", "1", "-1", "1e3",
                     "99999999999999999999", "a(1.2.3.4:5)", "role=server", "flood=10/30",
                     "flood=1e9/0", "users=-3", "name=\x1b[2J[bold]x", "x" * 300, "\x00",
                     "[red]markup[/]", ":", ",", "a:1,b:2"]),
)
lines = st.one_of(
    st.text(max_size=200),
    st.tuples(st.sampled_from(_TAGS), st.lists(_FIELD, max_size=8)).map(
        lambda t: "|".join([t[0], *t[1]])
    ),
    st.integers(0, 400).map(lambda n: "MSG" + "|" * n),  # a '|' storm
    st.integers(0, 400).map(lambda n: "CMD_USER|" + ",".join(["a(b:1)"] * n)),
)


class Peer:
    """What a dialect parser reads of a connection: its name and current room."""

    def __init__(self, name: str | None, room: str) -> None:
        self.name = name
        self.current_room = room


def _no_controls(frame: object) -> None:
    """Every str field of a decoded frame is free of C0/C1 controls (ESC above all)."""
    if not isinstance(frame, f.Frame) or isinstance(frame, f.Unknown):
        return
    for name, value in frame:
        if isinstance(value, str) and name not in ("kind",):
            assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in value), (name, value)


@given(lines)
@settings(max_examples=500)
def test_decoding_any_line_gives_a_documented_result(line: str) -> None:
    client = decode_client_line(line)
    assert isinstance(client, (f.RawText, InvalidFrame, *CLIENT_FRAMES.values()))
    _no_controls(client)
    server = decode_server_line(line)
    assert isinstance(server, (f.Unknown, *SERVER_FRAMES.values()))
    _no_controls(server)
    for dialect in (Dialect.HELLO, Dialect.SEED, Dialect.RAW):
        for peer in (Peer(None, DEFAULT_ROOM), Peer("alice", "dev")):
            parsed = PARSERS[dialect](line, peer)  # type: ignore[arg-type]
            assert parsed is None or isinstance(
                parsed, (f.Frame, InvalidFrame, HelpCommand)
            ), parsed
            _no_controls(parsed)
    slash = parse_slash("/" + line, "dev")
    assert isinstance(slash, (f.Frame, HelpRequest, SlashError))
    _no_controls(slash)


@given(st.binary(max_size=3000))
@settings(max_examples=300)
def test_decoded_bytes_of_any_kind_parse_without_raising(blob: bytes) -> None:
    """The whole path a server line takes in a client: bytes -> decoder -> frame."""
    for event in decode([blob], 2048, eof=True):
        if isinstance(event, str):
            decode_server_line(event)
            decode_client_line(event)
