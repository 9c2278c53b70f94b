"""discover with no server found, in a 40-59 column pane (tmux, or piped with COLUMNS=45): the
empty Advertised table kept its 7 columns and folded its headers mid-word ('Nam'/'e',
'Add'/'res'/'s'), as its width check counted cells, never headers. Now a table's headers are
never split mid-word: where they do not fit, the table is a list (which, empty, is its title
and caption). Found by an exploratory pass; failed on a7b4a8f."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from richchat.core.discovery.models import DiscoveryReport
from richchat.core.discovery.render import report_renderable


@pytest.mark.parametrize("width", [40, 45, 50, 56, 60, 70, 80])
def test_headers_of_an_empty_advertised_table_are_not_split(width: int) -> None:
    buf = io.StringIO()
    Console(file=buf, width=width, no_color=True).print(report_renderable(DiscoveryReport(), 2.0))
    head = buf.getvalue().split("no richchat server answered")[0]
    assert "no richchat server answered" in buf.getvalue()
    if "┃" in head:  # a table: every header word whole
        for header in ("Name", "Address", "Port", "Users", "TLS", "Found", "Server"):
            assert header in head, head
