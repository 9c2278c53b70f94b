"""Presence changes (JOIN/PART + SRV notices) are batched per flush: check that a burst of
registrations still reaches every client exactly once, in order, and never after a message of
the user it announces. Real server, real sockets."""

from __future__ import annotations

import asyncio

from richchat.core.server import ChatServer
from tests.linechat import LineClient


async def test_a_burst_of_registrations_announces_each_user_once_in_order(
    server: ChatServer,
) -> None:
    watcher = await LineClient.connect(server.port, hello="test/1", nick="watcher")
    # 30 clients register at once; each says something in the same packet as its CMD_USER
    clients = []
    for i in range(30):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(f"HELLO|1|test/1\nCMD_USER|u{i}\nMSG|hi from u{i}\n".encode())
        clients.append(LineClient(reader, writer))
    said: set[str] = set()
    while len(said) < 30:
        line = await watcher.expect(lambda l: l.startswith("RMSG|lobby|") and "|hi from u" in l)
        said.add(line)
    joins = [l for l in watcher.lines if l.startswith("JOIN|lobby|u")]
    notices = [l for l in watcher.lines if l.startswith("SRV|u") and l.endswith(" joined")]
    assert sorted(joins) == sorted({l for l in joins}), "a JOIN arrived twice"
    assert len(joins) == 30 and len(notices) == 30
    for i in range(30):
        join = watcher.lines.index(next(l for l in joins if l.startswith(f"JOIN|lobby|u{i}(")))
        said = watcher.lines.index(next(l for l in watcher.lines if l.endswith(f"|hi from u{i}")))
        assert join < said, f"u{i} spoke before its JOIN"
        assert watcher.lines[join + 1] == f"SRV|u{i} joined"
    # a late client's ULIST has everyone, and it gets no JOIN of users already there
    late = await LineClient.connect(server.port, hello="test/1", nick="late")
    ulist = next(l for l in late.lines if l.startswith("ULIST|"))
    assert all(f"u{i}(" in ulist for i in range(30))
    await late.expect("SRV|late joined")
    assert not [l for l in late.lines if l.startswith("JOIN|lobby|u")]
    for c in clients:
        await c.close()
    for _ in range(30):
        await watcher.expect(lambda l: l.startswith("PART|lobby|u"))
    await watcher.close()
    await late.close()
