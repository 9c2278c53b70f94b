"""Conversation state of the chat UI: rooms and private conversations (pure, no Textual)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text

from richchat.core.protocol.text import DEFAULT_ROOM, fold_name

MAX_LINES = 2000


@dataclass
class Conversation:
    """A room (``key`` = room name) or a private conversation (``key`` = ``@`` + folded nick)."""

    key: str
    title: str
    private: bool = False
    lines: list[Text] = field(default_factory=list)
    seen_ids: set[tuple[int, int]] = field(default_factory=set)  # (id, ts)
    users: dict[str, str] = field(default_factory=dict)  # folded -> display name
    topic: str = ""
    unread: int = 0
    mentioned: bool = False
    joined: bool = False  # a room we are (re)joined to on the current connection


    def add(self, line: Text) -> None:
        self.lines.append(line)
        if len(self.lines) > MAX_LINES:
            del self.lines[: len(self.lines) - MAX_LINES]

    def set_users(self, names: list[str]) -> None:
        self.users = {fold_name(n): n for n in names}

    def add_user(self, name: str) -> None:
        self.users[fold_name(name)] = name

    def remove_user(self, name: str) -> None:
        self.users.pop(fold_name(name), None)

    def rename_user(self, old: str, new: str) -> bool:
        if fold_name(old) in self.users:
            del self.users[fold_name(old)]
            self.users[fold_name(new)] = new
            return True
        return False

    def sorted_users(self) -> list[str]:
        return sorted(self.users.values(), key=str.casefold)


def private_key(nick: str) -> str:
    return "@" + fold_name(nick)


class Conversations:
    """Ordered conversations; the lobby always exists and comes first."""

    def __init__(self) -> None:
        self.items: dict[str, Conversation] = {}
        self.active = DEFAULT_ROOM
        self.get_room(DEFAULT_ROOM)

    def get_room(self, room: str) -> Conversation:
        conv = self.items.get(room)
        if conv is None:
            conv = self.items[room] = Conversation(key=room, title=f"#{room}")
        return conv

    def get_private(self, nick: str) -> Conversation:
        key = private_key(nick)
        conv = self.items.get(key)
        if conv is None:
            conv = self.items[key] = Conversation(key=key, title=f"@{nick}", private=True)
        return conv

    def remove(self, key: str) -> None:
        if key == DEFAULT_ROOM:
            return
        self.items.pop(key, None)
        if self.active == key:
            self.active = DEFAULT_ROOM

    @property
    def current(self) -> Conversation:
        return self.items[self.active]

    def keys(self) -> list[str]:
        return list(self.items)

    def cycle(self, step: int) -> str:
        keys = self.keys()
        idx = keys.index(self.active) if self.active in keys else 0
        return keys[(idx + step) % len(keys)]
