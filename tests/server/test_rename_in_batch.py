"""Answers to lines sent at once with a rename among them describe the chat as it was when
each line was handled (found by the exploratory pass of stop 29): the hub renames at once
for the lines that follow, but the answers to the lines before are rendered when the batch is
dispatched, and read the connection's live name: ``printf 'CMD_USER|bob\\nCMD_WHO|lobby\\n
CMD_USER|bob2\\n' | nc`` got ``YOU|bob2`` first and a member list with ``bob2``, before the
rename itself; a netcat user ``*** You are dave2.`` before ``dave is now known as dave2``."""

from __future__ import annotations

import asyncio

from richchat.core.server import ChatServer


async def _lines(port: int, text: str, until: str) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(text.encode())
    await writer.drain()
    lines: list[str] = []
    while not any(until in line for line in lines):
        raw = await asyncio.wait_for(reader.readline(), 20)
        assert raw, lines
        lines.append(raw.decode().rstrip("\r\n"))
    writer.close()
    return lines


async def test_answers_before_a_rename_in_the_same_batch_use_the_old_name(
        server: ChatServer) -> None:
    lines = await _lines(server.port, "HELLO|1|t/1\nCMD_USER|bob\nCMD_WHO|lobby\n"
                         "CMD_JOIN|ops\nCMD_WHO|ops\nCMD_USER|bob2\nCMD_WHO|lobby\n",
                         until="RLIST|lobby|bob2(")
    yous = [l for l in lines if l.startswith("YOU|")]
    assert yous[0] == "YOU|bob", lines
    first_new = next(i for i, l in enumerate(lines) if "bob2" in l)
    lists = [(i, l) for i, l in enumerate(lines) if l.startswith("RLIST|")]
    assert [l.split("(")[0] for _, l in lists[:2]] == ["RLIST|lobby|bob", "RLIST|ops|bob"], lines
    assert all(i < first_new for i, _ in lists[:2]), lines
    assert lists[-1][1].startswith("RLIST|lobby|bob2("), lines


async def test_a_netcat_user_renaming_in_the_same_batch(server: ChatServer) -> None:
    lines = await _lines(server.port, "dave\n/users\n/nick dave2\n",
                         until="is now known as dave2")
    said = [l for l in lines if l.startswith("*** ")]
    assert said[-4:] == ["*** You are dave. Type /nick NAME to change it, /help for commands.",
                         "*** dave joined", "*** Members of #lobby: dave",
                         "*** dave is now known as dave2"], lines
