"""The server's log on stderr: through rich's handler on a terminal (markup off: user text is
never markup), one plain line per record otherwise (a file, a pipe, journald), so that a log
file is never wrapped at 80 columns and every record can be found with grep. Either way,
control characters in a record (a newline in something a client sent) are shown escaped, so
one record is one line and nobody can forge another."""

from __future__ import annotations

import logging
import os
import sys

#: C0 controls and DEL, shown escaped (``\n``, ``\x1b``)
_CONTROLS = {c: repr(chr(c))[1:-1] for c in (*range(0x20), 0x7F)}


class OneLineFormatter(logging.Formatter):
    """``2026-12-01 11:25:46 INFO message``: the message on one line, its control characters
    escaped (a traceback, ours, keeps its lines)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).translate(_CONTROLS)


class EscapeControls(logging.Filter):
    """A record's message with its control characters escaped, for either handler (rich
    would print a newline as a new line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = message.translate(_CONTROLS)
        if escaped != message or record.args:
            record.msg, record.args = escaped, None
        return True


def setup_logging(level: str = "info") -> None:
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))
        handler = RichHandler(console=console, markup=False, rich_tracebacks=False,
                              show_path=False, log_time_format="%X")
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(OneLineFormatter())
    handler.addFilter(EscapeControls())
    root = logging.getLogger("richchat")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
