"""``richchat trust list``: the pinned servers as a :class:`~richchat.core.sheet.Sheet`, so
that an address (``[fe80::1]:5050`` included) or a fingerprint is never split across lines
when it fits the width: a table when it fits whole, else a list, one ``header: value`` a
line (a table of folding columns would cut the fingerprint, the value people compare)."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.text import Text

from richchat.core.sheet import Col, Sheet
from richchat.core.trust.known import Pin


def pins_sheet(pins: list[Pin], path: Path) -> Sheet:
    sheet = Sheet(Text(f"Pinned servers ({path})"),
                  [Col("server", keep=True), Col("key fingerprint", keep=True),
                   Col("first seen (UTC)", keep=True)],
                  box=box.SIMPLE_HEAD, fold=False)
    for p in pins:
        sheet.rows.append([Text(p.key), Text(p.fingerprint), Text(p.first_seen)])
    if not pins:
        sheet.caption = "no server pinned yet"
    return sheet
