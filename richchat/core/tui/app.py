"""The chat UI: a Textual app that talks to a richchat server through :class:`ChatClient`.

Layout: a status line (server, nickname, connection state) on top; the conversation list
(rooms and private conversations, with unread counts), the chat panel and the user list side
by side; the input line at the bottom. The input always has the focus, so typing always
reaches it; TAB chooses which panel (chat or users) Up/Down/PageUp/PageDown scroll.

All network I/O runs in one async worker (``_connection``) on the app's event loop; the UI
never waits on the network. The worker reconnects with exponential backoff and jitter,
re-registers the same nickname and drops history lines it already shows (by message id).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, OptionList, RichLog, Static
from textual.widgets.option_list import Option

from richchat.core.client import (
    NICK_ERRORS,
    Address,
    ChatClient,
    backoff_delays,
)
from richchat.core.errors import ProtocolError, RichchatError
from richchat.core.protocol import frames as f
from richchat.core.protocol.slash import HelpRequest, SlashError, parse_slash
from richchat.core.protocol.text import (
    DEFAULT_ROOM,
    MAX_MESSAGE_BYTES,
    fold_name,
    message_size,
    nick_problem,
)
from richchat.core.tui import render
from richchat.core.tui.state import Conversation, Conversations, private_key
from richchat.core.tui.widgets import ChatInput, ConversationList, NickScreen

PASTE_LINE_LIMIT = 10

HELP = [
    "Commands:",
    "  /join ROOM        join a room (and switch to it)",
    "  /leave, /part     leave the current room",
    "  /rooms            list the rooms on the server",
    "  /who [ROOM]       list the members of a room",
    "  /users            list the users of this conversation",
    "  /topic TEXT       set the topic of the current room",
    "  /msg USER [TEXT]  private message (opens a private conversation; also /query USER)",
    "  /me ACTION        an emote, like '* alice waves'",
    "  /nick NAME        change your nickname",
    "  /clear            clear this conversation's window",
    "  /quit             leave (also Ctrl+C)",
    "  //text            send a line that starts with '/'",
    "Keys: TAB chat/users panel, Up/Down/PgUp/PgDn scroll it, Ctrl+N/Ctrl+P next/previous"
    " conversation.",
]


# --------------------------------------------------------------------------- the app


class ChatApp(App[None]):
    """``richchat join``'s chat screen."""

    CSS_PATH = Path(__file__).with_name("chat.tcss")
    TITLE = "richchat"
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
    ]

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
    ) -> None:
        super().__init__()
        self.address = address
        self.wanted_nick = nick
        self.nick: str | None = None  # the name the server confirmed
        self.time_format = time_format
        self.address_label = address_label or str(address)
        self.timeout = timeout
        self.reconnect_base = reconnect_base
        self.reconnect_cap = reconnect_cap
        #: exit (with ``failure`` set) if the very first connection attempt fails
        self.fail_fast = fail_fast
        self.failure: RichchatError | None = None
        self.convs = Conversations()
        self.client: ChatClient | None = None
        self.server_name = ""
        self.state = "connecting"
        self.state_detail = ""
        self.active_panel = "chat"
        self.sessions = 0  # completed connections (for tests and the status line)
        self._quitting = False
        self._asking_nick = False
        self._pending_who: set[str] = set()
        self._pending_join: str | None = None
        self.new_below = 0  # lines that arrived while the user was reading older history
        self.registered = False  # the server confirmed our nickname on this connection
        self._nick_retries = 0

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with Horizontal(id="body"):
            yield ConversationList(id="conversations")
            with Vertical(id="main"):
                yield Static(id="topic")
                yield RichLog(id="chat", wrap=True, markup=False, highlight=False, min_width=20)
            yield OptionList(id="users")
        yield ChatInput(placeholder="Type a message, /help for commands", id="input")

    def on_mount(self) -> None:
        for widget_id in ("#chat", "#users"):
            self.query_one(widget_id).can_focus = False
        self.query_one("#input", ChatInput).focus()
        self._mark_active_panel()
        self._refresh_all()
        self.watch(self.chat_log, "scroll_y", self._on_chat_scroll, init=False)
        self._connection()

    def _on_chat_scroll(self, _old: float, _new: float) -> None:
        if self.new_below and self._at_bottom():
            self.new_below = 0
            self._refresh_all()

    @property
    def chat_log(self) -> RichLog:
        return self.query_one("#chat", RichLog)

    @property
    def user_list(self) -> OptionList:
        return self.query_one("#users", OptionList)

    @property
    def input(self) -> ChatInput:
        return self.query_one("#input", ChatInput)

    # ------------------------------------------------------------------ network worker

    @work(exclusive=True, group="connection")
    async def _connection(self) -> None:
        delays = backoff_delays(self.reconnect_base, self.reconnect_cap)
        attempt = 0
        while not self._quitting:
            attempt += 1
            self._set_state("connecting", f"attempt {attempt}" if attempt > 1 else "")
            client = ChatClient(self.address.host, self.address.port, timeout=self.timeout)
            try:
                hello = await client.connect()
            except ProtocolError as exc:
                self._system(str(exc.message), error=True)
                self._set_state("failed", "not a richchat server")
                if self.fail_fast and not self.sessions:
                    self.failure = exc
                    self.exit()
                return
            except RichchatError as exc:
                await client.close()
                if self.fail_fast and not self.sessions:
                    self.failure = exc
                    self.exit()
                    return
                delay = next(delays)
                self._set_state("disconnected", f"{exc.message}; retrying in {delay:.1f} s")
                await asyncio.sleep(delay)
                continue
            self.client = client
            self.server_name = hello.name or ""
            self._set_state("connected", "choosing a nickname")
            nick = self.nick or self.wanted_nick
            problem = nick_problem(nick) if nick else None
            if nick and not problem:
                await self._send(f.SetNick(name=nick))
            else:
                self._ask_nick(f"Nickname {nick!r} refused: {problem}" if problem else None)
            self.registered = False
            self._nick_retries = 0
            async for frame in client:
                if isinstance(frame, f.You) and not self.registered:
                    self.registered = True
                    attempt = 0
                    delays = backoff_delays(self.reconnect_base, self.reconnect_cap)
                    self.sessions += 1
                    await self._rejoin_rooms(client)
                try:
                    self._handle_frame(frame)
                except Exception as exc:  # a bug must not take the whole chat down
                    self._system(f"internal error on {frame.line()[:40]!r}: {exc!r}", error=True)
            await client.close()
            self.client = None
            self.registered = False
            for conv in self.convs.items.values():
                conv.joined = False
            if self._quitting:
                return
            delay = next(delays)
            self._system(f"Connection lost; reconnecting in {delay:.1f} s", error=True)
            self._set_state("disconnected", f"reconnecting in {delay:.1f} s")
            await asyncio.sleep(delay)

    async def _rejoin_rooms(self, client: ChatClient) -> None:
        for conv in list(self.convs.items.values()):
            if not conv.private and conv.key != DEFAULT_ROOM:
                with contextlib.suppress(RichchatError):
                    await client.join(conv.key)

    async def _send(self, frame: f.Frame) -> bool:
        """Queue a frame for the server; never waits on the network (the UI stays live)."""
        client = self.client
        if client is None or not client.connected:
            return False
        try:
            client.send_nowait(frame)
        except RichchatError as exc:
            self._system(f"not sent: {exc.message}", error=True)
            return False
        return True

    # ------------------------------------------------------------------ frames -> state

    def _handle_frame(self, frame: f.Frame) -> None:
        now = int(time.time() * 1000)
        fmt = self.time_format
        if isinstance(frame, (f.RoomMessage, f.Action)):
            conv = self.convs.get_room(frame.room)
            # (id, ts): the same id with another timestamp is another server's message
            if (frame.id, frame.ts) in conv.seen_ids:
                return  # history we already show (after a reconnect)
            conv.seen_ids.add((frame.id, frame.ts))
            make = render.message_line if isinstance(frame, f.RoomMessage) else render.action_line
            line = make(frame.ts, frame.name, frame.text, self.nick, fmt)
            mention = self.nick is not None and frame.name != self.nick and render.mentions(
                frame.text, self.nick
            )
            self._add(conv, line, mention=mention)
        elif isinstance(frame, f.ChatMessage):  # seed frame; not sent to HELLO clients
            conv = self.convs.get_room(DEFAULT_ROOM)
            self._add(conv, render.message_line(now, frame.name, frame.text, self.nick, fmt))
        elif isinstance(frame, f.Private):
            me = (self.nick or "").casefold()
            other = frame.to if frame.sender.casefold() == me else frame.sender
            conv = self.convs.get_private(other)
            conv.set_users([n for n in (self.nick, other) if n])
            line = render.private_line(frame.ts, frame.sender, frame.to, frame.text, self.nick, fmt)
            self._add(conv, line, mention=frame.sender.casefold() != me)
        elif isinstance(frame, f.Notice):
            self._add(self.convs.get_room(DEFAULT_ROOM), render.system_line(now, frame.text, fmt))
            if "shutting down" in frame.text and self.convs.active != DEFAULT_ROOM:
                self._system(frame.text)
        elif isinstance(frame, f.Hello):
            self.server_name = frame.name or self.server_name
        elif isinstance(frame, f.You):
            old = self.nick
            self.nick = frame.name
            self.wanted_nick = frame.name
            lobby = self.convs.get_room(DEFAULT_ROOM)
            lobby.joined = True
            if old is None or fold_name(old) != fold_name(frame.name):
                if old:
                    lobby.rename_user(old, frame.name)
                lobby.add_user(frame.name)
            if old and fold_name(old) != fold_name(frame.name):
                self._system(f"You are now known as {frame.name}")
            self._set_state("connected", "")
        elif isinstance(frame, f.UserList):
            self.convs.get_room(DEFAULT_ROOM).set_users([u.name for u in frame.users])
        elif isinstance(frame, f.RoomUsers):
            self._on_room_users(frame)
        elif isinstance(frame, f.UserJoined):
            self._on_joined(frame, now)
        elif isinstance(frame, f.UserLeft):
            self._on_left(frame, now)
        elif isinstance(frame, f.NickChanged):
            for conv in self.convs.items.values():
                conv.rename_user(frame.old, frame.new)
            old_key = private_key(frame.old)
            if old_key in self.convs.items and old_key != private_key(frame.new):
                conv = self.convs.items.pop(old_key)
                conv.key, conv.title = private_key(frame.new), f"@{frame.new}"
                self.convs.items[conv.key] = conv
                if self.convs.active == old_key:
                    self.convs.active = conv.key
                conv.add(render.system_line(now, f"{frame.old} is now {frame.new}", fmt))
        elif isinstance(frame, f.Topic):
            conv = self.convs.get_room(frame.room)
            if conv.topic == frame.text and conv.lines:
                self._refresh_all()
                return  # the same topic again (a rejoin after reconnecting)
            conv.topic = frame.text
            who = f" by {frame.setter}" if frame.setter else ""
            self._add(conv, render.system_line(now, f"Topic{who}: {frame.text}", fmt), count=False)
        elif isinstance(frame, f.RoomList):
            rooms = ", ".join(f"#{r.room} ({r.members})" for r in frame.rooms) or "none"
            self._system(f"Rooms: {rooms}")
        elif isinstance(frame, f.Error):
            self._on_error(frame)
        self._refresh_all()

    def _on_room_users(self, frame: f.RoomUsers) -> None:
        names = [u.name for u in frame.users]
        if frame.room in self.convs.items:
            self.convs.items[frame.room].set_users(names)
        if frame.room in self._pending_who:
            self._pending_who.discard(frame.room)
            self._system(f"Users in #{frame.room}: " + (", ".join(names) or "nobody"))

    def _on_joined(self, frame: f.UserJoined, now: int) -> None:
        name = frame.user.name
        is_me = self.nick is not None and fold_name(name) == fold_name(self.nick)
        if is_me:
            conv = self.convs.get_room(frame.room)
            conv.add_user(name)
            conv.joined = True
            if self._pending_join == frame.room:
                self._pending_join = None
                self._switch(frame.room)
                self._add(conv, render.system_line(now, f"You joined #{frame.room}",
                                                   self.time_format), count=False)
            return
        if frame.room not in self.convs.items:
            return
        conv = self.convs.items[frame.room]
        conv.add_user(name)
        if frame.room != DEFAULT_ROOM:  # the lobby gets the server's own "joined" notice
            self._add(conv, render.system_line(now, f"{name} joined #{frame.room}",
                                               self.time_format), count=False)

    def _on_left(self, frame: f.UserLeft, now: int) -> None:
        if frame.room not in self.convs.items:
            return
        if self.nick is not None and fold_name(frame.name) == fold_name(self.nick):
            self.convs.remove(frame.room)
            self._system(f"You left #{frame.room}")
            self._load_active()
            return
        conv = self.convs.items[frame.room]
        conv.remove_user(frame.name)
        if frame.room == DEFAULT_ROOM:
            return  # the lobby gets the server's own "left" notice
        reason = f" ({frame.reason})" if frame.reason else ""
        self._add(conv, render.system_line(now, f"{frame.name} left #{frame.room}{reason}",
                                           self.time_format), count=False)

    def _on_error(self, frame: f.Error) -> None:
        self._system(f"{frame.text} [{frame.code}]", error=True)
        if frame.code in NICK_ERRORS and not self.registered:
            wanted = self.wanted_nick
            if frame.code == "name_taken" and wanted and self.sessions and self._nick_retries < 3:
                # Reconnecting: the server may not have noticed our old connection is gone.
                self._nick_retries += 1
                delay = float(2 ** (self._nick_retries - 1))
                self._system(f"{wanted} is still taken; trying again in {delay:g} s")
                self.set_timer(delay, lambda: self.run_worker(
                    self._send(f.SetNick(name=wanted)), group="send"))
                return
            self._ask_nick(f"Nickname {wanted!r} refused: {frame.text}")
        elif frame.code in ("room_invalid", "not_in_room"):
            self._pending_join = None

    # ------------------------------------------------------------------ nickname dialog

    def _ask_nick(self, reason: str | None) -> None:
        if self._asking_nick:
            return
        self._asking_nick = True

        def chosen(name: str | None) -> None:
            self._asking_nick = False
            self.input.focus()
            if name:
                self.wanted_nick = name
                self.run_worker(self._send(f.SetNick(name=name)), group="send")
            else:
                self._system("No nickname yet: use /nick NAME to register.")

        self.push_screen(NickScreen(reason, self.wanted_nick or ""), chosen)

    # ------------------------------------------------------------------ display

    def _add(self, conv: Conversation, line: Text, *, mention: bool = False,
             count: bool = True) -> None:
        conv.add(line)
        if conv.key == self.convs.active:
            at_bottom = self._at_bottom()
            self.chat_log.write(line, scroll_end=at_bottom)
            if not at_bottom:
                self.new_below += 1
        elif count:
            conv.unread += 1
            conv.mentioned = conv.mentioned or mention

    def _at_bottom(self) -> bool:
        log = self.chat_log
        return log.scroll_y >= log.max_scroll_y - 1

    def _system(self, text: str, *, error: bool = False) -> None:
        now = int(time.time() * 1000)
        self._add(self.convs.current, render.system_line(now, text, self.time_format,
                                                         error=error), count=False)

    def _switch(self, key: str) -> None:
        if key not in self.convs.items:
            return
        self.convs.active = key
        conv = self.convs.current
        conv.unread = 0
        conv.mentioned = False
        self._load_active()
        self._refresh_all()

    def _load_active(self) -> None:
        self.new_below = 0
        log = self.chat_log
        log.clear()
        for line in self.convs.current.lines:
            log.write(line, scroll_end=True)

    def _set_state(self, state: str, detail: str) -> None:
        self.state, self.state_detail = state, detail
        self._refresh_status()

    def _refresh_status(self) -> None:
        with contextlib.suppress(Exception):
            status = self.query_one("#status", Static)
            line = Text("richchat ", style="bold")
            line.append(self.server_name or "?", style="bold cyan")
            line.append(f" ({self.address_label})  ")
            line.append("nick: ")
            line.append(self.nick or "(none)", style="bold")
            line.append("  ")
            colour = {"connected": "green", "connecting": "yellow"}.get(self.state, "red")
            line.append(f"● {self.state}", style=f"bold {colour}")
            if self.state_detail:
                line.append(f" ({self.state_detail})", style="dim")
            status.update(line)
            status.set_class(self.state != "connected", "-offline")

    def _refresh_all(self) -> None:
        self._refresh_status()
        with contextlib.suppress(Exception):
            rooms = Text("Conversations\n", style="bold underline")
            for conv in self.convs.items.values():
                active = conv.key == self.convs.active
                entry = Text("▶ " if active else "  ")
                entry.append(conv.title, style="bold reverse" if active else "")
                if conv.unread:
                    entry.append(f" ({conv.unread})",
                                 style="bold red" if conv.mentioned else "bold yellow")
                rooms.append_text(entry)
                rooms.append("\n")
            self.query_one("#conversations", Static).update(rooms)
            conv = self.convs.current
            topic = Text(conv.title, style="bold")
            if conv.private:
                topic.append("  private conversation", style="italic")
            elif conv.topic:
                topic.append("  ")
                topic.append(conv.topic)
            if self.new_below:
                topic.append(f"  ▼ {self.new_below} new below", style="bold yellow")
            self.query_one("#topic", Static).update(topic)
            self._refresh_users()

    def _refresh_users(self) -> None:
        users = self.user_list
        names = self.convs.current.sorted_users()
        highlighted = users.highlighted
        users.clear_options()
        me = fold_name(self.nick) if self.nick else None
        options = []
        for name in names:
            label = Text(name, style=f"bold {render.nick_colour(name)}")
            if fold_name(name) == me:
                label.append(" (you)", style="dim")
            options.append(Option(label, id=fold_name(name)))
        users.add_options(options)
        users.border_title = f"Users ({len(names)})"
        if highlighted is not None and names:
            users.highlighted = min(highlighted, len(names) - 1)

    def _mark_active_panel(self) -> None:
        self.query_one("#main").set_class(self.active_panel == "chat", "-active")
        self.user_list.set_class(self.active_panel == "users", "-active")

    # ------------------------------------------------------------------ actions

    def action_toggle_panel(self) -> None:
        self.active_panel = "users" if self.active_panel == "chat" else "chat"
        self._mark_active_panel()

    def action_scroll_panel(self, how: str) -> None:
        if self.active_panel == "chat":
            log = self.chat_log
            if how == "up":
                log.scroll_up(animate=False)
            elif how == "down":
                log.scroll_down(animate=False)
            elif how == "page_up":
                log.scroll_page_up(animate=False)
            else:
                log.scroll_page_down(animate=False)
        else:
            users = self.user_list
            if how == "up":
                users.action_cursor_up()
            elif how == "down":
                users.action_cursor_down()
            elif how == "page_up":
                users.action_page_up()  # type: ignore[no-untyped-call]
            else:
                users.action_page_down()  # type: ignore[no-untyped-call]

    def on_conversation_list_picked(self, event: ConversationList.Picked) -> None:
        keys = self.convs.keys()
        if 0 <= event.index < len(keys):
            self._switch(keys[event.index])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Clicking a user opens the private conversation with them."""
        if event.option_list is not self.user_list or self.nick is None:
            return
        name = str(event.option.prompt).removesuffix(" (you)")
        if fold_name(name) == fold_name(self.nick):
            return
        conv = self.convs.get_private(name)
        conv.set_users([self.nick, name])
        self._switch(conv.key)
        self.input.focus()

    def action_cycle(self, step: int) -> None:
        self._switch(self.convs.cycle(step))

    async def action_quit_chat(self) -> None:
        self._quitting = True
        client = self.client
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.quit("bye"), 1.0)
        self.exit()

    # ------------------------------------------------------------------ input

    async def on_chat_input_multi_line_paste(self, event: ChatInput.MultiLinePaste) -> None:
        lines = [line for line in event.lines if line.strip()]
        if len(lines) > PASTE_LINE_LIMIT:
            self._system(
                f"Paste of {len(lines)} lines not sent (the limit is {PASTE_LINE_LIMIT} lines);"
                " paste fewer lines, or use 'richchat send ... -' for a file.",
                error=True,
            )
            return
        for line in lines:
            if not await self._say(line):
                self.input.value = "\n".join(lines)[:MAX_MESSAGE_BYTES]
                return
        if lines:
            self._system(f"Sent {len(lines)} pasted lines as separate messages.")

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is not self.input:
            return
        text = event.value
        if not text.strip():
            return
        if text.startswith("/") and not text.startswith("//"):
            keep = await self._command(text)
        else:
            keep = not await self._say(text[1:] if text.startswith("//") else text)
        if not keep:
            self.input.value = ""

    async def _say(self, text: str) -> bool:
        """Send ``text`` to the current conversation; False (input kept) if not possible."""
        if self.client is None or not self.client.connected:
            self._system("Not connected: your message is kept in the input line.", error=True)
            return False
        if not self.registered:
            self._system("No nickname yet (/nick NAME): your message is kept.", error=True)
            return False
        if message_size(text) > MAX_MESSAGE_BYTES:
            self._system(f"Message too long ({message_size(text)} bytes; at most "
                         f"{MAX_MESSAGE_BYTES}): it is kept in the input line.", error=True)
            return False
        conv = self.convs.current
        if not conv.private and not conv.joined:
            self._system(f"Not in {conv.title} yet (rejoining): your message is kept.",
                         error=True)
            return False
        if conv.private:
            other = conv.title[1:]
            return await self._send(f.SendPrivate(to=other, text=text))
        if conv.key == DEFAULT_ROOM:
            return await self._send(f.Say(text=text))
        return await self._send(f.SayRoom(room=conv.key, text=text))

    async def _command(self, text: str) -> bool:
        """Run a slash command; return True to keep the text in the input line.

        UI commands (/help, /quit, /clear, /users, /msg USER without text, /query, /leave in a
        private view) are handled here; everything else goes through the protocol's shared
        slash parser (the same grammar netcat users have) and becomes one frame.
        """
        name, _, arg = text[1:].partition(" ")
        name, arg = name.lower(), arg.strip()
        conv = self.convs.current
        local = self._local_command(name, arg, conv)
        if local is not None:
            if local == "quit":
                await self.action_quit_chat()
                return False
            return local == "keep"
        if name == "query":
            name = "msg"
        room = DEFAULT_ROOM if conv.private else conv.key
        parsed = parse_slash(f"/{name} {arg}".rstrip(), room)
        if isinstance(parsed, SlashError):
            if parsed.code == "unknown_command":
                self._system(f"Unknown command /{name}; type /help for the list.", error=True)
            else:
                self._system(parsed.text[:1].upper() + parsed.text[1:], error=True)
            return True
        if isinstance(parsed, HelpRequest):  # handled locally; kept for completeness
            return False
        if isinstance(parsed, f.Quit):
            await self.action_quit_chat()
            return False
        if self.client is None or not self.client.connected:
            self._system("Not connected: your command is kept in the input line.", error=True)
            return True
        if isinstance(parsed, f.SetNick):
            self.wanted_nick = parsed.name
            return not await self._send(parsed)
        if not self.registered:
            self._system("Choose a nickname first: /nick NAME", error=True)
            return True
        frame: f.Frame = parsed
        if isinstance(parsed, f.JoinRoom):
            if parsed.room in self.convs.items:
                self._switch(parsed.room)
                return False
            self._pending_join = parsed.room
        elif isinstance(parsed, f.PartRoom) and parsed.room == DEFAULT_ROOM:
            self._system("Everyone stays in #lobby; it cannot be left.", error=True)
            return False
        elif isinstance(parsed, f.Who):
            self._pending_who.add(parsed.room)
        elif isinstance(parsed, f.SendPrivate):
            self._open_private(parsed.to)
        elif conv.private and isinstance(parsed, f.SetTopic):
            self._system("Private conversations have no topic.", error=True)
            return True
        elif conv.private and isinstance(parsed, f.SendAction):
            frame = f.SendPrivate(to=conv.title[1:], text=f"* {parsed.text}")
        return not await self._send(frame)

    def _local_command(self, name: str, arg: str, conv: Conversation) -> str | None:
        """UI-only commands: None if ``name`` is not one, else "done", "keep" or "quit"."""
        if name == "help":
            for line in HELP:
                self._system(line)
            return "done"
        if name == "quit":
            return "quit"
        if name == "clear":
            conv.lines.clear()
            self.chat_log.clear()
            return "done"
        if name == "users":
            names = conv.sorted_users()
            self._system(f"Users in {conv.title} ({len(names)}): " + ", ".join(names))
            return "done"
        if name in ("msg", "query") and arg and " " not in arg:
            problem = nick_problem(arg)
            if problem:
                self._system(f"Bad user name {arg!r}: {problem}", error=True)
                return "keep"
            self._open_private(arg)
            return "done"
        if name in ("leave", "part") and conv.private and not arg:
            self.convs.remove(conv.key)
            self._load_active()
            self._refresh_all()
            return "done"
        return None

    def _open_private(self, user: str) -> None:
        conv = self.convs.get_private(user)
        conv.set_users([n for n in (self.nick, user) if n])
        self._switch(conv.key)
