"""Look-alike names: the UTS #39 confusable skeleton and the mixed-script rule. Pure.

Two names are the same name when their *skeletons* are equal (Unicode Technical Standard #39,
section 4): every character is replaced by the prototype it can be confused with (Cyrillic
``а`` and Greek ``α`` by Latin ``a``, ``m`` by ``rn``, ...), between two NFD normalisations.
The mapping comes from Unicode's ``confusables.txt``; the script of a character from
``Scripts.txt``. Both reach us through the ``confusable-homoglyphs`` package, which ships them
as JSON (no table of look-alikes is written here).

That package stores each confusables.txt line ``source ; prototype`` in both directions (for
``is_confusable``), so the direction is recovered from the shape of the data: each prototype
with the sources that map to it forms a star. A multi-character string is always a prototype
(sources are single code points), a character with two or more neighbours is a prototype, and
a character whose only neighbour is a prototype is a source. What is left are pairs of two
characters confusable only with each other, and there either one can stand for both: the
smaller code point is used. Equal skeletons then mean exactly what they mean in UTS #39 (checked
against ICU's SpoofChecker for every assigned code point: the partitions agree except where the
Unicode versions differ).

The data (900 KB of JSON, about 0.15 s to load and index) is loaded on first use and only the
derived table is kept: a server loads it when it warms up, ``richchat send`` never does.
"""

from __future__ import annotations

import functools
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from typing import cast

#: directional marks the package's data has around right-to-left characters (display only)
_MARKS = dict.fromkeys(map(ord, "\u200e\u200f"))

#: scripts that any name may mix with (punctuation, digits, combining marks)
_NEUTRAL = frozenset({"COMMON", "INHERITED", "Unknown"})

#: script sets that real names mix: Japanese, Chinese with Bopomofo, Korean (UTS #39 5.2,
#: "Highly Restrictive"), each with Latin
_CJK_SETS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
#: scripts whose letters look like Latin ones: never mixed with Latin (UTS #39 5.2,
#: "Moderately Restrictive" allows Latin with any one other script but these)
_LATIN_LOOKALIKES = frozenset({"CYRILLIC", "GREEK"})


@functools.cache
def _prototypes() -> dict[str, str]:
    """Source character -> prototype string (NFD), from the package's confusables data.

    The package's JSON file is read here rather than through its module, which would keep the
    whole parsed file (8 MB in a server) for as long as the process lives; only the table
    (6,000 entries) is kept.
    """
    import json
    from importlib.resources import files

    confusables_data = json.loads(
        files("confusable_homoglyphs").joinpath("confusables.json").read_text(encoding="utf-8")
    )
    neighbours: defaultdict[str, set[str]] = defaultdict(set)
    for key, entries in confusables_data.items():
        a = key.translate(_MARKS)
        for entry in entries:
            b = entry["c"].translate(_MARKS)
            if a and b and a != b:
                neighbours[a].add(b)
                neighbours[b].add(a)
    target: dict[str, str] = {}
    for ch, near in neighbours.items():
        if len(ch) != 1:
            continue  # a multi-character string is a prototype
        strings = [n for n in near if len(n) > 1]
        if strings:
            target[ch] = strings[0]
        elif len(near) == 1:
            (other,) = near
            if len(neighbours[other]) > 1:
                target[ch] = other  # the hub of a star: the prototype
            elif other < ch:
                target[ch] = other  # a pair confusable only with each other
    # a prototype's own characters may be the larger half of such a pair: map them too
    for ch, proto in target.items():
        mapped = "".join(target.get(c, c) for c in proto)
        target[ch] = unicodedata.normalize("NFD", mapped)
    return target


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of ``text``: equal skeletons mean the strings look alike.

    Not for display (it mixes scripts freely): only for comparing.
    """
    table = _prototypes()
    nfd = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(table.get(c, c) for c in nfd))


@functools.cache
def _script_lookup() -> Callable[[str], str]:
    from confusable_homoglyphs.categories import alias

    return cast("Callable[[str], str]", alias)


def script(ch: str) -> str:
    """The Unicode script of one character, as the package names it (``LATIN``, ``GREEK``,
    ``COMMON``...)."""
    return _script_lookup()(ch)


def scripts(text: str) -> list[str]:
    """The scripts of the letters of ``text`` in order of first use (Common and Inherited
    characters, such as digits, ``-_.`` and combining marks, belong to any script)."""
    seen: dict[str, None] = {}
    for ch in text:
        name = script(ch)
        if name not in _NEUTRAL:
            seen[name] = None
    return list(seen)


def mixed_script_problem(text: str) -> str | None:
    """Which scripts ``text`` mixes the way no real name does (``Latin and Greek letters ('Ω'
    is Greek)``), or None.

    One script is always fine (``Алиса``, ``李雷``, ``Zoë``). Latin with one other script is
    fine unless that script is Cyrillic or Greek, whose letters look like Latin ones
    (``Ωmega``, ``pаypal``); Han with Hiragana/Katakana, Bopomofo or Hangul (and Latin) is
    fine, as Japanese, Chinese and Korean names mix them.
    """
    found = scripts(text)
    if len(found) <= 1:
        return None
    kinds = frozenset(found)
    if any(kinds <= allowed for allowed in _CJK_SETS):
        return None
    if len(kinds) == 2 and "LATIN" in kinds and not kinds & _LATIN_LOOKALIKES:
        return None
    # name the odd one out: the look-alike script next to Latin, else the second script
    other = next((k for k in found if k != "LATIN"), found[1]) if "LATIN" in kinds else found[1]
    base = "LATIN" if "LATIN" in kinds else found[0]
    culprit = next(ch for ch in text if script(ch) == other)
    return f"{base.title()} and {other.title()} letters ({culprit!r} is {other.title()})"
