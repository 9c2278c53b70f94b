"""The Textual chat UI of ``richchat join``. Importing this package imports textual."""

from richchat.core.tui.app import ChatApp

__all__ = ["ChatApp"]
