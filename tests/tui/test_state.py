"""The chat UI's client state, without Textual or sockets: tables of
(state, frame) -> (new state, changes), like h11's tests."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, replace

import pytest

from richchat.core.protocol import frames as f
from richchat.core.protocol.text import fold_name
from richchat.core.tui import state as st
from richchat.core.tui.state import (
    ChatLine,
    ChatState,
    Conversation,
    LineAdded,
    ListChanged,
    NickSet,
    ServerNamed,
    TopicChanged,
    UsersChanged,
    ViewChanged,
)

T = 1_700_000_000_000  # a message's timestamp
NOW = T + 5_000  # the clock when the frame arrives (stamps the client's own lines)


def users(*names: str) -> dict[str, str]:
    return {fold_name(n): n for n in names}


def room(key: str, *lines: ChatLine, members: tuple[str, ...] = (), **kw: object) -> Conversation:
    return Conversation(key, lines=lines, users=users(*members), **kw)  # type: ignore[arg-type]


def private(peer: str, *lines: ChatLine, members: tuple[str, ...] = (),
            **kw: object) -> Conversation:
    return Conversation(st.private_key(peer), peer=peer, lines=lines, users=users(*members),
                        **kw)  # type: ignore[arg-type]


def state(*convs: Conversation, **kw: object) -> ChatState:
    """A state with ``convs`` (the lobby first, added if not given), registered as alice."""
    items = {c.key: c for c in convs}
    if "lobby" not in items:
        items = {"lobby": Conversation("lobby", joined=True), **items}
    else:
        items = {"lobby": items.pop("lobby"), **items}
    fields: dict[str, object] = {"nick": "alice", "online": True, "registered": True}
    fields.update(kw)
    return ChatState(conversations=items, **fields)  # type: ignore[arg-type]


def lobby(*lines: ChatLine, members: tuple[str, ...] = (), **kw: object) -> Conversation:
    kw.setdefault("joined", True)
    return room("lobby", *lines, members=members, **kw)


def msg(name: str, text: str, **kw: object) -> ChatLine:
    return ChatLine(T, "message", text, name=name, **kw)  # type: ignore[arg-type]


def notice(text: str, ts: int = NOW) -> ChatLine:
    return ChatLine(ts, "notice", text)


def error(text: str) -> ChatLine:
    return ChatLine(NOW, "error", text)


def entry(name: str) -> f.UserEntry:
    return f.UserEntry(name=name, host="127.0.0.1", port=40000)


@dataclass(frozen=True)
class Case:
    id: str
    before: ChatState
    frame: f.Frame
    after: ChatState
    changes: tuple[st.Change, ...]


DEV = room("dev", joined=True, members=("alice", "bob"))
HI = msg("bob", "hi")

CASES = [
    # ----------------------------------------------------------------- room lines
    Case("message in the room on screen",
         state(), f.RoomMessage(room="lobby", id=1, ts=T, name="bob", text="hi"),
         state(lobby(HI)), (LineAdded("lobby", HI),)),
    Case("message in another room: counted as unread",
         state(DEV), f.RoomMessage(room="dev", id=1, ts=T, name="bob", text="hi"),
         state(replace(DEV, lines=(HI,), unread=1)), (ListChanged(), LineAdded("dev", HI))),
    Case("a mention elsewhere: unread and marked",
         state(DEV), f.RoomMessage(room="dev", id=1, ts=T, name="bob", text="hey ALICE!"),
         state(replace(DEV, lines=(msg("bob", "hey ALICE!", mention=True),), unread=1,
                       mentioned=True)),
         (ListChanged(), LineAdded("dev", msg("bob", "hey ALICE!", mention=True)))),
    Case("our own name in our own line is no mention",
         state(), f.RoomMessage(room="lobby", id=1, ts=T, name="alice", text="alice here"),
         state(lobby(msg("alice", "alice here"))),
         (LineAdded("lobby", msg("alice", "alice here")),)),
    Case("a word that contains the name is no mention",
         state(), f.RoomMessage(room="lobby", id=1, ts=T, name="bob", text="malice"),
         state(lobby(msg("bob", "malice"))), (LineAdded("lobby", msg("bob", "malice")),)),
    Case("an emote",
         state(), f.Action(room="lobby", id=2, ts=T, name="bob", text="waves"),
         state(lobby(ChatLine(T, "action", "waves", name="bob"))),
         (LineAdded("lobby", ChatLine(T, "action", "waves", name="bob")),)),
    Case("history of a room not in the list yet: the room appears",
         state(), f.RoomMessage(room="ops", id=3, ts=T, name="bob", text="hi"),
         state(room("ops", HI, unread=1)), (ListChanged(), LineAdded("ops", HI))),
    Case("a seed chat line is stamped with the arrival time",
         state(), f.ChatMessage(name="bob", text="hi"),
         state(lobby(ChatLine(NOW, "message", "hi", name="bob"))),
         (LineAdded("lobby", ChatLine(NOW, "message", "hi", name="bob")),)),
    # ----------------------------------------------------------------- private
    Case("a private message opens a conversation with the sender",
         state(), f.Private(ts=T, sender="Bob", to="alice", text="psst"),
         state(private("Bob", ChatLine(T, "private", "psst", name="Bob", to="alice",
                                       mention=True),
                       members=("alice", "Bob"), unread=1, mentioned=True)),
         (ListChanged(), UsersChanged("@bob"),
          LineAdded("@bob", ChatLine(T, "private", "psst", name="Bob", to="alice",
                                     mention=True)))),
    Case("the echo of our own private message goes to the recipient's conversation",
         state(private("bob", members=("alice", "bob")), active="@bob"),
         f.Private(ts=T, sender="alice", to="bob", text="ok"),
         state(private("bob", ChatLine(T, "private", "ok", name="alice", to="bob", mine=True),
                       members=("alice", "bob")), active="@bob"),
         (LineAdded("@bob", ChatLine(T, "private", "ok", name="alice", to="bob",
                                     mine=True)),)),
    # ----------------------------------------------------------------- notices, shutdown
    Case("a server notice goes to the lobby, counted when the lobby is not on screen",
         state(DEV, active="dev"), f.Notice(text="carol joined"),
         state(lobby(notice("carol joined"), unread=1), DEV, active="dev"),
         (ListChanged(), LineAdded("lobby", notice("carol joined")))),
    Case("BYE: the reason in the conversation on screen (the lobby has the notice)",
         state(DEV, active="dev"), f.Bye(code="shutdown", text="Server is shutting down"),
         state(replace(DEV, lines=(notice("Server is shutting down"),)), active="dev"),
         (LineAdded("dev", notice("Server is shutting down")),)),
    Case("BYE in the lobby: nothing more",
         state(), f.Bye(code="shutdown", text="Server is shutting down"), state(), ()),
    Case("a notice that says 'shutting down' is only a notice",
         state(DEV, active="dev"), f.Notice(text="bob: the build is shutting down"),
         state(lobby(notice("bob: the build is shutting down"), unread=1), DEV, active="dev"),
         (ListChanged(), LineAdded("lobby", notice("bob: the build is shutting down")))),
    # ----------------------------------------------------------------- who we are
    Case("HELLO names the server",
         state(), f.Hello(version=1, agent="s/1", name="Office"),
         state(server_name="Office"), (ServerNamed("Office"),)),
    Case("YOU registers us: lobby joined, we are in its list",
         state(lobby(joined=False), nick=None, registered=False), f.You(name="alice"),
         state(lobby(members=("alice",))),
         (UsersChanged("lobby"), NickSet("alice"))),
    Case("YOU again after a reconnect: the same name, nothing to say",
         state(lobby(members=("alice",), joined=False), registered=False), f.You(name="alice"),
         state(lobby(members=("alice",))), (NickSet("alice"),)),
    Case("YOU with a new name: a rename",
         state(lobby(members=("alice", "bob"))), f.You(name="alicia"),
         state(lobby(notice("You are now known as alicia"), members=("alicia", "bob")),
               nick="alicia"),
         (UsersChanged("lobby"), LineAdded("lobby", notice("You are now known as alicia")),
          NickSet("alicia"))),
    # ----------------------------------------------------------------- members
    Case("ULIST: the lobby's members",
         state(), f.UserList(users=(entry("alice"), entry("bob"))),
         state(lobby(members=("alice", "bob"))), (UsersChanged("lobby"),)),
    Case("RLIST of a room we are in",
         state(room("dev", joined=True)), f.RoomUsers(room="dev", users=(entry("bob"),)),
         state(room("dev", joined=True, members=("bob",))), (UsersChanged("dev"),)),
    Case("RLIST that answers /who: shown once",
         state(pending_who=frozenset({"ops"})), f.RoomUsers(room="ops", users=(entry("bob"),)),
         state(lobby(notice("Users in #ops: bob"))),
         (LineAdded("lobby", notice("Users in #ops: bob")),)),
    Case("JOIN of ourselves after /join: the room opens and is shown",
         state(pending_join="dev"), f.UserJoined(room="dev", user=entry("alice")),
         state(room("dev", notice("You joined #dev"), joined=True, members=("alice",)),
               active="dev"),
         (ListChanged(), UsersChanged("dev"), ViewChanged("dev"),
          LineAdded("dev", notice("You joined #dev")))),
    Case("JOIN of ourselves when rejoining after a reconnect: quietly",
         state(room("dev", members=("alice",))), f.UserJoined(room="dev", user=entry("alice")),
         state(room("dev", members=("alice",), joined=True)), ()),
    Case("someone joins a room we are in",
         state(DEV, active="dev"), f.UserJoined(room="dev", user=entry("carol")),
         state(replace(DEV, users=users("alice", "bob", "carol"),
                       lines=(notice("carol joined #dev"),)), active="dev"),
         (UsersChanged("dev"), LineAdded("dev", notice("carol joined #dev")))),
    Case("someone joins the lobby: the list only (the server's notice says it)",
         state(), f.UserJoined(room="lobby", user=entry("carol")),
         state(lobby(members=("carol",))), (UsersChanged("lobby"),)),
    Case("JOIN of a room we are not in: nothing",
         state(), f.UserJoined(room="ops", user=entry("carol")), state(), ()),
    Case("PART of ourselves: the room closes, the lobby is shown",
         state(DEV, active="dev"), f.UserLeft(room="dev", name="alice", reason=""),
         state(lobby(notice("You left #dev"))),
         (ListChanged(), ViewChanged("lobby"), LineAdded("lobby", notice("You left #dev")))),
    Case("someone leaves a room, with the reason",
         state(DEV), f.UserLeft(room="dev", name="bob", reason="quit: bye"),
         state(replace(DEV, users=users("alice"), lines=(notice("bob left #dev (quit: bye)"),))),
         (UsersChanged("dev"), LineAdded("dev", notice("bob left #dev (quit: bye)")))),
    Case("the other user of a private conversation leaves the chat: said there",
         state(lobby(members=("alice", "bob")), private("bob", members=("alice", "bob"))),
         f.UserLeft(room="lobby", name="bob", reason="quit: bye"),
         state(lobby(members=("alice",)),
               private("bob", notice("bob left the chat (quit: bye)"), members=("alice",))),
         (UsersChanged("lobby"), UsersChanged("@bob"),
          LineAdded("@bob", notice("bob left the chat (quit: bye)")))),
    Case("and comes back: said there too",
         state(lobby(members=("alice",)), private("bob", members=("alice",))),
         f.UserJoined(room="lobby", user=entry("bob")),
         state(lobby(members=("alice", "bob")),
               private("bob", notice("bob is online again"), members=("alice", "bob"))),
         (UsersChanged("@bob"), LineAdded("@bob", notice("bob is online again")),
          UsersChanged("lobby"))),
    Case("someone without a private conversation with us comes and goes: the list only",
         state(lobby(members=("alice", "bob"))),
         f.UserLeft(room="lobby", name="bob", reason="quit"),
         state(lobby(members=("alice",))), (UsersChanged("lobby"),)),
    Case("a rename follows the user into every list and their private conversation",
         state(lobby(members=("alice", "bob")), DEV,
               private("bob", members=("alice", "bob")), active="@bob"),
         f.NickChanged(old="bob", new="robert"),
         state(lobby(members=("alice", "robert")),
               replace(DEV, users=users("alice", "robert")),
               private("robert", notice("bob is now robert"), members=("alice", "robert")),
               active="@robert"),
         (UsersChanged("lobby"), UsersChanged("dev"), UsersChanged("@bob"), ListChanged(),
          ViewChanged("@robert"), LineAdded("@robert", notice("bob is now robert")))),
    # ----------------------------------------------------------------- topics, rooms, errors
    Case("a new topic",
         state(DEV), f.Topic(room="dev", setter="bob", text="ship it"),
         state(replace(DEV, topic="ship it", topic_by="bob",
                       lines=(notice("Topic by bob: ship it"),))),
         (TopicChanged("dev"), LineAdded("dev", notice("Topic by bob: ship it")))),
    Case("a cleared topic says so (not 'Topic by bob: ')",
         state(replace(DEV, topic="ship it")), f.Topic(room="dev", setter="bob", text=""),
         state(replace(DEV, topic="", topic_by="bob", lines=(notice("Topic cleared by bob"),))),
         (TopicChanged("dev"), LineAdded("dev", notice("Topic cleared by bob")))),
    Case("the same topic again (a rejoin): not repeated",
         state(replace(DEV, topic="ship it", lines=(HI,))),
         f.Topic(room="dev", setter="bob", text="ship it"),
         state(replace(DEV, topic="ship it", lines=(HI,))), ()),
    Case("the room list",
         state(), f.RoomList(rooms=(f.RoomInfo(room="lobby", members=3),
                                    f.RoomInfo(room="dev", members=1))),
         state(lobby(notice("Rooms: #lobby (3), #dev (1)"))),
         (LineAdded("lobby", notice("Rooms: #lobby (3), #dev (1)")),)),
    Case("a refused /join: shown, and no longer awaited",
         state(pending_join="bad"), f.Error(code="room_invalid", text="bad room"),
         state(lobby(error("bad room [room_invalid]"))),
         (LineAdded("lobby", error("bad room [room_invalid]")),)),
    Case("a /msg to nobody online: refused where it was typed, nothing opened",
         state(pending_private=(("@nobody", "lobby"),)),
         f.Error(code="no_such_user", text="no user named nobody is online"),
         state(lobby(error("no user named nobody is online [no_such_user]"))),
         (LineAdded("lobby", error("no user named nobody is online [no_such_user]")),)),
    Case("a /msg delivered: its conversation opens and is shown",
         state(pending_private=(("@bob", "lobby"),)),
         f.Private(ts=T, sender="alice", to="Bob", text="hi"),
         state(private("Bob", ChatLine(T, "private", "hi", name="alice", to="Bob", mine=True),
                       members=("alice", "Bob")), active="@bob"),
         (ListChanged(), UsersChanged("@bob"), ViewChanged("@bob"),
          LineAdded("@bob", ChatLine(T, "private", "hi", name="alice", to="Bob", mine=True)))),
    Case("a /msg delivered after the user moved on: opened, not shown",
         state(DEV, pending_private=(("@bob", "lobby"),), active="dev"),
         f.Private(ts=T, sender="alice", to="Bob", text="hi"),
         state(DEV, private("Bob", ChatLine(T, "private", "hi", name="alice", to="Bob",
                                            mine=True),
                            members=("alice", "Bob"), unread=1), active="dev"),
         (ListChanged(), UsersChanged("@bob"),
          LineAdded("@bob", ChatLine(T, "private", "hi", name="alice", to="Bob", mine=True)))),
    Case("PING changes nothing", state(), f.Ping(token="1"), state(), ()),
    Case("an unknown frame changes nothing", state(), f.Unknown(text="NEW|x"), state(), ()),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_apply(case: Case) -> None:
    after, changes = st.apply(case.before, case.frame, NOW)
    assert changes == case.changes
    assert after == case.after


def test_apply_leaves_the_old_state_as_it_was() -> None:
    before = state(DEV)
    copy = replace(before)
    st.apply(before, f.RoomMessage(room="dev", id=1, ts=T, name="bob", text="hi"), NOW)
    assert before == copy and before.conversations["dev"].lines == ()


def test_a_conversation_keeps_the_last_lines() -> None:
    s = state()
    for n in range(st.MAX_LINES + 5):
        s, _ = st.apply(s, f.RoomMessage(room="lobby", id=n, ts=T, name="bob", text=f"{n}"),
                        NOW)
    lines = s.current.lines
    assert len(lines) == st.MAX_LINES and lines[0].text == "5" and lines[-1].text == f"{n}"


def test_a_private_conversation_takes_its_nick_from_the_state_not_the_title() -> None:
    s, _ = st.apply(state(), f.Private(ts=T, sender="Bob", to="alice", text="hi"), NOW)
    conv = s.conversations["@bob"]
    assert conv.peer == "Bob" and conv.title == "@Bob" and conv.private


# --------------------------------------------------------------------------- local steps


def test_switch_and_cycle_reset_the_unread_count() -> None:
    s = state(replace(DEV, unread=2, mentioned=True), private("bob"))
    s2, changes = st.switch(s, "dev")
    assert s2.active == "dev" and s2.current.unread == 0 and not s2.current.mentioned
    assert changes == (ViewChanged("dev"), ListChanged())
    assert st.cycle(s2, 1)[0].active == "@bob"
    assert st.cycle(s2, -1)[0].active == "lobby"
    assert st.cycle(state(), 1)[0].active == "lobby"
    assert st.switch(s, "nope") == (s, ())


def test_open_and_close_a_private_conversation() -> None:
    s, changes = st.open_private(state(), "Bob")
    assert s.active == "@bob" and s.current.peer == "Bob"
    assert s.current.sorted_users() == ["alice", "Bob"]
    assert ViewChanged("@bob") in changes
    s, changes = st.close(s, "@bob")
    assert s.active == "lobby" and "@bob" not in s.conversations
    assert st.close(s, "lobby")[0].conversations.keys() == {"lobby"}  # the lobby stays


def test_clear_empties_the_window_only() -> None:
    s = state(replace(DEV, lines=(HI,), topic="t"), active="dev")
    s2, changes = st.clear(s, "dev")
    assert s2.current.lines == () and s2.current.topic == "t"
    assert changes == (ViewChanged("dev"),)


def test_connection_comes_and_goes() -> None:
    s, changes = st.connected(ChatState(), "Office")
    assert s.online and not s.registered and s.server_name == "Office"
    assert changes == (ServerNamed("Office"),)
    s, _ = st.apply(s, f.You(name="alice"), NOW)
    s, _ = st.apply(s, f.UserJoined(room="dev", user=entry("alice")), NOW)
    assert s.registered and s.conversations["dev"].joined
    s, changes = st.disconnected(s)
    assert not s.online and not s.registered and changes == ()
    assert not any(c.joined for c in s.conversations.values())
    assert s.nick == "alice"  # asked for again on the next connection


def test_expectations() -> None:
    s = st.expect_who(st.expect_join(state(), "dev"), "ops")
    assert s.pending_join == "dev" and s.pending_who == {"ops"}


def test_the_pure_parts_do_not_import_textual() -> None:
    code = ("import sys, richchat.core.tui.state, richchat.core.tui.session, "
            "richchat.core.tui.commands; print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_a_full_lobby_list_settles_who_is_online_in_private_conversations() -> None:
    """Found by review: a private conversation's user followed only the lobby's JOIN and
    PART; bob leaving while we were disconnected, the lobby list of the reconnection no
    longer had him, but ``@bob`` still listed him, and his coming back said nothing."""
    before = state(lobby(members=("alice", "bob")), private("bob", members=("alice", "bob")))
    away, _ = st.apply(before, f.RoomUsers(room="lobby", users=[entry("alice")]), NOW)
    assert set(away.conversations["@bob"].users) == {"alice"}
    assert away.conversations["@bob"].lines[-1].text == "bob is not online"
    back, _ = st.apply(away, f.UserList(users=[entry("alice"), entry("bob")]), NOW)
    assert set(back.conversations["@bob"].users) == {"alice", "bob"}
    assert back.conversations["@bob"].lines[-1].text == "bob is online again"
    again, _ = st.apply(back, f.UserList(users=[entry("alice"), entry("bob")]), NOW)
    assert again.conversations["@bob"].lines == back.conversations["@bob"].lines  # no repeat
