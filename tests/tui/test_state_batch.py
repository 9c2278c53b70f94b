"""``state.apply_all`` (a batch of frames in one step) is ``state.apply`` of each in turn
(issue #17: the chat UI applies what one read brings in one step)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import decode_server_line
from richchat.core.tui import state as S

NAMES = ["alice", "Bob", "bob", "carol", "Zoë", "eve"]
ROOMS = ["lobby", "dev", "ops"]


def _line(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(NAMES))
    room = draw(st.sampled_from(ROOMS))
    other = draw(st.sampled_from(NAMES))
    n = draw(st.integers(1, 50))
    return draw(st.sampled_from([
        f"RMSG|{room}|{n}|1700000000000|{name}|hello {n} alice",
        f"ACTION|{room}|{n}|1700000000000|{name}|waves",
        f"PRIV|1700000000000|{name}|{other}|psst {n}",
        f"JOIN|{room}|{name}(10.0.0.1:5)",
        f"PART|{room}|{name}|quit",
        f"NICK|{name}|{other}",
        f"YOU|{name}",
        f"ULIST|{name}(1.2.3.4:5),{other}(1.2.3.4:6)",
        f"RLIST|{room}|{name}(1.2.3.4:5)",
        f"TOPIC|{room}|{name}|topic {n}",
        f"SRV|{name} joined",
        f"ERR|not_in_room|you are not in #{room}",
        "HELLO|1|richchat-server/0.1.0|role=server|name=srv",
        "BYE|shutdown|bye",
        "ROOMS|lobby:2,dev:1",
    ]))


frames = st.lists(st.composite(_line)().map(decode_server_line), max_size=40)


@given(frames, st.sampled_from([None, "alice"]))
@settings(max_examples=300)
def test_a_batch_is_each_frame_in_turn(batch: list[f.Frame], nick: str | None) -> None:
    start = S.ChatState(nick=nick)
    one_by_one, added = start, []
    for frame in batch:
        one_by_one, changes = S.apply(one_by_one, frame, 7)
        added += [c for c in changes if isinstance(c, S.LineAdded)]
    batched, changes = S.apply_all(start, batch, 7)
    assert batched == one_by_one
    assert [c for c in changes if isinstance(c, S.LineAdded)] == added
    flags = {c for c in changes if not isinstance(c, S.LineAdded)}
    for key, conv in batched.conversations.items():  # every member list that changed is said
        before = start.conversations.get(key)
        if before is not None and before.users != conv.users:
            assert S.UsersChanged(key) in flags
    assert start == S.ChatState(nick=nick)  # the old state is left as it was
