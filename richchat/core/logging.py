"""Logging through rich's handler on stderr, markup off (user text is never markup)."""

from __future__ import annotations

import logging
import os


def setup_logging(level: str = "info") -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))
    handler = RichHandler(
        console=console, markup=False, rich_tracebacks=False, show_path=False, log_time_format="%X"
    )
    root = logging.getLogger("richchat")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
