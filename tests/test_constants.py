"""Texts and numbers shared by the server, the client and the scanner, defined once."""

from __future__ import annotations


def test_the_welcome_line_is_built_and_read_in_one_place() -> None:
    from richchat.core.constants import welcome_server_name, welcome_text

    line = welcome_text("Office chat (2nd floor)")
    assert welcome_server_name(line) == "Office chat (2nd floor)"
    assert welcome_server_name(f"*** {line}. 3 user(s) online.") == "Office chat (2nd floor)"
    assert welcome_server_name(f"SRV|{line}") == "Office chat (2nd floor)"
    assert welcome_server_name("*** Welcome to the jungle") is None
