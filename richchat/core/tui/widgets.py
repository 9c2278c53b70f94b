"""Widgets of the chat screen: the input line, the conversation list, the nickname dialog."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from richchat.core.protocol.text import nick_problem


class ChatInput(Input):
    """The input line. A multi-line paste is handed to the app instead of being cut."""

    class MultiLinePaste(Message):
        def __init__(self, lines: list[str]) -> None:
            super().__init__()
            self.lines = lines

    def _on_paste(self, event: events.Paste) -> None:
        # Textual calls the ``_on_paste`` of every class along the MRO: Input's own handler
        # inserts a one-line paste after this one, so this one must not (calling super() here
        # inserted every paste twice). prevent_default() stops Input's for a multi-line paste.
        if "\n" in event.text or "\r" in event.text:
            event.stop()
            event.prevent_default()
            self.post_message(self.MultiLinePaste(event.text.splitlines()))


class ConversationList(Static):
    """The list of conversations; clicking a line switches to that conversation."""

    class Picked(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def on_click(self, event: events.Click) -> None:
        # line 0 is the heading; line n is conversation n - 1
        if event.y >= 1:
            self.post_message(self.Picked(event.y - 1))


class NickScreen(ModalScreen[str | None]):
    """Ask for a nickname; shows why the previous one was refused."""

    DEFAULT_CSS = """
    NickScreen { align: center middle; }
    NickScreen > Vertical {
        width: 64; height: auto; border: thick $accent; padding: 1 2; background: $surface;
    }
    NickScreen Label { width: 100%; margin-bottom: 1; }
    NickScreen #nick-reason { color: $error; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, reason: str | None, suggestion: str = "") -> None:
        super().__init__()
        self.reason = reason
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("Choose a nickname"), id="nick-title")
            yield Label(Text(self.reason or ""), id="nick-reason")
            yield Input(value=self.suggestion, placeholder="nickname", id="nick-input")
            yield Label(Text("Enter to confirm, Esc to stay without a name (/nick later)"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip()
        problem = nick_problem(name)
        if problem:
            self.query_one("#nick-reason", Label).update(Text(problem))
            return
        self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)
