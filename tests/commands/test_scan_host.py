"""``richchat scan HOST``: what is no host is a usage error (exit 2) said in one line, and never
handed to the resolver. Found by the fifth exploratory pass: ``richchat scan 127.0.0.1:5050``
(the form ``join`` and ``send`` take, and the one scan's own "join it" line prints) asked DNS
for the name ``127.0.0.1:5050`` and said ``cannot resolve host '127.0.0.1:5050': [Errno -2]
Name or service not known`` (exit 4, "unknown host"); so did a network (``127.0.0.1/32``), an
empty host and ``::1:15102``."""

from __future__ import annotations

import subprocess

import pytest


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("127.0.0.1:5050", "-p 5050"),
        ("localhost:5050", "-p 5050"),
        ("[::1]:5050", "-p 5050"),
        ("::1:15102", "[::1]"),
        ("127.0.0.1/32", "one host"),
        ("", "empty"),
        (" ", "empty"),
    ],
)
def test_what_is_no_host_is_a_usage_error(
    cli: list[str], cli_env: dict[str, str], host: str, words: str
) -> None:
    done = subprocess.run(
        [*cli, "scan", host, "-p", "1", "--no-probe"],
        env=cli_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    lines = [l for l in done.stderr.splitlines() if l.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) <= 2 and lines[0].startswith("error: ") and words in done.stderr, lines
    assert "resolve" not in done.stderr and not done.stdout


def test_a_bracketed_address_is_still_scanned(cli: list[str], cli_env: dict[str, str]) -> None:
    done = subprocess.run(
        [*cli, "scan", "[::1]", "-p", "1", "--no-probe", "--json"],
        env=cli_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"address": "::1"' in done.stdout
