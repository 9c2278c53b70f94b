"""The server's log on stderr: through rich's handler on a terminal (markup off: user text is
never markup), one plain line per record otherwise (a file, a pipe, journald), so that a log
file is never wrapped at 80 columns and every record can be found with grep. Either way,
control characters in a record (a newline in something a client sent) are shown escaped, so
one record is one line and nobody can forge another."""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time

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


class BackgroundHandler(logging.Handler):
    """One line per record, written to a file descriptor by a thread of its own, so that the
    event loop never waits for its log: a pipe nobody reads (a supervisor that reads stdout
    only, a stopped ``| tee``) filled up after some 64 KiB, the next log line blocked the
    server, and every client with it. At most ``capacity`` lines wait; beyond, records are
    dropped and counted, and the count is logged once the pipe takes lines again. The thread
    writes with ``os.write`` (no Python buffer lock it could hold at exit); at exit, lines
    still waiting get :data:`FLUSH_WAIT` seconds to go out."""

    FLUSH_WAIT = 2.0

    def __init__(self, fd: int, capacity: int = 10_000) -> None:
        os.fstat(fd)  # OSError now if stderr is closed: the caller falls back
        super().__init__()
        self.fd = fd
        self._lines: queue.Queue[bytes] = queue.Queue(capacity)
        self._dropped = 0
        self._count_lock = threading.Lock()
        threading.Thread(target=self._write_lines, name="richchat-log", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
        except Exception:  # logging's own convention: never raise from emit
            self.handleError(record)
            return
        try:
            self._lines.put_nowait(line)
        except queue.Full:
            with self._count_lock:
                self._dropped += 1

    def _write_lines(self) -> None:
        while True:
            line = self._lines.get()
            try:
                self._write(line)
                with self._count_lock:
                    dropped, self._dropped = self._dropped, 0
                if dropped:
                    self._write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} WARNING {dropped} log "
                                f"record(s) dropped: stderr was not being read\n".encode())
            finally:
                self._lines.task_done()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except InterruptedError:
                continue
            except OSError:  # stderr closed or gone: the log is lost, the server goes on
                return

    def flush(self) -> None:
        deadline = time.monotonic() + self.FLUSH_WAIT
        while self._lines.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)


def setup_logging(level: str = "info") -> None:
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))
        handler = RichHandler(console=console, markup=False, rich_tracebacks=False,
                              show_path=False, log_time_format="%X")
    else:
        try:
            handler = BackgroundHandler(sys.stderr.fileno())
        except (AttributeError, OSError, ValueError):  # no file behind stderr (a test's buffer)
            handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(OneLineFormatter())
    handler.addFilter(EscapeControls())
    root = logging.getLogger("richchat")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
