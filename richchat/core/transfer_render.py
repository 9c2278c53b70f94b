"""What ``send --file`` and ``get`` write on stderr: a progress bar on a terminal, and the
closing summary. Plain text, no rich import (``send`` starts fast)."""

from __future__ import annotations

import contextlib
import os
import time
from typing import TextIO

from richchat.core.protocol.filenames import human_size, short_sha
from richchat.core.protocol.text import sanitize_text
from richchat.core.sharing import FetchResult, ShareResult

BAR = 24


def bar_text(stage: str, done: int, total: int, rate: float | None) -> str:
    """``uploading [#########...............]  38%  12.0 MB of 31.5 MB  110 MB/s``"""
    fraction = done / total if total else 1.0
    filled = int(BAR * fraction)
    text = (f"{stage:<11} [{'#' * filled}{'.' * (BAR - filled)}] {fraction:4.0%}  "
            f"{human_size(done)} of {human_size(total)}")
    if rate:
        text += f"  {human_size(int(rate))}/s"
    return text


class ProgressBar:
    """A bar redrawn in place (``\\r`` + erase) at most 8 times a second; :meth:`clear`
    removes it before anything else is written."""

    def __init__(self, stream: TextIO, interval: float = 0.125) -> None:
        self.stream = stream
        self.interval = interval
        self._shown = False
        self._last = 0.0
        self._stage = ""
        self._since = (0.0, 0)  # when the stage began, and its bytes then

    def update(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self._stage:
            self._stage, self._since = stage, (now, done)
        elif done < total and self._shown and now - self._last < self.interval:
            return
        self._last = now
        self._shown = True
        start, base = self._since
        rate = (done - base) / (now - start) if now - start > 0.2 else None
        text = bar_text(stage, done, total, rate)
        with contextlib.suppress(OSError, ValueError):
            columns = os.get_terminal_size(self.stream.fileno()).columns
            if columns > 1:
                text = text[: columns - 1]
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


def share_summary(result: ShareResult, address: str) -> str:
    where = f"with {result.target[1:]}" if result.target.startswith("@") else (
        f"in {result.target}")
    held = ""
    if result.size == 0:
        # nothing to upload, and nothing to deduplicate: what matters is that it is empty
        held = " (an empty file)"
    elif result.held and result.waited:
        held = (" (the server had it already: another upload of the same bytes ended while "
                "this one waited for it)")
    elif result.held:
        held = " (the server had it already)"
    elif result.resumed_from:
        held = f" (resumed at {human_size(result.resumed_from)})"
    room = "" if result.target.startswith("@") or result.target == "lobby" else (
        f" --room {result.target}")
    return (f"shared {sanitize_text(result.name)} ({human_size(result.size)}, sha256 "
            f"{short_sha(result.sha256)}) {where} as {result.nick}{held}: file {result.id}\n"
            f"fetch it with: richchat get {address} {result.id}{room} --nick NAME")


def fetch_summary(result: FetchResult) -> str:
    resumed = f", resumed at {human_size(result.resumed_from)}" if result.resumed_from else ""
    # the path may be the user's own -o name: a line break or an escape sequence in it is
    # shown as a symbol (as in error lines), never printed raw
    return (f"saved {sanitize_text(str(result.path))} ({human_size(result.size)}, sha256 "
            f"{short_sha(result.sha256)} verified{resumed})")
