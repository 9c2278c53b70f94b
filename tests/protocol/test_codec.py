"""LineDecoder: any chunking, any line ending, length limit with recovery, bad UTF-8."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import (
    InvalidFrame,
    LineDecoder,
    LineTooLong,
    decode_client_line,
    decode_server_line,
)


def feed_all(decoder: LineDecoder, chunks: list[bytes]) -> list[str | LineTooLong]:
    out: list[str | LineTooLong] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out


def test_all_line_endings() -> None:
    d = LineDecoder()
    assert d.feed(b"a\nb\r\nc\rd\n") == ["a", "b", "c", "d"]


def test_crlf_split_across_chunks_is_one_terminator() -> None:
    d = LineDecoder()
    assert d.feed(b"one\r") == ["one"]
    assert d.feed(b"\ntwo\n") == ["two"]


def test_telnet_cr_nul_is_one_terminator_even_split_across_chunks() -> None:
    """RFC 854: telnet sends a carriage return as CR NUL; the NUL ends the line with the CR
    instead of starting the next one (``␀hello``)."""
    d = LineDecoder()
    assert d.feed(b"alice\r\x00hello\r\x00") == ["alice", "hello"]
    assert d.feed(b"one\r") == ["one"]
    assert d.feed(b"\x00two\r\x00") == ["two"]
    assert d.feed(b"a\x00b\n\x00c\n") == ["a\x00b", "\x00c"]  # a NUL anywhere else is text


def test_empty_lines_are_kept() -> None:
    assert LineDecoder().feed(b"\n\r\n\n") == ["", "", ""]


def test_oversized_line_reported_once_and_skipped() -> None:
    d = LineDecoder(max_line=8)
    out = feed_all(d, [b"ok\n", b"x" * 5, b"x" * 5, b"x" * 50, b"tail\nnext\n"])
    assert out == ["ok", LineTooLong(8), "next"]


def test_oversized_line_in_one_chunk() -> None:
    d = LineDecoder(max_line=4)
    assert d.feed(b"toolong\nfine\n") == [LineTooLong(4), "fine"]


def test_line_at_exact_limit_is_accepted() -> None:
    assert LineDecoder(max_line=4).feed(b"abcd\n") == ["abcd"]


def test_invalid_utf8_is_replaced() -> None:
    assert LineDecoder().feed(b"caf\xc3\xa9 \xff\n") == ["café \ufffd"]


def test_utf8_split_across_chunks() -> None:
    d = LineDecoder()
    assert d.feed(b"caf\xc3") == []
    assert d.feed(b"\xa9\n") == ["café"]


def test_eof_returns_unterminated_line() -> None:
    d = LineDecoder()
    assert d.feed(b"partial") == []
    assert d.eof() == ["partial"]
    assert d.eof() == []


lines_st = st.lists(
    st.text(
        alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
        max_size=40,
    ),
    max_size=20,
)


@given(lines_st, st.sampled_from([b"\n", b"\r\n", b"\r"]), st.data())
def test_any_chunking_gives_the_same_lines(
    lines: list[str], eol: bytes, data: st.DataObject
) -> None:
    # after a bare CR a leading NUL is the rest of telnet's CR NUL terminator, not text
    assume(eol != b"\r" or not any(line.startswith("\x00") for line in lines))
    blob = b"".join(line.encode() + eol for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=10)))
    chunks = [blob[a:b] for a, b in zip([0, *cuts], [*cuts, len(blob)], strict=False)]
    assert feed_all(LineDecoder(max_line=10_000), chunks) == lines


@pytest.mark.parametrize(
    ("host", "where", "ncat"),
    [
        ("10.0.0.1", "10.0.0.1:5050", "10.0.0.1 5050"),
        ("::1", "[::1]:5050", "::1 5050"),
        ("::ffff:10.0.0.1", "10.0.0.1:5050", "10.0.0.1 5050"),  # IPv4 on a dual-stack port
    ],
)
def test_the_tls_port_notice_names_the_address_reached(host: str, where: str,
                                                       ncat: str) -> None:
    from richchat.core.protocol.codec import TLS_PORT_NOTICE_PREFIX, tls_port_notice

    line = tls_port_notice(host, 5050)
    assert line.startswith(TLS_PORT_NOTICE_PREFIX) and line.endswith(b"\n")
    assert line.count(b"\n") == 1 and not line.startswith(b"\x16")
    assert f"richchat join --tls {where}, or ncat --ssl {ncat}\n".encode() in line


@pytest.mark.parametrize("line", [
    "HELLO|\u2081|fuzz",  # a subscript one: a digit to str.isdigit, not to int()
    "HELLO|" + "9" * 5000 + "|fuzz",  # past int()'s 4,300 digits
    "HELLO|\u0661|fuzz",  # an Arabic-Indic one: int() takes it, the wire does not
    "HELLO|1|srv|role=server|flood=1/\u00b2",
    "HELLO|1|srv|role=server|flood=\u00b2/3",
    "HELLO|1|srv|role=server|files=\u00b2",
    "HELLO|1|srv|role=server|users=\u00b2",
    "RMSG|lobby|\u00b2|1|alice|hi",
    "RMSG|lobby|1|" + "1" * 5000 + "|alice|hi",
])
def test_numbers_int_would_refuse_are_invalid_never_an_exception(line: str) -> None:
    """Found by the fuzz test (seed 141732242): ``HELLO|₁|...`` passed the digits check
    (str.isdigit) and int() raised ValueError out of the decoder; the server logged "Fatal
    error: protocol.data_received() call failed" and dropped the connection, and a client
    meeting such a number in a server's HELLO died the same way. Only ASCII digits, at most
    19 of them, are numbers on the wire."""
    for decode in (decode_client_line, decode_server_line):
        frame = decode(line)  # must not raise
        if isinstance(frame, f.Hello):  # a malformed option is as if absent
            assert frame.version == 1
            assert (frame.flood_rate, frame.flood_burst, frame.file_max, frame.users) == (
                None, None, None, None)
        else:
            assert isinstance(frame, (InvalidFrame, f.Unknown, f.SayRoom)), frame


def test_a_hello_with_a_spaced_agent_is_refused_in_words_not_a_regex() -> None:
    """Found by the exploratory pass: ``HELLO|1|My Chat 0.3`` was answered
    ``ERR|bad_frame|String should match pattern '^[\\w./+\\-]+$'`` (pydantic's text)."""
    from richchat.core.protocol.codec import InvalidFrame, decode_client_line

    for line in ("HELLO|1|My Chat 0.3", "HELLO|1|a\x00b"):
        frame = decode_client_line(line)
        assert isinstance(frame, InvalidFrame), frame
        assert frame.code == "bad_frame", frame
        assert frame.reason == ("the agent (HELLO's second field) may hold only letters, "
                                "digits and _ . / + - (no spaces)"), frame
        assert "pattern" not in frame.reason
