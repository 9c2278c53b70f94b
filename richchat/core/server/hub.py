"""The hub: chat rules, and nothing else.

It takes what clients ask (frames from any dialect's parser), decides by the rules of the chat
(names are unique, you talk only in rooms you are in, the lobby cannot be left, private
messages go to someone online...) and turns the outcome into events (:mod:`.events`): room
events go to the backend, which stores and orders them; answers to one client go straight to
the fan-out. It never renders bytes, never writes to a socket, never awaits, and knows nothing
of dialects or transports: those live in :mod:`.dialects`, :mod:`.delivery` and
:mod:`.connection`.
"""

from __future__ import annotations

import inspect
import logging
import random
import time
from collections.abc import Awaitable
from itertools import chain
from typing import TYPE_CHECKING

from richchat.core.protocol import frames as f
from richchat.core.protocol.slash import HelpRequest, SlashError, parse_slash
from richchat.core.protocol.text import (
    DEFAULT_ROOM,
    MAX_MESSAGE_BYTES,
    fold_name,
    name_key,
    nick_problem,
    script_problem,
    validate_nick,
)
from richchat.core.server import events as ev
from richchat.core.server.backends import Backend
from richchat.core.server.dialect import Dialect

if TYPE_CHECKING:
    from richchat.core.server.config import ServerConfig
    from richchat.core.server.delivery import Delivery
    from richchat.core.server.files import StoredOffer
    from richchat.core.server.peer import Peer
    from richchat.core.server.transfer import PutGrant, Transfers

log = logging.getLogger("richchat.server")

#: the answer to a name asked for while the chat's store is out of reach (ERR|degraded)
DEGRADED_NAME_TEXT = ("the chat is degraded (its database does not answer): nicknames cannot "
                      "be taken until it is back; try again shortly")

#: texts of at most this many characters are within MAX_MESSAGE_BYTES whatever they contain
#: (4 UTF-8 bytes per character at most): only longer ones are measured
_SURELY_SHORT = MAX_MESSAGE_BYTES // 4


#: rooms one connection may be in besides the lobby: one client could otherwise open rooms
#: without end (3,000 in 2.4 s), each kept while it stays, and make every room list one line
#: past what clients read (1 MiB at some 35,000 rooms)
MAX_ROOMS_PER_USER = 100


def now_ms() -> int:
    return int(time.time() * 1000)


def user_entry(name: str, host: str, port: int) -> str:
    """``name(host:port)`` as in user lists; IPv6 hosts in brackets (frames.UserEntry)."""
    host = f"[{host}]" if ":" in host else host
    return f"{name}({host}:{port})"


