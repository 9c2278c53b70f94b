"""What ``richchat send`` writes on stderr: the progress line of a throttled send, refusals,
and the closing summary. Plain text (no rich import: ``send`` starts fast)."""

from __future__ import annotations

import contextlib
import os
import time
from typing import TextIO

from richchat.core.send import RefusedLine, SendResult, SendStatus


def duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``3725`` -> ``1h02m``; ``9`` -> ``9s``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def progress_text(status: SendStatus) -> str:
    """One line: delivered, waiting, the server's rate and the time left at that rate."""
    parts = [f"sending to {status.target}: {status.delivered} delivered"]
    if status.waiting:
        parts.append(f"{status.waiting} {'to go' if status.input_done else 'queued'}")
    text = ", ".join(parts)
    if status.rate:
        text += f"; server limit {status.rate:g} lines/s"
    left = status.seconds_left()
    if left is not None:
        text += f", {'' if status.input_done else 'at least '}{duration(left)} left"
    return text


class ProgressLine:
    """A status line redrawn in place on a terminal (``\\r`` + erase), at most 4 times a
    second; :meth:`clear` removes it before anything else is written."""

    def __init__(self, stream: TextIO, interval: float = 0.25) -> None:
        self.stream = stream
        self.interval = interval
        self._shown = False
        self._last = 0.0

    def update(self, status: SendStatus) -> None:
        now = time.monotonic()
        if self._shown and now - self._last < self.interval:
            return
        self._last = now
        self._shown = True
        text = progress_text(status)
        with contextlib.suppress(OSError, ValueError):  # a wrapped line cannot be redrawn
            columns = os.get_terminal_size(self.stream.fileno()).columns
            if columns > 1:  # 0: size unknown
                text = text[: columns - 1]
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


def refused_text(refused: RefusedLine) -> str:
    return f"error: line {refused.line} not sent: {refused.reason}"


def summary_text(result: SendResult) -> str:
    plural = "" if result.delivered == 1 else "s"
    text = f"sent {result.delivered} message{plural} to {result.target} as {result.nick}"
    if result.tls:
        text += f" over {result.tls.replace('TLSv', 'TLS ')}"
    if result.refused:
        n = len(result.refused)
        text += f"; {n} line{'' if n == 1 else 's'} refused"
    return text


def interrupted_text(status: SendStatus) -> str:
    plural = "" if status.delivered == 1 else "s"
    text = f"interrupted: {status.delivered} message{plural} delivered to {status.target or '?'}"
    if status.unconfirmed:
        text += f", {status.unconfirmed} more sent but not confirmed"
    if status.refused:
        text += f", {len(status.refused)} refused"
    return text
