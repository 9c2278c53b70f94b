"""What a typed line does (the router), without Textual: (state, line) -> outcome."""

from __future__ import annotations

from dataclasses import replace

import pytest

from richchat.core.protocol import frames as f
from richchat.core.tui import commands
from richchat.core.tui import state as st
from richchat.core.tui.state import ChatState, Conversation
from tests.tui.test_state import DEV, NOW, private, state

MAX = 100
PRIV = private("Bob", members=("alice", "Bob"))


def run(s: ChatState, text: str) -> commands.Outcome:
    return commands.submit(s, text, NOW, max_bytes=MAX)


def last_line(outcome: commands.Outcome) -> str:
    return outcome.state.current.lines[-1].text


@pytest.mark.parametrize(
    ("before", "text", "frame"),
    [
        (state(), "hello", f.Say(text="hello")),
        (state(), "//etc/passwd is a path", f.Say(text="/etc/passwd is a path")),
        (state(DEV, active="dev"), "hello", f.SayRoom(room="dev", text="hello")),
        (state(PRIV, active="@bob"), "hello", f.SendPrivate(to="Bob", text="hello")),
        (state(DEV, active="dev"), "/me waves", f.SendAction(room="dev", text="waves")),
        (state(PRIV, active="@bob"), "/me waves", f.SendPrivate(to="Bob", text="* waves")),
        (state(DEV, active="dev"), "/topic ship it", f.SetTopic(room="dev", text="ship it")),
        (state(DEV, active="dev"), "/topic --clear", f.SetTopic(room="dev", text="")),
        (state(DEV, active="dev"), "/leave", f.PartRoom(room="dev")),
        (state(DEV), "/part dev", f.PartRoom(room="dev")),
        (state(), "/rooms", f.ListRooms()),
        (state(DEV, active="dev"), "/NICK alicia", f.SetNick(name="alicia")),
        (state(registered=False), "/nick alicia", f.SetNick(name="alicia")),
    ],
)
def test_lines_that_become_one_frame(before: ChatState, text: str, frame: f.Frame) -> None:
    out = run(before, text)
    assert out.send == frame
    assert not out.keep and not out.quit
    assert out.state == before and out.changes == ()


@pytest.mark.parametrize(
    ("before", "text", "says"),
    [
        (state(online=False), "hello", "Not connected: your message is kept in the input line."),
        (state(registered=False), "hello", "No nickname yet (/nick NAME): your message is kept."),
        (state(), "x" * (MAX + 1),
         f"Message too long ({MAX + 1} bytes; at most {MAX}): it is kept in the input line."),
        (state(replace(DEV, joined=False), active="dev"), "hello",
         "Not in #dev yet (rejoining): your message is kept."),
        (state(), "/frobnicate now", "Unknown command /frobnicate; type /help for the list."),
        (state(), "/join", "Usage: /join ROOM"),
        (state(), "/join no spaces",
         "A room name starts with a letter or digit and contains only letters, digits, '.', '-'"
         " and '_'"),
        (state(), "/query", "Usage: /msg USER TEXT"),
        (state(), "/msg bob " + "x" * (MAX + 1),
         f"Message too long ({MAX + 1} bytes; at most {MAX}): it is kept in the input line."),
        (state(PRIV, active="@bob"), "/me " + "x" * (MAX - 1),
         f"Message too long ({MAX + 1} bytes; at most {MAX}): it is kept in the input line."),
        (state(DEV, active="dev"), "/me " + "x" * (MAX + 1),
         f"Message too long ({MAX + 1} bytes; at most {MAX}): it is kept in the input line."),
        (state(), "/query bad|name", "Bad user name 'bad|name': a nickname cannot contain '|'"),
        (state(), "/msg bad|name hello",
         "Bad user name 'bad|name': a nickname cannot contain '|'"),
        (state(), "/msg #dev hello", "Bad user name '#dev': a nickname cannot contain '#'"),
        (state(), "/msg " + "x" * 40 + " hi",
         "Bad user name '" + "x" * 30 + "'...: a nickname has at most 24 characters"),
        (state(online=False), "/join dev", "Not connected: your command is kept in the input line."),
        (state(registered=False), "/join dev", "Choose a nickname first: /nick NAME"),
        (state(PRIV, active="@bob"), "/topic x", "Private conversations have no topic."),
    ],
)
def test_refusals_keep_the_line_and_say_why(before: ChatState, text: str, says: str) -> None:
    out = run(before, text)
    assert out.keep and out.send is None and not out.quit
    assert last_line(out) == says
    assert out.state.current.lines[-1].kind == "error"


