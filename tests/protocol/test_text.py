from __future__ import annotations

import pytest

from richchat.core.protocol import frames as f
from richchat.core.protocol.slash import HelpRequest, SlashError, parse_slash
from richchat.core.protocol.text import fold_name, nick_problem, sanitize_text, validate_room


@pytest.mark.parametrize("name", ["alice", "Bob_2", "δημήτρης", "日本語", "a-b.c", "x" * 24])
def test_valid_nicks(name: str) -> None:
    assert nick_problem(name) is None


@pytest.mark.parametrize(
    "name", ["", "a b", "a|b", "a,b", "a(b", "a)b", "a:b", "a\x00", "a\u202eb", "x" * 25]
)
def test_invalid_nicks(name: str) -> None:
    assert nick_problem(name)


def test_fold_name_nfkc_casefold() -> None:
    assert fold_name("\uff21LICE") == fold_name("alice") == fold_name("ALİCE".replace("İ", "I"))
    assert fold_name("Straße") == fold_name("STRASSE")


def test_rooms_are_canonical() -> None:
    assert validate_room("#Dev") == "dev"
    with pytest.raises(ValueError):
        validate_room("-leading")


@pytest.mark.parametrize("room", ["dev\n", "0\n", "dev\r", "dev\n\n", "dev\nx"])
def test_a_room_name_never_ends_in_a_line_break(room: str) -> None:
    # a regex "$" also matches before a final "\n": hypothesis found CMD_JOIN accepting
    # "0\n" (tests/server/test_dialects.py::test_every_hello_event_line_decodes_and_encodes_back)
    with pytest.raises(ValueError):
        validate_room(room)


def test_sanitize_keeps_printable_text() -> None:
    assert sanitize_text("héllo 世界 🎉") == "héllo 世界 🎉"
    assert sanitize_text("\x1b[2J") == "\u241b[2J"
    # joiners are text (an emoji sequence, a Persian word); the bidi override is not
    assert sanitize_text("\U0001f469\u200d\U0001f4bb \u0645\u06cc\u200c\u0631 \u202e") == (
        "\U0001f469\u200d\U0001f4bb \u0645\u06cc\u200c\u0631 \ufffd")
    assert nick_problem("al\u200dice") is not None


def test_slash_commands() -> None:
    assert parse_slash("/nick bob") == f.SetNick(name="bob")
    assert parse_slash("/me waves", "dev") == f.SendAction(room="dev", text="waves")
    assert parse_slash("/msg bob hi there") == f.SendPrivate(to="bob", text="hi there")
    assert parse_slash("/help") == HelpRequest()
    err = parse_slash("/nope")
    assert isinstance(err, SlashError) and err.code == "unknown_command"
    bad = parse_slash("/nick a b")
    assert isinstance(bad, SlashError) and bad.code == "name_invalid"
