"""A damaged history file costs history, never a client, and never shows anyone a message
that is not stored: through a real server and SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.linechat import LineClient
from tests.server.conftest import ServerFactory


def _damage(path: Path, table: str) -> None:
    """Another process' connection drops a table under the running server."""
    db = sqlite3.connect(path)
    db.execute(f"DROP TABLE {table}")
    db.commit()
    db.close()


async def test_unreadable_history_still_lets_clients_join_and_chat(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    server = await make_server(data_dir=tmp_path / "data")
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    alice.send("MSG|before the damage")
    await alice.expect(lambda line: line.endswith("|alice|before the damage"))
    _damage(tmp_path / "data" / "history.sqlite3", "messages")

    bob = await LineClient.connect(server.port, hello="t", nick="bob")  # history read fails
    await alice.expect(lambda line: line.startswith("JOIN|lobby|bob("))
    # bob's message cannot be stored: nobody sees it, and bob is told instead of confirmed
    bob.send("MSG|not kept")
    refusal = await bob.expect(lambda line: line.startswith("ERR|"))
    assert refusal.startswith("ERR|not_stored|your message was not delivered")
    assert "no such table: messages" in refusal
    bob.send("CMD_TOPIC|lobby|topics still work")
    for c in (alice, bob):
        await c.expect("TOPIC|lobby|bob|topics still work")
    assert not any("not kept" in line for line in alice.lines + bob.lines if line != refusal)
    raw = await LineClient.connect(server.port)  # a netcat user too
    await raw.expect(lambda line: line.startswith("*** Welcome to "))
    await raw.close()
    await alice.close()
    await bob.close()


async def test_unwritable_topic_still_applies(make_server: ServerFactory, tmp_path: Path) -> None:
    server = await make_server(data_dir=tmp_path / "data")
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    _damage(tmp_path / "data" / "history.sqlite3", "topics")
    alice.send("CMD_TOPIC|lobby|kept in memory")
    await alice.expect(lambda line: line == "TOPIC|lobby|alice|kept in memory")
    alice.send("MSG|and the connection lives")
    await alice.expect(lambda line: line.endswith("|alice|and the connection lives"))
    await alice.close()
