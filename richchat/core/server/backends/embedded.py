"""The embedded backend: one server process, names in memory, history in SQLite.

Events are handed straight back to this process's fan-out, in the order they were published,
which is the one order of every room. Messages get their id here (SQLite's row id) and are
written in one transaction per flush, before any byte of that flush reaches a socket
(:meth:`commit`): a message anyone has seen is on disk and survives ``kill -9``. If the write
fails (disk full, a damaged file), the messages of that flush are not relayed and their
senders are told: nobody is ever shown, or confirmed, a message that is not stored.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from richchat.core.server.backends import NameHolder, Sink
from richchat.core.server.events import Event, Joined, Message, Registered
from richchat.core.server.storage import STORAGE_FAULTS, HistoryStore, StoredMessage

if TYPE_CHECKING:
    from richchat.core.server.peer import Peer

log = logging.getLogger("richchat.server")


def _drop(event: Event) -> None:
    raise RuntimeError("backend not bound to a fan-out")


class EmbeddedBackend:
    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self._sink: Sink = _drop
        #: name key -> the connection holding it (a NameHolder is made only on lookup: one
        #: object less per connected user)
        self._names: dict[str, Peer] = {}
        self._unstored: list[Message] = []
        self._topics: dict[str, tuple[str, str]] = {}
        self._server_id = ""

    def bind(self, sink: Sink) -> None:
        self._sink = sink

    async def open(self) -> None:
        self._topics = self.store.topics()
        self._server_id = self.store.meta("server_id", uuid.uuid4().hex)

    async def close(self) -> None:
        self.commit()
        self.store.close()

    @property
    def server_id(self) -> str:
        return self._server_id

    def topics(self) -> dict[str, tuple[str, str]]:
        return dict(self._topics)

    # -- names

    @property
    def degraded(self) -> bool:
        return False  # one process, its own SQLite: never waiting for anyone

    def claim_name(self, key: str, name: str, peer: Peer) -> bool:
        holder = self._names.get(key)
        if holder is not None and holder is not peer:
            return False
        self._names[key] = peer
        return True

    def release_name(self, key: str, peer: Peer) -> None:
        if self._names.get(key) is peer:
            del self._names[key]

    def lookup(self, key: str) -> NameHolder | None:
        peer = self._names.get(key)
        if peer is None or peer.name is None:
            return None
        return NameHolder(peer.name, peer)

    @property
    def users_online(self) -> int:
        return len(self._names)

    # -- events

    def post_message(
        self, room: str, ts: int, name: str, kind: str, text: str, sender: Peer | None
    ) -> None:
        msg = Message(room, self.store.add(room, ts, name, kind, text), ts, name, kind, text,
                      sender)
        self._unstored.append(msg)
        self._sink(msg)

    def settled(self, peer: Peer, messages: bool = False) -> None:
        return None  # published events are applied at once

    def in_flight(self, peer: Peer) -> bool:
        return False

    def unordered_in_flight(self, peer: Peer) -> bool:
        return False

    def publish(self, event: Event) -> None:
        if type(event) is Joined or type(event) is Registered:
            event.mark = self.store.last_id
        self._sink(event)

    def set_topic(self, room: str, setter: str, text: str, ts: int) -> None:
        self._topics[room] = (setter, text)
        try:
            self.store.set_topic(room, setter, text, ts)
        except STORAGE_FAULTS as exc:  # the topic still applies until a restart
            log.error("could not store the topic of #%s (%s)", room, _reason(exc))
        except Exception:
            log.exception("could not store the topic of #%s", room)

    def mark(self) -> int:
        return self.store.last_id

    def commit(self) -> None:
        if not self._unstored:
            return
        messages, self._unstored = self._unstored, []
        try:
            self.store.flush()
        except Exception as exc:  # disk full, locked, damaged: nobody sees these messages
            reason = _reason(exc)
            if isinstance(exc, STORAGE_FAULTS):
                log.error("could not write history (%s); %d message(s) not relayed", reason,
                          len(messages))
            else:
                log.exception("could not write history; %d message(s) not relayed",
                              len(messages))
            for m in messages:
                m.failed = reason

    def history(self, room: str, limit: int, mark: int) -> Sequence[StoredMessage]:
        return self.store.recent(room, limit, mark)


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:120]
