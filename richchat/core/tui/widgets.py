"""Widgets of the chat screen: the header, the topic line, the chat log, the input line, the
conversation list and the nickname dialog. They show what they are given; no chat logic here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import ClassVar, TypeVar

from rich.console import RenderableType
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Input, Label, OptionList, RichLog, Static
from textual.widgets.option_list import Option

from richchat.core.protocol.text import nick_problem, sanitize_text
from richchat.core.trust.connect import Security, UnknownServerKey
from richchat.core.tui import render
from richchat.core.tui.session import Status
from richchat.core.tui.state import MAX_LINES, ChatState, Conversation, SharedFile

#: rows the chat panel keeps per line of MAX_LINES (wrapped lines take several)
ROWS_PER_LINE = 4


class StatusBar(Widget):
    """The header: server, address, nickname and connection state, fitted to the width
    (nickname and state stay on the narrowest screen). While a reconnection is pending it
    counts down to it."""

    DEFAULT_CSS = "StatusBar { height: 1; }"
    server: reactive[str] = reactive("")
    nick: reactive[str | None] = reactive(None)
    status: reactive[Status] = reactive(Status)
    #: what protects the connection (None while not connected)
    security: reactive[Security | None] = reactive(None)

    def __init__(self, address: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.address = address

    def on_mount(self) -> None:
        self.set_interval(0.1, self._tick)

    def _tick(self) -> None:
        if self.status.retry_at is not None:
            self.refresh()  # the countdown

    def watch_status(self, status: Status) -> None:
        self.set_class(status.state != "connected", "-offline")

    def render(self) -> RenderableType:
        status = self.status
        return render.status_line(
            server=self.server, address=self.address, nick=self.nick, state=status.state,
            detail=status.describe(time.monotonic()), width=self.content_size.width,
            security=self.security,
        )


class TopicBar(Widget):
    """The line above the chat: title and topic of the conversation, and how many new lines
    wait below while the user reads older ones."""

    DEFAULT_CSS = "TopicBar { height: 1; }"
    conversation: reactive[Conversation | None] = reactive(None, always_update=True)
    new_below: reactive[int] = reactive(0)

    def render(self) -> RenderableType:
        conv = self.conversation
        return render.topic_line(conv, self.new_below) if conv is not None else Text()


class ChatLog(RichLog):
    """The chat panel: lines wrap to its width (no horizontal scrolling), and are wrapped
    again when the width changes, so lines received in a small window read well once it grows.

    RichLog keeps only the lines as rendered for one width, so this keeps their source too
    (at most as many as a conversation keeps). Wrapping costs about 0.6 ms a line (rich), so a
    full window of 2,000 lines takes a second: the lines are wrapped again once the width has
    stayed the same for ``REWRAP_DELAY`` seconds, not on every step of a window being dragged.
    """

    REWRAP_DELAY = 0.15

    def __init__(self, *, id: str | None = None) -> None:
        # max_lines: the rows drawn are bounded too (a line wraps to a few rows), so a long
        # chat, or a flood, cannot grow the widget without end
        super().__init__(id=id, wrap=True, markup=False, highlight=False, min_width=1,
                         auto_scroll=False, max_lines=MAX_LINES * ROWS_PER_LINE)
        self._source: list[Text] = []
        self._partial = False  # only the end of _source is drawn (see show(draw_last=))
        self._wrapped_at: int | None = None  # the width the lines are wrapped for
        self._rewrap_timer: Timer | None = None
        self._following = True

    @property
    def at_bottom(self) -> bool:
        """Whether the view follows the end of the chat: it was at the bottom when it last
        moved. Not worked out from the scroll position alone: when the panel gets shorter
        (the transfer bar appears under it, the window shrinks) the end moves below a view
        that did not move, and new lines must still be followed."""
        return self._following

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._following = new_value >= self.max_scroll_y - 1

    def show(self, lines: Iterable[Text], *, draw_last: int | None = None) -> None:
        """Replace everything with ``lines``, scrolled to the end; with ``draw_last``, only
        that many of the last lines are drawn now (:meth:`complete` draws the rest)."""
        self._source = list(lines)[-MAX_LINES:]
        self._partial = draw_last is not None and len(self._source) > draw_last
        self._rewrite(to_end=True, last=draw_last if self._partial else None)

    def complete(self) -> None:
        """Draw the whole scrollback if only its end is drawn."""
        if self._partial:
            self._partial = False
            self._rewrite(to_end=self.at_bottom)

    def add(self, line: Text, *, scroll_end: bool) -> None:
        self._source.append(line)
        if len(self._source) > MAX_LINES:
            del self._source[: len(self._source) - MAX_LINES]
        self.write(line, scroll_end=scroll_end)

    def _rewrite(self, *, to_end: bool, last: int | None = None) -> None:
        fraction = self.scroll_y / self.max_scroll_y if self.max_scroll_y else 1.0
        if self.size.width:
            self._wrapped_at = self.size.width
        self.clear()
        for line in self._source if last is None else self._source[-last:]:
            self.write(line, scroll_end=False)
        if to_end or fraction >= 1.0:
            self.scroll_end(animate=False, immediate=True)
        else:
            self.scroll_to(y=round(fraction * self.max_scroll_y), animate=False, immediate=True)

    def on_resize(self, event: events.Resize) -> None:
        # (RichLog's own on_resize runs after this one: Textual calls both)
        if self._following:
            self.scroll_end(animate=False)  # after the layout: the end of the new size
        if self._wrapped_at is None:
            self._wrapped_at = event.size.width  # the first size: RichLog renders what waited
            return
        if self._rewrap_timer is not None:
            self._rewrap_timer.stop()
        self._rewrap_timer = self.set_timer(self.REWRAP_DELAY, self._rewrap)

    def _rewrap(self) -> None:
        self._rewrap_timer = None
        width = self.size.width
        if width and width != self._wrapped_at:
            self._wrapped_at = width
            self._partial = False
            self._rewrite(to_end=self.at_bottom)


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
        # Input's own handler inserts the paste's first line (str.splitlines): a paste with
        # any line boundary str.splitlines knows (NEL, U+2028, U+2029, form feed... not only
        # newlines) goes to the app, or one that starts with one was inserted as nothing.
        # Control characters are neutralised as the protocol does before sending (ESC shows
        # as ␛): Input drew them raw, so a pasted ESC [2J went to the terminal as is.
        lines = event.text.splitlines()
        if lines not in ([], [event.text]):
            event.stop()
            event.prevent_default()
            self.post_message(self.MultiLinePaste([sanitize_text(line) for line in lines]))
        elif not event.text.isprintable():
            event.stop()
            event.prevent_default()
            clean = sanitize_text(event.text)
            if self.selection.is_empty:
                self.insert_text_at_cursor(clean)
            else:
                self.replace(clean, *self.selection)


class ConversationList(Widget):
    """The list of conversations; clicking a line switches to that conversation. Drawn for
    its width (a shorter heading, lines cut with an ellipsis), so nothing folds mid-word."""

    DEFAULT_CSS = "ConversationList { text-wrap: nowrap; text-overflow: ellipsis; }"

    class Picked(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._state = ChatState()

    def show(self, state: ChatState) -> None:
        self._state = state
        self.refresh(layout=True)

    def render(self) -> RenderableType:
        return render.conversation_list(self._state, width=self.content_size.width or None)

    def on_click(self, event: events.Click) -> None:
        # line 0 is the heading; line n is conversation n - 1
        if event.y >= 1:
            self.post_message(self.Picked(event.y - 1))


class NickInput(Input):
    """The nickname field: a paste with control characters is refused (no name has one), not
    inserted; the Input widget would draw them raw (a pasted ESC [2J clears the terminal)."""

    class Refused(Message):
        def __init__(self, problem: str) -> None:
            super().__init__()
            self.problem = problem

    def _on_paste(self, event: events.Paste) -> None:
        line = event.text.splitlines()[0] if event.text.splitlines() else ""
        if not line.isprintable():
            event.stop()
            event.prevent_default()
            problem = nick_problem(line) or "a nickname cannot contain control characters"
            self.post_message(self.Refused(f"Paste not inserted: {problem}"))


R = TypeVar("R")


class FittedScreen(ModalScreen[R]):
    """A dialog laid out for the terminal's size: below ``COMPACT_BELOW`` (columns, rows) it
    has the ``-compact`` class (its CSS drops spacing and explanations), and :meth:`refit`
    adjusts what CSS cannot (one-row inputs and buttons, the keys' short form)."""

    COMPACT_BELOW: ClassVar[tuple[int, int]] = (64, 16)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        columns, rows = self.COMPACT_BELOW
        compact = width < columns or height < rows
        self.set_class(compact, "-compact")
        self.refit(compact, width)

    def refit(self, compact: bool, width: int) -> None:
        """Adjust the dialog for its size beyond its CSS (nothing, unless overridden)."""


class NickScreen(FittedScreen[str | None]):
    """Ask for a nickname; shows why the previous one was refused.

    Enter confirms; Esc closes the dialog without a name (the chat stays connected, and says
    so, until ``/nick NAME``), as Esc cancels the other dialogs. What the keys do is in the
    border, so it shows at every size; below ``COMPACT_BELOW`` the dialog drops its spacing
    and the input is one row, so at 20x6 the name being typed stays on screen."""

    DEFAULT_CSS = """
    NickScreen { align: center middle; }
    NickScreen > VerticalScroll {
        width: 64; max-width: 100%; height: auto; max-height: 100%; border: thick $accent;
        padding: 1 2; background: $surface; border-title-style: bold;
    }
    NickScreen Label { width: 100%; margin-bottom: 1; }
    NickScreen #nick-reason { color: $error; }
    NickScreen #nick-input { margin-bottom: 1; }
    NickScreen #nick-hint { margin-bottom: 0; }
    NickScreen.-compact #nick-input { margin-bottom: 0; }
    NickScreen.-compact > VerticalScroll { padding: 0 1; }
    NickScreen.-compact Label { margin-bottom: 0; }
    NickScreen.-compact #nick-hint { display: none; }
    """
    #: below this size (columns, rows) the dialog is compact (the border still has the keys)
    COMPACT_BELOW = (64, 16)
    #: the keys, in the dialog's bottom border (the short form below 30 columns)
    KEYS = "Enter: OK · Esc: no name"
    KEYS_SHORT = "Esc: no name"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, reason: str | None, suggestion: str = "") -> None:
        super().__init__()
        self.reason = reason
        self.suggestion = suggestion

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.can_focus = False  # typing goes to the input
            box.border_title = "Choose a nickname"
            box.border_subtitle = self.KEYS
            # the input first: on a small screen it is what must stay in view
            yield NickInput(value=self.suggestion, placeholder="nickname", id="nick-input")
            yield Label(Text(self.reason or ""), id="nick-reason")
            yield Label(Text("Enter to confirm, Esc to stay without a name (/nick later)"),
                        id="nick-hint")

    def on_mount(self) -> None:
        self._fit(self.app.size.width, self.app.size.height)
        self.query_one("#nick-input", Input).focus()

    def refit(self, compact: bool, width: int) -> None:
        for field in self.query("#nick-input").results(Input):
            field.compact = compact  # one row, no border
        for box in self.query(VerticalScroll):
            box.border_subtitle = self.KEYS if width >= 30 else self.KEYS_SHORT

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip()
        problem = nick_problem(name)
        if problem:
            self.query_one("#nick-reason", Label).update(Text(problem))
            return
        self.dismiss(name)

    def on_nick_input_refused(self, event: NickInput.Refused) -> None:
        event.stop()
        self.query_one("#nick-reason", Label).update(Text(event.problem))

    def action_cancel(self) -> None:
        self.dismiss(None)


class TrustScreen(FittedScreen[str]):
    """First contact with a TLS server: its key's fingerprint, and what to do about it.

    Answers ``remember`` (pin it in the known-servers file), ``once`` (trust it for this
    run only) or ``cancel`` (do not connect). Keys: r, o, Esc (or c)."""

    DEFAULT_CSS = """
    TrustScreen { align: center middle; }
    TrustScreen > VerticalScroll {
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $warning; padding: 1 2; background: $surface;
    }
    TrustScreen Label { width: 100%; margin-bottom: 1; }
    TrustScreen #trust-fingerprint { text-style: bold; color: $accent; }
    TrustScreen #trust-hint.-mismatch { color: $error; text-style: bold; }
    TrustScreen Horizontal { height: auto; width: 100%; }
    TrustScreen Button { margin-right: 1; }
    TrustScreen.-compact > VerticalScroll { padding: 0 1; }
    TrustScreen.-compact Label { margin-bottom: 0; }
    TrustScreen.-compact #trust-explain { display: none; }
    TrustScreen.-compact Horizontal { layout: vertical; }
    TrustScreen.-compact Button { min-width: 0; width: 100%; margin: 0; }
    """
    #: below this size (columns, rows) the dialog drops its explanation and spacing, and
    #: stacks one-row buttons: at 40x12 the fingerprint and every answer stay on screen
    COMPACT_BELOW = (78, 24)
    #: the keys, in the dialog's bottom border (the short form below 36 columns)
    KEYS = "r: trust · o: once · Esc: cancel"
    KEYS_SHORT = "r / o / Esc"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "answer('remember')", "Trust and remember"),
        Binding("o", "answer('once')", "Trust this time"),
        Binding("escape,c", "answer('cancel')", "Cancel"),
    ]

    def __init__(self, question: UnknownServerKey) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        q = self.question
        where = f"[{q.host}]:{q.port}" if ":" in q.host else f"{q.host}:{q.port}"
        with VerticalScroll() as box:
            box.border_subtitle = self.KEYS  # the keys, on screen however small it is
            yield Label(Text(f"First connection to {where} over TLS", style="bold"),
                        id="trust-title")
            yield Label(Text("Its key has this fingerprint:"))
            yield Label(Text(q.fingerprint), id="trust-fingerprint")
            hint = self._hint()
            if hint is not None:
                yield hint
            yield Label(Text(
                "Check it with the server's owner (richchat server --show-fingerprint "
                "prints it). Remembered, it is stored in " + q.store + ", and a server "
                "that later shows another key is refused."), id="trust-explain")
            with Horizontal():
                yield Button("Trust and remember (r)", id="remember", variant="success")
                yield Button("This time only (o)", id="once")
                yield Button("Cancel (Esc)", id="cancel", variant="error")

    def _hint(self) -> Label | None:
        q = self.question
        lines = []
        mismatch = q.advertised is not None and q.advertised != q.fingerprint
        if q.advertised is not None:
            lines.append(
                "It is NOT the fingerprint the server advertised on the network "
                f"({q.advertised}): someone may be posing as it." if mismatch else
                "It is the one the server advertised on the network (anyone can advertise "
                "one: that is a hint, not a proof).")
        if q.also_pinned_as:
            lines.append("You already trust this key at " + ", ".join(q.also_pinned_as)
                         + " (the same server under another address).")
        if not lines:
            return None
        label = Label(Text(" ".join(lines)), id="trust-hint")
        label.set_class(mismatch, "-mismatch")
        return label

    def on_mount(self) -> None:
        self._fit(self.app.size.width, self.app.size.height)
        # Enter alone never trusts a key; the dialog stays at its top (the fingerprint).
        # (An answer typed at once may have dismissed the dialog, and removed its buttons,
        # before this runs: then there is nothing to focus.)
        for cancel in self.query("#cancel").results(Button):
            cancel.focus(scroll_visible=False)

    def refit(self, compact: bool, width: int) -> None:
        for button in self.query(Button):
            button.compact = compact  # one row, no border
        for box in self.query(VerticalScroll):
            box.border_subtitle = self.KEYS if width >= 36 else self.KEYS_SHORT

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id or "cancel")

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)


