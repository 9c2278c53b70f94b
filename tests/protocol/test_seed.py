"""The seed dialect's own-label rule, as a table and as properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from richchat.core.protocol.seed import strip_own_label
from richchat.core.protocol.text import MAX_NICK_LEN, fold_name, nick_problem


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("alice: hello", "alice", "hello"),
        ("ALICE: hello", "alice", "hello"),
        ("\uff41lice: hello", "alice", "hello"),  # fullwidth a: the same name after NFKC
        ("Straße: hi", "STRASSE", "hi"),  # case-folding, not lower()
        ("alice: alice: twice", "alice", "alice: twice"),  # once only
        ("alice: ", "alice", ""),
        ("bob: i am bob", "alice", "bob: i am bob"),  # someone else's label is text
        ("alice:no space", "alice", "alice:no space"),
        ("alice and me: hi", "alice", "alice and me: hi"),
        (": hi", "alice", ": hi"),
        ("hello alice: hi", "alice", "hello alice: hi"),
        ("plain text", "alice", "plain text"),
        ("", "alice", ""),
    ],
)
def test_strip_own_label(text: str, name: str, expected: str) -> None:
    assert strip_own_label(text, name) == expected


names = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=MAX_NICK_LEN,
).filter(lambda n: nick_problem(n) is None)


@given(names, st.text(max_size=200))
def test_own_label_always_goes(name: str, text: str) -> None:
    assert strip_own_label(f"{name}: {text}", name) == text
    assert strip_own_label(f"{name.upper()}: {text}", name) == (
        text if fold_name(name.upper()) == fold_name(name) else f"{name.upper()}: {text}"
    )


@given(names, names, st.text(max_size=200))
def test_other_label_never_goes(name: str, other: str, text: str) -> None:
    line = f"{other}: {text}"
    if fold_name(other) != fold_name(name):
        assert strip_own_label(line, name) == line
