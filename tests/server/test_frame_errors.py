"""docs/protocol.md, "Error codes": a known tag with a malformed payload is ``bad_frame``.
A frame with too few fields (``RMSG|dev``, ``CMD_MSG|bob``) was refused with the code of
its first field (``room_invalid``, ``name_invalid``), as if the room or the name were wrong,
when they were fine: a client showed "bad room name" for a frame it had cut short. Through a
real server, for hello and seed clients."""

from __future__ import annotations

import pytest

from richchat.core.server import ChatServer
from tests.linechat import LineClient

SHORT = [
    ("RMSG|lobby", "ERR|bad_frame|RMSG needs 2 fields separated by '|'"),
    ("CMD_ME|lobby", "ERR|bad_frame|CMD_ME needs 2 fields separated by '|'"),
    ("CMD_TOPIC|lobby", "ERR|bad_frame|CMD_TOPIC needs 2 fields separated by '|'"),
    ("CMD_MSG|alice", "ERR|bad_frame|CMD_MSG needs 2 fields separated by '|'"),
]


@pytest.mark.parametrize("hello", ["t", None], ids=["hello", "seed"])
async def test_a_frame_with_too_few_fields_is_a_bad_frame(
    server: ChatServer, hello: str | None
) -> None:
    alice = await LineClient.connect(server.port, hello=hello, nick="alice")
    for line, refusal in SHORT:
        alice.send(line)
        assert await alice.expect(lambda l: l.startswith("ERR|")) == refusal, line
    # a wrong field still names its field
    alice.send("CMD_JOIN|bad room")
    assert (await alice.expect(lambda l: l.startswith("ERR|"))).startswith("ERR|room_invalid|")
    alice.send("CMD_MSG|bad name|hi")
    assert (await alice.expect(lambda l: l.startswith("ERR|"))).startswith("ERR|name_invalid|")
    await alice.close()
