"""Name identity (issue #19): the confusable skeleton key and the mixed-script rule. Pure."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from richchat.core.client import suffixed_nick
from richchat.core.protocol.confusables import mixed_script_problem, skeleton
from richchat.core.protocol.text import (
    MAX_NICK_LEN,
    claim_problem,
    name_key,
    nick_problem,
    script_problem,
)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("admin", "\u0430dmin", True),  # Cyrillic а
        ("admin", "adm\u0456n", True),  # Ukrainian і
        ("admin", "ＡＤＭＩＮ", True),
        ("admin", "\u0391DMIN", True),  # Greek Α
        ("mike", "rnike", True),
        ("admin", "admins", False),
        ("alice", "Алиса", False),
        ("Zoë", "Zoe", False),
    ],
)
def test_name_key_table(a: str, b: str, same: bool) -> None:
    assert (name_key(a) == name_key(b)) is same


def test_skeleton_is_uts39() -> None:
    # the examples of UTS #39 and of the issue
    assert skeleton("p\u0430ypal") == skeleton("paypal")
    assert skeleton("m") == skeleton("rn")
    assert skeleton("ł") == skeleton("l\u0338")  # the prototype of a prototype's character
    assert skeleton("a") != skeleton("b")


@pytest.mark.parametrize(
    "name", ["Алиса", "李雷", "Zoë", "José", "δημήτρης", "山田たろう", "김철수", "Алиса_2", "Mei李",
             "عمر", "x-1.y_2"]
)
def test_single_script_and_real_mixes_are_allowed(name: str) -> None:
    assert mixed_script_problem(name) is None
    assert claim_problem(name) is None


@pytest.mark.parametrize(
    ("name", "script"), [("\u03a9mega", "Greek"), ("p\u0430ypal", "Cyrillic"), ("Ωмега", "Cyrillic")]
)
def test_look_alike_script_mixes_are_refused(name: str, script: str) -> None:
    problem = script_problem(name)
    assert problem is not None and "mix" in problem and script in problem
    assert claim_problem(name) == problem
    assert nick_problem(name) is None  # still a valid name in frames (history, other servers)


def test_suffixed_nick_counts_the_nfkc_form() -> None:
    long = "\ufdfa" * 2  # one code point that NFKC expands to 18
    assert len(unicodedata.normalize("NFKC", suffixed_nick(long, 2))) <= MAX_NICK_LEN
    assert suffixed_nick("Алиса", 2) == "Алиса_2" and claim_problem("Алиса_2") is None


# Names as users type them: letters of any script, digits, marks and a little punctuation.
names = st.text(
    st.characters(categories=("L", "M", "N", "Pd", "Pc"), exclude_characters="|,():[]*@#!/\\\"' "),
    min_size=1,
    max_size=MAX_NICK_LEN,
)


@settings(max_examples=500, deadline=None)
@given(names)
@example("Straße")
@example("İstanbul")
@example("ﬁre")
@example("Jose\u0301")
def test_key_is_stable_under_case_and_normalisation(name: str) -> None:
    key = name_key(name)
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        assert name_key(unicodedata.normalize(form, name)) == key, form
    for changed in (name.lower(), name.upper(), name.casefold(), name.swapcase()):
        assert name_key(changed) == key, changed
