"""The Textual chat UI of ``richchat join``, in three parts: ``state`` (the client state, pure),
``session`` (the connection) and ``app`` (the Textual app). Only ``app`` and ``widgets``
import textual; ``ChatApp`` is imported from here on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from richchat.core.tui.app import ChatApp

__all__ = ["ChatApp"]


def __getattr__(name: str) -> Any:
    if name == "ChatApp":
        from richchat.core.tui.app import ChatApp

        return ChatApp
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
