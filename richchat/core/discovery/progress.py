"""A one-line live status on stderr while discovery runs (only used on a terminal)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.status import Status
from rich.text import Text


class StatusProgress:
    """Shows the latest step of each source: ``advertised: ... | arp: ...``."""

    def __init__(self, console: Console) -> None:
        self._steps: dict[str, str] = {}
        self._status = Status(Text("discovering..."), console=console)

    def update(self, source: str, text: str) -> None:
        self._steps[source] = text
        self._status.update(Text(" | ".join(f"{k}: {v}" for k, v in self._steps.items())))

    def __enter__(self) -> StatusProgress:
        self._status.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._status.stop()
