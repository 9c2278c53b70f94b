"""Untrusted file names made safe (pure: no file system here; the real download directory
tests are in tests/client/test_download_safety.py)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from richchat.core.protocol.filenames import (
    MAX_NAME_BYTES,
    human_size,
    numbered,
    parse_size,
    safe_file_name,
    split_ext,
)

#: the issue's list, and more of the same families
HOSTILE: list[tuple[str, str]] = [
    ("../x", "x"),
    ("/etc/passwd", "passwd"),
    ("C:\\evil", "evil"),
    ("C:evil", "C_evil"),  # a drive-relative path: no ':' survives
    ("a\x1b[2Jb", "a[2Jb"),  # ESC removed: the rest is harmless text
    ("a\u241b[2Jb", "a[2Jb"),  # the control picture the chat protocol shows instead of ESC
    ("con.txt", "_con.txt"),
    ("CON", "_CON"),
    ("Com1.tar.gz", "_Com1.tar.gz"),
    ("lpt9", "_lpt9"),
    ("aux .txt", "_aux.txt"),
    ("n/evil", "evil"),
    ("..\\..\\windows\\system32\\x.dll", "x.dll"),
    ("..", "file"),
    ("...", "file"),
    ("", "file"),
    ("/", "file"),
    ("\x00\x01\x02", "file"),
    (".bashrc", "bashrc"),  # no hidden files
    ("evil.exe.", "evil.exe"),  # Windows drops trailing dots: say so
    ("  spaced  ", "spaced"),
    ("rep\u202eort\u200b.pdf", "report.pdf"),  # bidi override, zero-width space
    ('what?<is>*this*|"x".txt', "what__is__this___x_.txt"),
    ("a:b", "a_b"),  # an NTFS stream
    ("line\nbreak\r.txt", "linebreak.txt"),
    ("-rf", "_-rf"),  # never read as an option by the command that opens it
    ("--json.txt", "_--json.txt"),
    ("../-x", "_-x"),
]


@pytest.mark.parametrize(("name", "expected"), HOSTILE)
def test_hostile_names_become_plain_base_names(name: str, expected: str) -> None:
    assert safe_file_name(name) == expected


def test_a_300_character_name_is_cut_with_its_extension_kept() -> None:
    got = safe_file_name("a" * 296 + ".pdf")
    assert got.endswith(".pdf") and len(got.encode()) <= MAX_NAME_BYTES
    multibyte = safe_file_name("é" * 300 + ".txt")
    assert multibyte.endswith(".txt") and len(multibyte.encode()) <= MAX_NAME_BYTES
    assert multibyte.encode().decode()  # cut on a character boundary


def test_an_empty_result_gets_the_fallback() -> None:
    assert safe_file_name("../..", fallback="file-3f2a9c0d1e2f") == "file-3f2a9c0d1e2f"
    assert safe_file_name("\x1b", fallback="..") == "file"  # a bad fallback is cleaned too


@given(st.text(max_size=400))
def test_any_name_is_safe(name: str) -> None:
    got = safe_file_name(name)
    assert got and got not in (".", "..")
    assert "/" not in got and "\\" not in got and ":" not in got
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in got)
    assert not got.startswith((".", " ")) and not got.endswith((".", " "))
    assert len(got.encode("utf-8")) <= MAX_NAME_BYTES
    stem = got.split(".", 1)[0].casefold()
    assert stem not in ("con", "prn", "aux", "nul") and not (
        stem[:3] in ("com", "lpt") and len(stem) == 4 and stem[3].isdigit())
    assert safe_file_name(got) == got  # clean names stay as they are


def test_numbered_alternatives() -> None:
    assert numbered("report.pdf", 1) == "report (1).pdf"
    assert numbered("a.tar.gz", 2) == "a (2).tar.gz"
    assert numbered("README", 3) == "README (3)"
    assert numbered("report.pdf", 0) == "report.pdf"


def test_numbered_names_stay_within_the_limit() -> None:
    """A cleaned name of the full 200 bytes plus ' (1)' was 204 bytes (the docs: at most
    200); the stem gives way, on a character boundary, the extension and number kept."""
    for stem in ("a" * 300, "é" * 150, "b " * 150):
        for ext in ("", ".pdf", ".tar.gz"):
            name = safe_file_name(stem + ext)
            assert len(name.encode()) <= MAX_NAME_BYTES
            for n in (1, 42, 9999):
                alt = numbered(name, n)
                assert len(alt.encode()) <= MAX_NAME_BYTES, (alt, len(alt.encode()))
                assert alt.endswith(f" ({n}){ext}") and alt[0] == name[0]
    assert numbered("short.txt", 7) == "short (7).txt"
    assert split_ext("x." + "y" * 40) == ("x." + "y" * 40, "")


def test_sizes() -> None:
    assert parse_size("100MiB") == parse_size("100M") == 100 * 1024 * 1024
    assert parse_size("1G") == 1024**3
    assert parse_size("1GB") == 10**9
    assert parse_size("512k") == 512 * 1024
    assert parse_size("1048576") == 1048576
    with pytest.raises(ValueError):
        parse_size("lots")
    assert human_size(999) == "999 B"
    assert human_size(1_234_567) == "1.2 MB"
    assert human_size(100 * 1024 * 1024) == "105 MB"
