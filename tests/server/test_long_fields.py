"""Text fields with a length limit (a topic, a quit reason) through a real server: a topic over
the limit is refused with a reason a person can read, naming the field (not the room) as the
problem; a quit reason over the limit is cut, and the user leaves as asked."""

from __future__ import annotations

from richchat.core.protocol.text import MAX_QUIT_REASON, MAX_TOPIC_LEN
from richchat.core.server import ChatServer
from tests.linechat import LineClient

TOO_LONG = "t" * (MAX_TOPIC_LEN + 100)


async def test_a_topic_over_the_limit_is_refused_with_its_reason(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    alice.send(f"CMD_TOPIC|lobby|{TOO_LONG}")
    refusal = await alice.expect(lambda l: l.startswith("ERR|"))
    # the room is fine: the topic is what is wrong
    assert refusal == (f"ERR|bad_frame|a topic has at most {MAX_TOPIC_LEN} characters "
                       f"(this one has {len(TOO_LONG)})")
    raw = await LineClient.connect(server.port)
    raw.send("carol")
    await raw.expect(lambda l: l.startswith("*** You are carol."))
    raw.send(f"/topic {TOO_LONG}")
    assert await raw.expect(lambda l: l.startswith("*** Error:")) == (
        f"*** Error: a topic has at most {MAX_TOPIC_LEN} characters (this one has "
        f"{len(TOO_LONG)})")
    raw.send("/topic " + "t" * MAX_TOPIC_LEN)  # at the limit: set
    await alice.expect(f"TOPIC|lobby|carol|{'t' * MAX_TOPIC_LEN}")
    await alice.close()
    await raw.close()


async def test_a_long_quit_reason_still_quits(server: ChatServer) -> None:
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    raw = await LineClient.connect(server.port)
    raw.send("carol")
    await raw.expect(lambda l: l.startswith("*** You are carol."))
    raw.send("/quit " + "r" * 300)
    assert await raw.closed()  # the server closed it: carol left as she asked
    gone = await alice.expect(lambda l: l.startswith("PART|lobby|carol|"))
    assert gone == f"PART|lobby|carol|quit: {'r' * MAX_QUIT_REASON}"
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    bob.send("CMD_QUIT|" + "b" * 300)
    assert await bob.closed()
    await alice.expect(f"PART|lobby|bob|quit: {'b' * MAX_QUIT_REASON}")
    await alice.close()
