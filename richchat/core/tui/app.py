"""The chat UI of ``richchat join``: the Textual app, which only wires widgets together.

It is the third of three parts:

* ``state.py``: the client state, pure: (state, frame) -> (new state, changes);
* ``session.py``: the connection (connect, register, reconnect, rejoin, de-duplicate);
* this app: it feeds the session's frames to the state, shows the changes, and turns keys and
  typed lines (routed by ``commands.py``) into state steps and frames for the session.

Layout: a header (server, nickname, the connection's security, connection state) on top; the
conversation list (rooms and private conversations, with unread counts), the chat panel and the
user list side by side; the input line at the bottom. The input always has the focus, so typing
always reaches it; TAB chooses which panel (chat or users) Up/Down/PageUp/PageDown scroll.

The chat panel has priority over the side panels: they are narrower below ``WIDE`` columns and
hidden below ``NARROW`` (F2 and F3 show or hide them at any width).

Files: ``/share PATH`` hashes the file and offers it (``CMD_SHARE``); the server's ``UPLOAD``
starts the upload, ``/get N`` (or Enter on a file of the F4 list) asks for a file and the
server's ``DOWNLOAD`` starts the download into ``download_dir``. Each runs in a Textual worker
on the app's event loop whose disk and hashing work goes to threads
(:mod:`richchat.core.transfer`), on its own connection: typing and chatting go on meanwhile.
Progress shows in a bar under the chat, the outcome as a line of the conversation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from richchat.core.client import Address
from richchat.core.errors import RichchatError
from richchat.core.protocol import frames as f
from richchat.core.protocol.filenames import human_size, safe_file_name
from richchat.core.protocol.text import MAX_MESSAGE_BYTES, fold_name
from richchat.core.trust.connect import TrustPolicy
from richchat.core.tui import commands, render
from richchat.core.tui import session as se
from richchat.core.tui import state as st
from richchat.core.tui.widgets import (
    ChatInput,
    ChatLog,
    ConversationList,
    FilesScreen,
    NickScreen,
    StatusBar,
    TopicBar,
    TransferBar,
    TrustScreen,
)

log = logging.getLogger(__name__)

#: the longest message the input sends (text bytes; the frame around it needs the rest)
PASTE_LINE_LIMIT = 10
#: screen widths (columns): side panels at full width from WIDE, narrower from NARROW, hidden
#: below NARROW (the chat panel keeps the room)
NARROW, WIDE = 70, 100
#: below this many rows the input is one row and the chat panel has no border: at 20x6 the
#: chat shows 3 lines (it showed none: the input and the borders took every row)
SHORT = 12
#: lines drawn at once when more arrive together for the conversation on screen (a flood, a
#: long history): only its end is drawn then (drawing costs about 0.2 ms a line), the rest of
#: the scrollback once no such burst came for FLOOD_CALM seconds, or when the user scrolls up
FLOOD_DRAW = 200
FLOOD_CALM = 0.3
#: names the user list shows (its title says how many there are)
USERS_SHOWN = 1000

#: frames the app acts on itself (transfers), besides the chat state
_FILE_FRAMES = (f.UploadReady, f.DownloadReady, f.FileOffer)


def now_ms() -> int:
    return int(time.time() * 1000)


class ChatApp(App[None]):
    """``richchat join``'s chat screen."""

    CSS_PATH = Path(__file__).with_name("chat.tcss")
    TITLE = "richchat"
    HORIZONTAL_BREAKPOINTS = [
        (0, "-narrow"), (NARROW, "-medium"), (WIDE, "-wide"),
    ]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (SHORT, "-tall")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "quit_chat", "Quit", priority=True),
        Binding("ctrl+q", "quit_chat", "Quit", priority=True, show=False),
        Binding("tab", "toggle_panel", "Chat/users", priority=True),
        Binding("up", "scroll_panel('up')", show=False),
        Binding("down", "scroll_panel('down')", show=False),
        Binding("pageup", "scroll_panel('page_up')", show=False),
        Binding("pagedown", "scroll_panel('page_down')", show=False),
        Binding("ctrl+n", "cycle(1)", "Next conversation", priority=True),
        Binding("ctrl+p", "cycle(-1)", "Previous conversation", priority=True),
        Binding("f2", "toggle_side('conversations')", "Conversations", priority=True),
        Binding("f3", "toggle_side('users')", "Users", priority=True),
        Binding("f4", "pick_file", "Files", priority=True),
    ]

    #: which panel Up/Down/PageUp/PageDown scroll: "chat" or "users"
    active_panel: reactive[str] = reactive("chat")
    #: lines that arrived while the user was reading older ones
    new_below: reactive[int] = reactive(0)

    def __init__(
        self,
        address: Address,
        nick: str | None = None,
        *,
        time_format: render.TimeFormat = render.default_time_format,
        address_label: str | None = None,
        timeout: float = 10.0,
        reconnect_base: float = 0.5,
        reconnect_cap: float = 15.0,
        fail_fast: bool = False,
        trust: TrustPolicy | None = None,
        download_dir: Path | None = None,
        alternates: Sequence[Address] = (),
    ) -> None:
        super().__init__()
        #: where /get saves files (None: RICHCHAT_DOWNLOAD_DIR, else downloads/richchat)
        self.download_dir = download_dir
        #: files offered and waiting for the server's UPLOAD: sha256 -> (path, size)
        self._uploads: dict[str, tuple[Path, int]] = {}
        #: the offer of each of those files (made again after a wait), and how many times the
        #: server was busy with the same bytes (another upload of them under way)
        self._offers: dict[str, f.ShareFile] = {}
        self._busy: dict[str, int] = {}
        #: files asked for and waiting for the server's DOWNLOAD: id -> what we know of it
        self._downloads: dict[str, commands.GetJob] = {}
        #: transfers under way, for the bar: key -> (direction, name, done, total, start,
        #: base): ``base`` is the bytes done at ``start`` (a resumed transfer's offset), not
        #: counted in its rate
        self._progress: dict[str, tuple[str, str, int, int, float, int]] = {}
        self._progress_shown = 0.0
        self.time_format = time_format
        #: exit (with ``failure`` set) if the very first connection attempt fails
        self.fail_fast = fail_fast
        self.failure: RichchatError | None = None
        self.chat = st.ChatState()
        self.session = se.ChatSession(
            address, nick, self._on_session_event, timeout=timeout,
            reconnect_base=reconnect_base, reconnect_cap=reconnect_cap, fail_fast=fail_fast,
            trust=trust,
            alternates=alternates,
        )
        self.status_bar = StatusBar(address_label or str(address), id="status")
        self.conversation_list = ConversationList(id="conversations")
        self.topic_bar = TopicBar(id="topic")
        self.chat_log = ChatLog(id="chat")
        self.transfer_bar = TransferBar(id="transfers")
        self.user_list = OptionList(id="users")
        self.input = ChatInput(placeholder="Type a message, /help for commands", id="input")
        self._asking_nick = False
        self._warned_plaintext = False
        #: frames received and not applied yet: what one read brought is applied in one step
        self._inbox: list[f.Frame] = []
        self._calm_timer: Timer | None = None
        self._session_handlers: dict[type, Callable[[se.SessionEvent], None]] = {
            se.StatusChanged: self._status_changed,  # type: ignore[dict-item]
            se.Connected: self._connected,  # type: ignore[dict-item]
            se.Disconnected: self._disconnected,  # type: ignore[dict-item]
            se.FrameReceived: self._frame_received,  # type: ignore[dict-item]
            se.Note: self._note,  # type: ignore[dict-item]
            se.NickNeeded: self._nick_needed,  # type: ignore[dict-item]
            se.TrustNeeded: self._trust_needed,  # type: ignore[dict-item]
            se.Failed: self._failed,  # type: ignore[dict-item]
        }

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield self.status_bar
        with Horizontal(id="body"):
            yield self.conversation_list
            with Vertical(id="main"):
                yield self.topic_bar
                yield self.chat_log
                yield self.transfer_bar
            yield self.user_list
        yield self.input

    def on_mount(self) -> None:
        self.chat_log.can_focus = False
        self.user_list.can_focus = False
        self.input.focus()
        self.watch(self.chat_log, "scroll_y", self._on_chat_scroll, init=False)
        self._redraw()
        self._connection()

    @work(exclusive=True, group="connection")
    async def _connection(self) -> None:
        await self.session.run()

    # ------------------------------------------------------------------ session -> state

    def _on_session_event(self, event: se.SessionEvent) -> None:
        if type(event) is se.FrameReceived:
            # Frames come one by one from the session, many per read when the server is busy
            # (or hostile): they are applied together once the session lets the loop run.
            if not self._inbox:
                self.call_later(self._take_inbox)
            self._inbox.append(event.frame)
            return
        self._take_inbox()  # what came before this event, first
        self._session_handlers[type(event)](event)

    def _take_inbox(self) -> None:
        frames, self._inbox = self._inbox, []
        if not frames:
            return
        for frame in frames:
            if isinstance(frame, _FILE_FRAMES):
                self._file_frame(frame)
        try:
            step = st.apply_all(self.chat, frames, now_ms())
        except Exception:  # our bug on a valid frame: find it, say so, keep the others
            for frame in frames:
                self._apply_frame(frame)
        else:
            self._step(step)
        self._files_gone(frames)

    def _status_changed(self, event: se.StatusChanged) -> None:
        self.status_bar.status = event.status

    def _connected(self, event: se.Connected) -> None:
        self.status_bar.security = event.security
        self._step(st.connected(self.chat, event.hello.name, event.hello.file_max))
        if not event.security.encrypted and self.session.trust is not None \
                and not self._warned_plaintext:
            self._warned_plaintext = True
            self._note(se.Note(
                "This connection is not encrypted: anyone on the network can read it "
                "(the server runs without --tls)."))

    def _disconnected(self, _event: se.Disconnected) -> None:
        self.status_bar.security = None
        self._step(st.disconnected(self.chat))

    def _trust_needed(self, event: se.TrustNeeded) -> None:
        def answered(answer: str | None) -> None:
            self.input.focus()
            choice = answer if answer in ("remember", "once") else "cancel"
            self.session.answer_trust(choice)  # type: ignore[arg-type]

        self.push_screen(TrustScreen(event.question), answered)

    def _frame_received(self, event: se.FrameReceived) -> None:
        if isinstance(event.frame, _FILE_FRAMES):
            self._file_frame(event.frame)
        self._apply_frame(event.frame)
        self._files_gone([event.frame])

    def _files_gone(self, frames: list[f.Frame]) -> None:
        """The server has no file asked for with /get (``no file ID (files expire ...)``,
        shown as any error): say where the part file an earlier, interrupted download of it
        left in the download directory is (kept: :meth:`DownloadDir.leftover`)."""
        from richchat.core.transfer import DownloadDir

        texts = [f"{x.text} " for x in frames
                 if isinstance(x, f.Error) and x.code == "no_such_file"]
        for file_id in [i for i in self._downloads
                        if any(f"no file {i} " in text for text in texts)]:
            del self._downloads[file_id]
            note = DownloadDir(self._download_where()).leftover(file_id)
            if note is not None:
                self._note(se.Note(f"File {file_id} is not on the server: {note}.",
                                   error=True))

    def _file_frame(self, frame: f.Frame) -> None:
        """What the app itself does with a file frame (the state records it too)."""
        if isinstance(frame, f.UploadReady):
            self._upload_ready(frame)
        elif isinstance(frame, f.DownloadReady):
            self._download_ready(frame)
        elif (isinstance(frame, f.FileOffer) and frame.sha256 in self._uploads
              and self.chat.nick and fold_name(frame.sender) == fold_name(self.chat.nick)):
            del self._uploads[frame.sha256]  # published: nothing more to upload
            self._offers.pop(frame.sha256, None)
            self._busy.pop(frame.sha256, None)

    def _apply_frame(self, frame: f.Frame) -> None:
        try:
            step = st.apply(self.chat, frame, now_ms())
        except Exception as exc:  # our bug on a valid frame: say so, keep chatting
            log.exception("could not apply %r", frame)
            self._note(se.Note(f"internal error on {frame.line()[:40]!r}: {exc!r}",
                               error=True))
            return
        self._step(step)

    def _note(self, event: se.Note) -> None:
        self._step(st.note(self.chat, event.text, now_ms(), error=event.error))

    def _nick_needed(self, event: se.NickNeeded) -> None:
        self._ask_nick(event.reason)

    def _failed(self, event: se.Failed) -> None:
        if self.fail_fast and not self.session.sessions:
            self.failure = event.error
            self.exit()
        else:
            # what to do about it, as the command line says it: the client stops here
            hint = event.error.hint
            text = event.error.message + (f" ({hint})" if hint else "")
            self._note(se.Note(text, error=True))

    # ------------------------------------------------------------------ state -> widgets

    def _step(self, step: st.Step) -> None:
        self.chat, changes = step
        redraw = any(isinstance(c, st.ViewChanged) for c in changes)
        if redraw:
            self._redraw()
            return
        active = self.chat.active
        lines = [c.line for c in changes if isinstance(c, st.LineAdded) and c.key == active]
        if len(lines) > FLOOD_DRAW and self.chat_log.at_bottom:
            self._draw_end()
        else:
            for line in lines:
                self._write(line)
        if any(isinstance(c, st.ListChanged) for c in changes):
            self.conversation_list.show(self.chat)
        if any(isinstance(c, st.NickSet) or (isinstance(c, st.UsersChanged) and c.key == active)
               for c in changes):
            self._show_users()
        self._show_header()

    def _redraw(self) -> None:
        """Everything about the conversation on screen (another one, or changed as a whole)."""
        self.new_below = 0
        self.chat_log.show(render.chat_line(line, self.time_format)
                           for line in self.chat.current.lines)
        self.conversation_list.show(self.chat)
        self._show_users()
        self._show_header()

    def _show_header(self) -> None:
        self.status_bar.server = self.chat.server_name
        self.status_bar.nick = self.chat.nick
        self.topic_bar.conversation = self.chat.current

    def _draw_end(self) -> None:
        """Many lines at once, read at the bottom: draw the end of the conversation now, and
        the whole scrollback once the burst is over."""
        self.chat_log.show((render.chat_line(line, self.time_format)
                            for line in self.chat.current.lines), draw_last=FLOOD_DRAW)
        if self._calm_timer is not None:
            self._calm_timer.stop()
        self._calm_timer = self.set_timer(FLOOD_CALM, self._calm)

    def _calm(self) -> None:
        self._calm_timer = None
        self.chat_log.complete()

    def _write(self, line: st.ChatLine) -> None:
        at_bottom = self.chat_log.at_bottom
        self.chat_log.add(render.chat_line(line, self.time_format), scroll_end=at_bottom)
        if not at_bottom:
            self.new_below += 1

    def _show_users(self) -> None:
        users = self.user_list
        names = self.chat.current.sorted_users()
        highlighted = users.highlighted
        users.clear_options()
        me = fold_name(self.chat.nick) if self.chat.nick else None
        options = []
        for name in names[:USERS_SHOWN]:
            label = Text(name, style=f"bold {render.nick_colour(name)}")
            if fold_name(name) == me:
                label.append(" (you)", style="dim")
            options.append(Option(label, id=fold_name(name)))
        if len(names) > USERS_SHOWN:
            more = Text(f"... and {len(names) - USERS_SHOWN} more", style="dim")
            options.append(Option(more, disabled=True))
        users.add_options(options)
        users.border_title = f"Users ({len(names)})"
        if highlighted is not None and names:
            users.highlighted = min(highlighted, len(names) - 1)

    def _on_chat_scroll(self, _old: float, _new: float) -> None:
        if self.new_below and self.chat_log.at_bottom:
            self.new_below = 0

    def watch_new_below(self, count: int) -> None:
        self.topic_bar.new_below = count

    def watch_active_panel(self, panel: str) -> None:
        self.query_one("#main").set_class(panel == "chat", "-active")
        self.user_list.set_class(panel == "users", "-active")

    # ------------------------------------------------------------------ nickname dialog

    def _ask_nick(self, reason: str | None) -> None:
        if self._asking_nick:
            return
        self._asking_nick = True

        def chosen(name: str | None) -> None:
            self._asking_nick = False
            self.input.focus()
            if name:
                self.session.choose_nick(name)
            else:
                self.session.decline_nick()
                self._note(se.Note("No nickname yet: /nick NAME chooses one."))

        self.push_screen(NickScreen(reason, self.session.wanted_nick or ""), chosen)

    # ------------------------------------------------------------------ actions

    def action_toggle_panel(self) -> None:
        self.active_panel = "users" if self.active_panel == "chat" else "chat"

    def action_scroll_panel(self, how: str) -> None:
        if self.active_panel == "chat":
            chat = self.chat_log
            chat.complete()  # the whole scrollback, if a burst left only its end drawn
            {
                "up": chat.scroll_up, "down": chat.scroll_down,
                "page_up": chat.scroll_page_up, "page_down": chat.scroll_page_down,
            }[how](animate=False)
        else:
            users = self.user_list
            {
                "up": users.action_cursor_up, "down": users.action_cursor_down,
                "page_up": users.action_page_up, "page_down": users.action_page_down,
            }[how]()  # type: ignore[no-untyped-call]

    def action_toggle_side(self, panel: str) -> None:
        """Show a side panel that is hidden (a narrow screen), or hide one that is shown."""
        widget = self.conversation_list if panel == "conversations" else self.user_list
        body = self.query_one("#body")
        shown = widget.display
        body.set_class(not shown, f"-show-{panel}")
        body.set_class(shown, f"-hide-{panel}")

    def action_cycle(self, step: int) -> None:
        self._step(st.cycle(self.chat, step))

    async def action_quit_chat(self) -> None:
        await self._quit_chat("bye")

    async def _quit_chat(self, reason: str) -> None:
        await self.session.quit(reason)
        self.exit()

    def on_conversation_list_picked(self, event: ConversationList.Picked) -> None:
        keys = self.chat.keys()
        if 0 <= event.index < len(keys):
            self._step(st.switch(self.chat, keys[event.index]))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Clicking a user opens the private conversation with them."""
        if event.option_list is not self.user_list or self.chat.nick is None:
            return
        name = self.chat.current.users.get(event.option.id or "")
        if name is None or fold_name(name) == fold_name(self.chat.nick):
            return
        self._step(st.open_private(self.chat, name))
        self.input.focus()

    # ------------------------------------------------------------------ input

    async def on_chat_input_multi_line_paste(self, event: ChatInput.MultiLinePaste) -> None:
        lines = [line for line in event.lines if line.strip()]
        if len(lines) > PASTE_LINE_LIMIT:
            self._note(se.Note(
                f"Paste of {len(lines)} lines not sent (the limit is {PASTE_LINE_LIMIT} lines);"
                " paste fewer lines, or use 'richchat send ... -' for a file.",
                error=True,
            ))
            return
        for i, line in enumerate(lines):
            outcome = commands.say(self.chat, line, now_ms(), max_bytes=MAX_MESSAGE_BYTES)
            if await self._carry_out(outcome):
                # The line that could not be sent goes to the input (one line: a newline
                # there would be printed raw and garble the screen); the lines sent before it
                # are not repeated, the ones after it are said, to paste again.
                self.input.value = line
                rest = len(lines) - i - 1
                self._note(se.Note(
                    f"Sent {i} of {len(lines)} pasted lines; the one now in the input was not"
                    + (f", nor the {rest} after it (paste them again)." if rest else "."),
                    error=True,
                ))
                return
        if len(lines) > 1:  # (one line, pasted with its newline: its echo says enough)
            self._note(se.Note(f"Sent {len(lines)} pasted lines as separate messages."))

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is not self.input:
            return
        outcome = commands.submit(self.chat, event.value, now_ms(), max_bytes=MAX_MESSAGE_BYTES)
        if not await self._carry_out(outcome):
            self.input.value = ""

    async def _carry_out(self, outcome: commands.Outcome) -> bool:
        """Do what a typed line asks; return True to keep the line in the input."""
        self._step((outcome.state, outcome.changes))
        if outcome.quit:
            await self._quit_chat(outcome.quit_reason or "bye")
            return False
        if outcome.send is not None:
            try:
                self.session.send(outcome.send)
            except RichchatError as exc:
                self._note(se.Note(f"not sent: {exc.message}", error=True))
                return True
        if isinstance(outcome.job, commands.GetJob):
            self._downloads[outcome.job.file_id] = outcome.job
        elif isinstance(outcome.job, commands.ShareJob):
            self._work(self._share(outcome.job))
        return outcome.keep

    # ------------------------------------------------------------------ files

    def _work(self, job: Awaitable[None]) -> None:
        """Run a file job in a worker: typing and chatting go on meanwhile."""
        self.run_worker(job, group="transfers", exit_on_error=False)

    def _fail(self, what: str, exc: BaseException) -> None:
        text = exc.message if isinstance(exc, RichchatError) else f"{type(exc).__name__}: {exc}"
        hint = f" ({exc.hint})" if isinstance(exc, RichchatError) and exc.hint else ""
        self._note(se.Note(f"{what}: {text}{hint}", error=True))

    def _show_progress(self, key: str, direction: str, name: str, done: int,
                       total: int) -> None:
        old = self._progress.get(key)
        if old is not None and old[0] == direction and done >= old[5]:
            start, base = old[4], old[5]
        else:  # a new transfer, or one that starts again (a resume, or from the first byte)
            start, base = time.monotonic(), done
        self._progress[key] = (direction, name, done, total, start, base)
        now = time.monotonic()
        if done < total and now - self._progress_shown < 0.1:
            return
        self._progress_shown = now
        self._draw_progress()

    def _end_progress(self, key: str) -> None:
        self._progress.pop(key, None)
        self._draw_progress()

    def _draw_progress(self) -> None:
        now = time.monotonic()
        lines = []
        for direction, name, done, total, start, base in self._progress.values():
            # the bytes moved since it started: a download resumed at 90% did not receive
            # those 90% in its first second
            rate = ((done - base) / (now - start)) if now - start > 0.3 else None
            lines.append(render.transfer_line(direction, name, done, total, rate))
        self.transfer_bar.show_transfers(lines)

    async def _share(self, job: commands.ShareJob) -> None:
        """``/share PATH``: check, hash and offer the file; the upload waits for UPLOAD."""
        from richchat.core.transfer import hash_file, readable_file

        path = Path(job.path).expanduser()
        key = f"hash:{path}"
        try:
            size = readable_file(path)
            limit = self.chat.file_max
            if limit is not None and size > limit:
                self._note(se.Note(
                    f"Not shared: {path.name} is {human_size(size)}; the server takes files of "
                    f"at most {human_size(limit)}.", error=True))
                return
            # an empty file is shared like any other (its offer says 0 B); said here as
            # send --file says it, in case it was not the file meant
            what = "an empty file" if size == 0 else human_size(size)
            self._note(se.Note(f"Sharing {path.name} ({what}) with "
                               f"{_audience(job.target)}: computing its SHA-256..."))
            sha256, _size = await hash_file(path, lambda done, total: self._show_progress(
                key, "sha256", path.name, done, total))
            self._end_progress(key)
            self._uploads[sha256] = (path, size)
            name = safe_file_name(path.name, fallback=f"file-{sha256[:12]}")
            offer = self._offers[sha256] = f.ShareFile(target=job.target, size=size,
                                                       sha256=sha256, name=name)
            self.session.send(offer)
        except Exception as exc:
            self._end_progress(key)
            self._fail(f"Not shared: {path.name}", exc)

    def _upload_ready(self, frame: f.UploadReady) -> None:
        entry = self._uploads.get(frame.sha256)
        if entry is not None:
            self._work(self._upload(frame, *entry))

    async def _upload(self, frame: f.UploadReady, path: Path, size: int) -> None:
        import asyncio

        from richchat.core.sharing import BUSY_WAIT_MAX
        from richchat.core.transfer import TransferRefusedError, upload

        key = f"up:{frame.sha256}"
        sha = frame.sha256
        try:
            done = await upload(self.session.open_stream, frame.token, path, sha,
                                size, timeout=self.session.timeout,
                                rate=self.session.file_rate,
                                progress=lambda d, t: self._show_progress(
                                    key, "⇡", path.name, d, t))
            resumed = f", resumed at {human_size(done.offset)}" if done.offset else ""
            self._note(se.Note(f"Uploaded {path.name}: the server verified it{resumed}."))
        except Exception as exc:
            offer = self._offers.get(sha)
            if isinstance(exc, TransferRefusedError) and exc.code == "busy" and offer:
                # another upload of these bytes is under way (the same build shared twice):
                # a wait, not a failure, as send --file does; then the offer again, which
                # the server answers with the file it holds, or where the other one stopped
                waits = self._busy[sha] = self._busy.get(sha, 0) + 1
                if waits == 1:
                    self._note(se.Note(f"{path.name}: another upload of the same bytes is "
                                       "under way; waiting for it..."))
                self._show_progress(key, "⇡", path.name, 0, size)
                await asyncio.sleep(min(0.5 * waits, BUSY_WAIT_MAX))
                if sha in self._uploads:
                    self.session.send(offer)
                return
            self._uploads.pop(sha, None)
            self._offers.pop(sha, None)
            self._busy.pop(sha, None)
            self._fail(f"Upload of {path.name} failed (/share it again to resume)", exc)
        finally:
            self._end_progress(key)

    def _download_ready(self, frame: f.DownloadReady) -> None:
        if self._downloads.pop(frame.id, None) is not None:
            self._work(self._download(frame))

    def _download_where(self) -> Path:
        from richchat.core.transfer import default_download_dir

        if self.download_dir is None:
            self.download_dir = default_download_dir()
        return self.download_dir

    async def _download(self, frame: f.DownloadReady) -> None:
        from richchat.core.transfer import DownloadDir, download

        key = f"down:{frame.id}"
        if key in self._progress:  # /get twice: the first download goes on
            self._note(se.Note(f"{frame.name} is already being downloaded."))
            return
        try:
            where = DownloadDir(self._download_where())
            self._show_progress(key, "⇣", frame.name, where.held(frame.id), frame.size)
            got = await download(self.session.open_stream, frame.token, frame.id, where,
                                 sha256=frame.sha256, size=frame.size,
                                 timeout=self.session.timeout,
                                 progress=lambda d, t: self._show_progress(
                                     key, "⇣", frame.name, d, t))
            resumed = f"; resumed at {human_size(got.offset)}" if got.offset else ""
            self._note(se.Note(f"Saved {got.path} ({human_size(got.size)}, sha256 "
                               f"verified{resumed})."))
        except Exception as exc:
            self._fail(f"Download of {frame.name} failed (/get it again to resume)", exc)
        finally:
            self._end_progress(key)

    def action_pick_file(self) -> None:
        """F4: the files of this conversation; Enter downloads the highlighted one."""
        conv = self.chat.current

        def picked(number: int | None) -> None:
            self.input.focus()
            if number is not None:
                outcome = commands.submit(self.chat, f"/get {number}", now_ms(),
                                          max_bytes=MAX_MESSAGE_BYTES)
                self.call_later(self._carry_out, outcome)

        # connected to a server whose HELLO offers no file sharing: say so, not "none yet"
        empty = commands.NO_FILE_SHARING if (self.chat.online
                                             and self.chat.file_max is None) else None
        self.push_screen(FilesScreen(f"Files in {conv.title}", self.chat.files_of(conv.key),
                                     empty), picked)


def _audience(target: str) -> str:
    return target[1:] if target.startswith("@") else f"#{target}"