class TransferBar(Static):
    """Under the chat: one line per file transfer under way, with its progress (hidden when
    there is none)."""

    def show_transfers(self, lines: list[Text]) -> None:
        self.set_class(bool(lines), "-busy")
        self.update(Text("\n").join(lines) if lines else Text())


class FilesScreen(FittedScreen[int | None]):
    """The files of the conversation on screen: pick one (Enter) to download it.

    The title and the keys are in the border too; below ``COMPACT_BELOW`` the dialog keeps
    only them and the list (at 20x6 it was an empty box: its spacing took every row)."""

    DEFAULT_CSS = """
    FilesScreen { align: center middle; }
    FilesScreen > Vertical {
        width: 90; max-width: 100%; height: auto; max-height: 80%; border: thick $accent;
        padding: 1 2; background: $surface; border-title-style: bold;
    }
    FilesScreen OptionList { height: auto; max-height: 20; }
    FilesScreen Label { width: 100%; margin-bottom: 1; }
    FilesScreen.-compact > Vertical { padding: 0 1; max-height: 100%; }
    FilesScreen.-compact Label { margin-bottom: 0; }
    FilesScreen.-compact .files-words { display: none; }
    FilesScreen.-compact OptionList { max-height: 6; }
    """
    COMPACT_BELOW = (64, 16)
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, files: list[SharedFile], empty: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.files = files
        #: what an empty list says (default: none known yet); the app says instead when
        #: the server offers no file sharing at all
        self.empty = empty or "No files known here yet (/files asks the server)"

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            box.border_subtitle = "Enter: get · Esc: close" if self.files else "Esc: close"
            if self.files:
                yield OptionList(*(Option(render.file_choice(x), id=str(x.number))
                                   for x in reversed(self.files)), id="files-list")
                yield Label(Text("Enter downloads the highlighted file; Esc closes"),
                            classes="files-words")
            else:
                yield Label(Text(self.empty), id="files-empty")

    def on_mount(self) -> None:
        self._fit(self.app.size.width, self.app.size.height)
        for widget in self.query("#files-list"):
            widget.focus()


    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(int(event.option.id or 0) or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