def test_blank_line_does_nothing() -> None:
    out = run(state(), "   ")
    assert out == commands.Outcome(state(), keep=True)


def test_quit_and_help() -> None:
    assert run(state(), "/quit").quit
    assert run(state(), "/QUIT now").quit
    out = run(state(), "/help")
    texts = [line.text for line in out.state.current.lines]
    assert texts == list(commands.HELP) and not out.keep and out.send is None


def test_query_and_msg_open_a_private_conversation() -> None:
    for text in ("/query Bob", "/msg Bob"):
        out = run(state(), text)
        assert out.send is None and not out.keep
        assert out.state.active == "@bob" and out.state.current.peer == "Bob"
        assert st.ViewChanged("@bob") in out.changes
    out = run(state(), "/msg @Bob")  # as the conversation list writes him
    assert out.state.active == "@bob" and out.state.current.peer == "Bob"


def test_msg_with_text_opens_the_conversation_once_the_server_delivers_it() -> None:
    """Nobody of that name may be online: the conversation opens on the server's echo, and a
    refusal opens nothing (the state tests follow both answers)."""
    out = run(state(), "/query Bob see you")
    assert out.send == f.SendPrivate(to="Bob", text="see you")
    assert out.state.active == "lobby" and "@bob" not in out.state.conversations
    assert out.state.pending_private == (("@bob", "lobby"),)
    assert run(state(), "/msg @Bob see you").send == f.SendPrivate(to="Bob", text="see you")
    out = run(state(PRIV), "/msg bob again")  # a conversation we have: shown at once
    assert out.send == f.SendPrivate(to="bob", text="again")
    assert out.state.active == "@bob" and out.state.pending_private == ()


def test_join_switches_to_a_room_we_are_in_or_asks_for_it() -> None:
    out = run(state(DEV), "/join #Dev")
    assert out.send is None and out.state.active == "dev"
    out = run(state(), "/join ops")
    assert out.send == f.JoinRoom(room="ops") and out.state.pending_join == "ops"
    assert out.state.active == "lobby"  # switched when the server says we are in


def test_who_waits_for_the_answer() -> None:
    out = run(state(DEV, active="dev"), "/who")
    assert out.send == f.Who(room="dev") and out.state.pending_who == {"dev"}
    out = run(state(PRIV, active="@bob"), "/who")  # a private view asks about the lobby
    assert out.send == f.Who(room="lobby")


def test_leave_closes_a_private_conversation_and_refuses_the_lobby() -> None:
    out = run(state(PRIV, active="@bob"), "/leave")
    assert out.send is None and "@bob" not in out.state.conversations
    assert out.state.active == "lobby"
    out = run(state(), "/leave")
    assert out.send is None and not out.keep
    assert last_line(out) == "Everyone stays in #lobby; it cannot be left."


def test_users_and_clear_are_local() -> None:
    s = state(Conversation("lobby", joined=True, users={"bob": "bob", "alice": "alice"}))
    out = run(s, "/users")
    assert last_line(out) == "Users in #lobby (2): alice, bob" and out.send is None
    out = run(out.state, "/clear")
    assert out.state.current.lines == () and out.changes == (st.ViewChanged("lobby"),)


def test_topic_alone_shows_the_topic_and_never_clears_it() -> None:
    """`/topic` alone sent an empty topic: it cleared the room's topic for everyone without a
    word (found by an exploratory pass). It shows the topic; `/topic --clear` clears it."""
    out = run(state(replace(DEV, topic="ship friday", topic_by="bob"), active="dev"), "/topic")
    assert out.send is None and not out.keep
    # who set it, and a full stop before the hint (it ran on: "is: ship friday /topic TEXT
    # sets it", tenth exploratory pass), as netcat users read it
    assert last_line(out) == ("The topic of #dev is: ship friday (set by bob). /topic TEXT "
                              "sets it, /topic --clear clears it.")
    out = run(state(DEV, active="dev"), "/topic")
    assert out.send is None
    assert last_line(out).startswith("#dev has no topic.")