class Hub:
    def __init__(
        self,
        config: ServerConfig,
        backend: Backend,
        delivery: Delivery,
        files: Transfers | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.delivery = delivery
        #: file sharing (tokens, the file store); None when the server takes no files
        self.files = files
        if files is not None:
            files.on_stored = self.file_stored
        #: connections refused because the server is full, and when that was last logged
        self.refused_full = 0
        self._full_logged_at = float("-inf")

    # ------------------------------------------------------------------ connections

    @property
    def conns(self) -> set[Peer]:
        return self.delivery.conns

    @property
    def users_online(self) -> int:
        return self.delivery.users_online

    def attach(self, peer: Peer) -> bool:
        """A new connection; False when the server is full (logged once per 5 s of a flood
        of them, with the count, as on a TLS port)."""
        if len(self.delivery.conns) >= self.config.max_clients:
            self.refused_full += 1
            now = time.monotonic()
            if now - self._full_logged_at >= 5.0:
                self._full_logged_at = now
                log.warning("refused %s: server full (%d connected, cap %d; %d refused so far)",
                            peer.peer, len(self.delivery.conns), self.config.max_clients,
                            self.refused_full)
            return False
        self.delivery.attach(peer)
        return True

    def release(self, peer: Peer) -> None:
        """A connection that turned out not to be a chat client (a file transfer): it leaves
        without a word, as it never registered."""
        self.delivery.detach(peer)

    def start(self, peer: Peer, dialect: Dialect) -> None:
        """The connection's dialect is known: welcome it, and nothing of any room.

        A connection joins the lobby, appears in user lists, is announced and gets history
        and room traffic only once it registers a name: a port scanner, a health check or
        ``nc -z`` is never shown to anyone.
        """
        self.delivery.set_dialect(peer, dialect)
        self._reply(ev.Welcome(peer))

    def _guest_name(self) -> str:
        while True:
            name = f"guest-{random.randint(1000, 9999)}"
            if self.backend.lookup(name_key(name)) is None:
                return name

    # ------------------------------------------------------------------ the name prompt

    def ask_name(self, peer: Peer) -> None:
        """Ask a connection for a name (netcat users type it), offering a free guest name
        for an empty answer."""
        offered = peer.offered_name
        if offered is None or self.backend.lookup(name_key(offered)) is not None:
            offered = peer.offered_name = self._guest_name()
        self._reply(ev.NamePrompt(peer, offered))

    def answer_name(self, peer: Peer, text: str) -> Awaitable[object] | None:
        """A line from a connection that was asked for a name: the answer to :meth:`ask_name`.

        An empty line takes the offered guest name; ``/nick NAME`` works like ``NAME``;
        ``/help`` and ``/quit`` work as always; anything refused says why and asks again.
        """
        text = text.strip()
        name: str | None = text
        if text.startswith("/"):
            cmd = parse_slash(text)
            name = None
            if isinstance(cmd, f.Quit):
                peer.close(f"quit: {cmd.reason}" if cmd.reason else "quit")
                return None
            if isinstance(cmd, HelpRequest):
                self.help(peer)
            elif isinstance(cmd, f.SetNick):
                name = cmd.name
            elif isinstance(cmd, SlashError) and text[1:].split(" ", 1)[0].lower() == "nick":
                self.fail(peer, cmd.code, cmd.text)
            else:
                self.fail(peer, "not_registered", "choose a nickname first")
        elif not text:
            name = peer.offered_name
            if name is None or self.backend.lookup(name_key(name)) is not None:
                name = self._guest_name()
        elif problem := nick_problem(text):
            self.fail(peer, "name_invalid", problem)
            name = None
        if name is not None:
            return self.set_nick(peer, validate_nick(name))
        if peer.name is None and not peer.closed:
            self.ask_name(peer)
        return None

    def detach(self, peer: Peer, reason: str, detail: str = "") -> None:
        """The connection is gone. ``reason`` (words) is shown to the others, ``detail`` (an
        errno text, say) only goes to the server's log."""
        if peer not in self.delivery.conns:
            return
        name = peer.name
        if name is not None:
            for room in list(peer.rooms):
                self.backend.publish(ev.Parted(room, name, reason, peer))
            peer.rooms.clear()
            self.backend.release_name(name_key(name), peer)
            self.backend.publish(ev.Departed(name, reason, peer))
        self.delivery.detach(peer)
        log.info(
            "disconnect %s %s: %s%s",
            peer.peer,
            name or "(unregistered)",
            reason,
            f" ({detail})" if detail else "",
        )

    def _reply(self, reply: ev.Reply) -> None:
        self.delivery.post(reply)

    def fail(self, peer: Peer, code: str, text: str) -> None:
        """Refuse a request of ``peer``: ``ERR|code|text`` in its dialect."""
        self._reply(ev.Failure(peer, code, text))

    # ------------------------------------------------------------------ frames

    def handle(self, peer: Peer, frame: f.Frame) -> Awaitable[object] | None:
        """One request; returns an awaitable when the answer needs the backend (the
        connection then holds its further input until it is done)."""
        kind = type(frame)
        if kind is f.Say:
            self.say(peer, DEFAULT_ROOM, frame.text)  # type: ignore[attr-defined]
            return None
        if kind is f.SetNick:
            return self.set_nick(peer, frame.name)  # type: ignore[attr-defined]
        if kind is f.Ping:
            self._reply(ev.Pong(peer, frame.token))  # type: ignore[attr-defined]
            return None
        if kind is f.Pong or kind is f.Hello:
            return None
        if kind is f.Quit:
            reason = frame.reason  # type: ignore[attr-defined]
            peer.close(f"quit: {reason}" if reason else "quit")
            return None
        if kind is f.ListRooms:
            self._reply(ev.RoomListing(peer))
            return None
        if kind is f.Who:
            self._reply(ev.Members(peer, frame.room))  # type: ignore[attr-defined]
            return None
        if peer.name is None:
            self.fail(peer, "not_registered", "choose a nickname first (CMD_USER|name)")
            return None
        if kind is f.SayRoom:
            self.say(peer, frame.room, frame.text)  # type: ignore[attr-defined]
        elif kind is f.SendAction:
            self.say(peer, frame.room, frame.text, "action")  # type: ignore[attr-defined]
        elif kind is f.JoinRoom:
            self.join(peer, frame.room)  # type: ignore[attr-defined]
        elif kind is f.PartRoom:
            self.part(peer, frame.room)  # type: ignore[attr-defined]
        elif kind is f.SetTopic:
            self.set_topic(peer, frame.room, frame.text)  # type: ignore[attr-defined]
        elif kind is f.SendPrivate:
            self.private(peer, frame.to, frame.text)  # type: ignore[attr-defined]
        elif kind is f.ShareFile:
            self.share(peer, frame)  # type: ignore[arg-type]
        elif kind is f.GetFile:
            self.fetch(peer, frame.id)  # type: ignore[attr-defined]
        elif kind is f.ListFiles:
            self.list_files(peer, frame.target)  # type: ignore[attr-defined]
        else:
            self.fail(peer, "bad_frame", f"unexpected frame {frame.tag}")
        return None

    def publishes_only(self, peer: Peer, frame: f.Frame) -> bool:
        """True when :meth:`handle` of ``frame``, now, would only publish (a join, a part, a
        topic, a message: events the backend orders after ``peer``'s earlier ones) or do
        nothing, and answer nothing itself: no reply from this process's view (a member
        list, the rooms, a pong...), no refusal. Such a line needs none of ``peer``'s earlier
        events applied first; any other line does, on a cluster node (the connection holds
        it until they are: :meth:`Backend.settled`), for its answer to come after theirs and
        see them, as on one server. The conditions are those under which :meth:`join`,
        :meth:`part`, :meth:`set_topic` and :meth:`say` publish; O(1) but for a room new to
        this process (:meth:`room_refusal`, as :meth:`join` itself)."""
        kind = type(frame)
        if kind is f.Pong or kind is f.Hello:
            return True
        if peer.name is None:
            return False
        if kind is f.Say:
            return self.says_only(peer, DEFAULT_ROOM, frame.text)  # type: ignore[attr-defined]
        if kind is f.SayRoom or kind is f.SendAction:
            return self.says_only(peer, frame.room, frame.text)  # type: ignore[attr-defined]
        if kind is f.JoinRoom:
            room = frame.room  # type: ignore[attr-defined]
            return (
                room != DEFAULT_ROOM
                and room not in peer.rooms
                and len(peer.rooms) < MAX_ROOMS_PER_USER
                and (room in self.delivery.rooms or self.room_refusal(room, peer) is None)
            )
        if kind is f.PartRoom:
            room = frame.room  # type: ignore[attr-defined]
            return room != DEFAULT_ROOM and room in peer.rooms
        if kind is f.SetTopic:
            room = frame.room  # type: ignore[attr-defined]
            return room == DEFAULT_ROOM or room in peer.rooms
        return False

    def says_only(self, peer: Peer, room: str, text: str) -> bool:
        """True when :meth:`say` would post the message (or drop a blank one) without a word
        to ``peer``: see :meth:`publishes_only`."""
        return (
            (room == DEFAULT_ROOM or room in peer.rooms)
            and peer.name is not None
            and (len(text) <= _SURELY_SHORT or len(text.encode("utf-8")) <= MAX_MESSAGE_BYTES)
        )

    def help(self, peer: Peer) -> None:
        self._reply(ev.HelpText(peer))

    def show_topic(self, peer: Peer, room: str) -> None:
        """``/topic`` alone: the topic of a room ``peer`` is in, to ``peer`` only."""
        if room != DEFAULT_ROOM and room not in peer.rooms:
            self.fail(peer, "not_in_room", f"you are not in #{room}")
            return
        self._reply(ev.TopicShown(peer, room))

    def ping(self, peer: Peer, token: str) -> None:
        self._reply(ev.Ping(peer, token))

    # ------------------------------------------------------------------ names

    def name_refusal(self, peer: Peer, name: str) -> tuple[str, str] | None:
        """Why ``peer`` may not take ``name`` (error code, text), or None: the one policy hook
        every claimed nickname passes (registration, rename, the name prompt, any dialect).
        The backend's claim is the final word on names in use (it is atomic); this says why."""
        holder = self.backend.lookup(name_key(name))
        if holder is not None and holder.peer is not peer:
            return "name_taken", _taken_text(name, holder.name)
        problem = script_problem(name)
        if problem:
            return "name_invalid", problem
        return None

    def set_nick(self, peer: Peer, name: str) -> Awaitable[object] | None:
        old = peer.name
        if old == name:
            self._reply(ev.NameIs(peer, name))
            return None
        refusal = self.name_refusal(peer, name)
        if refusal is not None:
            self.fail(peer, *refusal)
            if old is None and peer.offered_name is not None:
                self.ask_name(peer)  # still at the name prompt: ask again
            return None
        if self.backend.degraded:
            # a claim would wait for the cluster's Redis for as long as it is away
            self.fail(peer, "degraded", DEGRADED_NAME_TEXT)
            if old is None and peer.offered_name is not None:
                self.ask_name(peer)  # still at the name prompt: ask again
            return None
        key = name_key(name)
        claimed = self.backend.claim_name(key, name, peer)
        if isinstance(claimed, bool):
            self._claimed(peer, name, key, old, claimed)
            return None
        return _then(claimed, lambda ok: self._claimed(
            peer, name, key, old, None if ok is None else bool(ok)))

    def _claimed(self, peer: Peer, name: str, key: str, old: str | None, ok: bool | None) -> None:
        if peer.closed:
            if ok:
                self.backend.release_name(key, peer)
            return
        if ok is None:  # the cluster's Redis refused the claim: nobody was found holding it
            self.fail(peer, "degraded", DEGRADED_NAME_TEXT)
            if old is None and peer.offered_name is not None:
                self.ask_name(peer)  # still at the name prompt: ask again
            return
        if not ok:
            holder = self.backend.lookup(key)
            self.fail(peer, "name_taken", _taken_text(name, holder.name if holder else name))
            if old is None and peer.offered_name is not None:
                self.ask_name(peer)  # still at the name prompt: ask again
            return
        if old is not None and name_key(old) != key:
            self.backend.release_name(name_key(old), peer)
        peer.name = name
        peer.entry = user_entry(name, peer.host, peer.port)
        if old is None:
            self.backend.publish(ev.Registered(name, peer.entry, peer))
            log.info("register %s as %s", peer.peer, name)
        else:
            self._reply(ev.NameIs(peer, name))
            self.backend.publish(ev.Renamed(old, name, peer.entry, peer))
            log.info("rename %s -> %s", old, name)

    # ------------------------------------------------------------------ rooms

    def say(self, peer: Peer, room: str, text: str, kind: str = "msg") -> None:
        """A chat line (or emote) in ``room``: the hot path of the chat."""
        if room is not DEFAULT_ROOM and room != DEFAULT_ROOM and room not in peer.rooms:
            self.fail(peer, "not_in_room", f"you are not in #{room}; /join {room} first")
            return
        name = peer.name
        if name is None:
            self.fail(peer, "not_registered", "choose a nickname first (CMD_USER|name)")
            return
        if not text or text.isspace() or (len(text) > _SURELY_SHORT and self._too_long(peer, text)):
            return  # nothing to say (netcat users, send and the chat UI skip blank lines too)
        self.backend.post_message(room, now_ms(), name, kind, text, peer)

    def _too_long(self, peer: Peer, text: str) -> bool:
        """Refuse a message over MAX_MESSAGE_BYTES (``message_too_long``); True if refused."""
        size = len(text.encode("utf-8"))
        if size <= MAX_MESSAGE_BYTES:
            return False
        self.fail(
            peer,
            "message_too_long",
            f"message too long ({size} bytes; at most {MAX_MESSAGE_BYTES}), not sent",
        )
        return True

    def room_refusal(self, room: str, peer: Peer | None = None) -> str | None:
        """Why a new room ``room`` may not be opened (it looks like an open room, or like a
        room ``peer`` joined whose join is not applied yet, or it mixes scripts), or None."""
        key = name_key(room)
        others = self.delivery.rooms if peer is None else chain(self.delivery.rooms, peer.rooms)
        for other in others:
            if other != room and name_key(other) == key:
                return (
                    f"the room name #{room} looks like #{other} "
                    f"(names that look alike are the same name); /join {other}"
                )
        return script_problem(room, "room name")

    def join(self, peer: Peer, room: str) -> None:
        assert peer.name is not None
        if room == DEFAULT_ROOM or room in peer.rooms:
            peer.current_room = room
            self._reply(ev.RoomState(peer, room, self.backend.mark()))
            return
        if len(peer.rooms) >= MAX_ROOMS_PER_USER:
            self.fail(peer, "too_many_rooms", f"you are in {len(peer.rooms)} rooms, the most "
                      "one user may join: /leave one first")
            return
        if room not in self.delivery.rooms:
            problem = self.room_refusal(room, peer)
            if problem is not None:
                self.fail(peer, "room_invalid", problem)
                return
        peer.current_room = room
        peer.rooms[room] = None
        self.backend.publish(ev.Joined(room, peer.name, peer.entry, peer))

    def part(self, peer: Peer, room: str) -> None:
        if room == DEFAULT_ROOM:
            self.fail(peer, "cannot_leave", "everyone stays in the lobby; /quit leaves the server")
            return
        if room not in peer.rooms:
            self.fail(peer, "not_in_room", f"you are not in #{room}")
            return
        assert peer.name is not None
        del peer.rooms[room]
        fallback = peer.current_room == room
        if fallback:
            peer.current_room = DEFAULT_ROOM
        self.backend.publish(ev.Parted(room, peer.name, "left", peer, fallback))

    def set_topic(self, peer: Peer, room: str, text: str) -> None:
        if room != DEFAULT_ROOM and room not in peer.rooms:
            self.fail(peer, "not_in_room", f"you are not in #{room}")
            return
        assert peer.name is not None
        self.backend.set_topic(room, peer.name, text, now_ms())
        self.backend.publish(ev.TopicSet(room, peer.name, text, peer))

    def private(self, peer: Peer, to: str, text: str) -> None:
        if not text or text.isspace() or (len(text) > _SURELY_SHORT and self._too_long(peer, text)):
            return
        holder = self.backend.lookup(name_key(to))
        if holder is None:
            self.fail(peer, "no_such_user", f"no user named {to} is online")
            return
        assert peer.name is not None
        self.backend.publish(
            ev.PrivateMessage(now_ms(), peer.name, holder.name, text, peer, holder.peer)
        )

    # ------------------------------------------------------------------ files

    def _files(self, peer: Peer) -> Transfers | None:
        if self.files is None:
            self.fail(peer, "no_files", "this server does not take files")
        return self.files

    def _audience(self, peer: Peer, target: str) -> str | None:
        """The canonical audience of a file ``peer`` shares or lists: a room it is in, or
        ``@`` + the name of a user online; None (``peer`` told why) otherwise."""
        if target.startswith("@"):
            holder = self.backend.lookup(name_key(target[1:]))
            if holder is None:
                self.fail(peer, "no_such_user", f"no user named {target[1:]} is online")
                return None
            return "@" + holder.name
        if target != DEFAULT_ROOM and target not in peer.rooms:
            self.fail(peer, "not_in_room", f"you are not in #{target}; /join {target} first")
            return None
        return target

    def share(self, peer: Peer, frame: f.ShareFile) -> None:
        """``CMD_SHARE``: share a file with a room the sender is in, or with a user online.
        Refused before a byte is sent when it is larger than the server takes; published at
        once when the server holds those bytes already. (Room for it in the quota is made
        when its bytes start to flow: an offer never uploaded evicts nothing.)"""
        files = self._files(peer)
        if files is None:
            return
        assert peer.name is not None
        target = self._audience(peer, frame.target)
        if target is None:
            return
        if frame.size > files.max_size:
            self.fail(peer, "file_too_large", f"the file is {frame.size} bytes; this server "
                      f"takes files of at most {files.max_size} bytes")
            return
        name = display_name(frame.name)
        store = files.store
        held = store.blob_size(frame.sha256)
        if held is not None:
            if held != frame.size:
                self.fail(peer, "bad_frame", "a file with that SHA-256 has another size")
                return
            self._offer(peer.name, target, frame.sha256, frame.size, name, peer)
            return
        token = files.grant_put(frame.sha256, frame.size, name, peer.name, target, peer)
        if token is None:
            self.fail(peer, "too_many_transfers", "too many transfers asked for at once")
            return
        self._reply(ev.UploadReady(peer, frame.sha256, token))

    def file_stored(self, grant: PutGrant) -> None:
        """An upload was verified and stored: publish its offer (its sender may have left;
        the file is shared all the same)."""
        sender = grant.sender
        if grant.peer is not None and not grant.peer.closed and grant.peer.name is not None:
            sender = grant.peer.name
        self._offer(sender, grant.target, grant.sha256, grant.size, grant.name,
                    grant.peer if grant.peer is not None and not grant.peer.closed else None)

    def _offer(self, sender: str, target: str, sha256: str, size: int, name: str,
               sender_peer: Peer | None) -> None:
        assert self.files is not None
        target_peer = None
        pair = ""
        if target.startswith("@"):
            holder = self.backend.lookup(name_key(target[1:]))
            target_peer = holder.peer if holder is not None else None
            pair = _pair(sender, target[1:])
        stored = self.files.store.add_offer(sha256, size, name, sender, target, now_ms(), pair)
        log.info("file %s (%s, %d bytes) shared by %s with %s", stored.id, sha256[:12], size,
                 sender, target)
        self.backend.publish(_event(stored, sender_peer, target_peer))

    def fetch_refusal(self, peer: Peer, offer: StoredOffer) -> tuple[str, str] | None:
        """Why ``peer`` may not fetch ``offer`` (error code, text), or None: the one policy
        hook every download passes. A room's files are for its members (the lobby: everyone);
        a private file for its sender and its addressee only (to anyone else it does not
        exist). A file id alone is never enough."""
        name = peer.name
        if name is None:
            return "not_registered", "choose a nickname first"
        if offer.private:
            if name_key(name) not in (name_key(offer.sender), name_key(offer.target[1:])):
                return "no_such_file", _no_such_file(offer.id)
            return None
        room = offer.target
        if room != DEFAULT_ROOM and room not in peer.rooms:
            return "not_in_room", (f"file {offer.id} was shared in #{room}: join it first "
                                   f"(/join {room}, or richchat get --room {room})")
        return None

    def fetch(self, peer: Peer, file_id: str) -> None:
        """``CMD_GET``: a download token, if the rules let ``peer`` have the file."""
        files = self._files(peer)
        if files is None:
            return
        offer = files.store.offer(file_id)
        if offer is None:
            self.fail(peer, "no_such_file", _no_such_file(file_id))
            return
        refusal = self.fetch_refusal(peer, offer)
        if refusal is not None:
            self.fail(peer, *refusal)
            return
        token = files.grant_get(offer.id, offer.sha256, offer.size, offer.name, peer)
        if token is None:
            self.fail(peer, "too_many_transfers", "too many transfers asked for at once")
            return
        self._reply(ev.DownloadReady(peer, _event(offer), token))

    def list_files(self, peer: Peer, target: str) -> None:
        """``CMD_FILES``: what a room holds (members only), or what two users shared."""
        files = self._files(peer)
        if files is None:
            return
        assert peer.name is not None
        if target.startswith("@"):
            offers = files.store.pair_offers(_pair(peer.name, target[1:]))
        elif target != DEFAULT_ROOM and target not in peer.rooms:
            self.fail(peer, "not_in_room", f"you are not in #{target}; /join {target} first")
            return
        else:
            offers = files.store.room_offers(target)
        self._reply(ev.FileListing(peer, target, tuple(_event(o) for o in offers)))

    # ------------------------------------------------------------------ server

    def shutdown(self) -> None:
        """Tell everyone the server is going away, and write it out now."""
        self.delivery.post(ev.Shutdown("Server is shutting down"))
        self.delivery.flush()

    def flush(self) -> None:
        self.delivery.flush()


def _taken_text(name: str, holder: str) -> str:
    if fold_name(holder) == fold_name(name):
        as_ = "" if holder == name else f" (as {holder})"
        return f"the nickname {name} is already in use{as_}"
    return (
        f"the nickname {name} looks like {holder}, who is online "
        "(names that look alike are the same name)"
    )


#: the longest file name the server keeps and shows, in characters
MAX_DISPLAY_NAME = 255


def display_name(name: str) -> str:
    """What the server shows of a file name a sender gave: its last path component (either
    separator), without surrounding spaces, at most :data:`MAX_DISPLAY_NAME` characters (the
    extension kept); ``file`` if nothing is left. (Control characters were neutralised by the
    frame's validation. Receivers clean it again for their disk:
    :func:`richchat.core.protocol.filenames.safe_file_name`.)"""
    from richchat.core.protocol.filenames import split_ext

    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or base in (".", ".."):
        return "file"
    if len(base) > MAX_DISPLAY_NAME:
        stem, ext = split_ext(base)
        base = stem[: MAX_DISPLAY_NAME - len(ext)] + ext
    return base


def _pair(a: str, b: str) -> str:
    """The key of the private files between two users (either order)."""
    return "|".join(sorted((name_key(a), name_key(b))))


def _no_such_file(file_id: str) -> str:
    return f"no file {file_id} (files expire; ask for it to be shared again)"


def _event(offer: StoredOffer, sender_peer: Peer | None = None,
           target_peer: Peer | None = None) -> ev.FileOffered:
    return ev.FileOffered(offer.id, offer.ts, offer.target, offer.sender, offer.size,
                          offer.sha256, offer.name, sender_peer, target_peer)


def _then(pending: Awaitable[object], done: object) -> Awaitable[object]:
    """Run ``done(result)`` when ``pending`` completes; return what the caller may wait on."""
    import asyncio

    assert callable(done)
    future = asyncio.ensure_future(pending) if inspect.isawaitable(pending) else pending

    def finish(fut: asyncio.Future[object]) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        done(False if exc is not None else fut.result())

    future.add_done_callback(finish)  # type: ignore[union-attr]
    return future
