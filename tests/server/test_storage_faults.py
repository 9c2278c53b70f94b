"""A damaged history file costs history, never a client, and never shows anyone a message
that is not stored: through a real server and SQLite.

Each test also checks that the failure it is about really happened (the server logs it), so
that it cannot pass on a server that never touched the damaged table.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.linechat import LineClient
from tests.server.conftest import ServerFactory


def _damage(path: Path, table: str) -> None:
    """Another process' connection drops a table under the running server."""
    db = sqlite3.connect(path)
    db.execute(f"DROP TABLE {table}")
    db.commit()
    db.close()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[tuple[str, str]]:
        """(message, exception) of each ERROR record."""
        return [(r.getMessage(), repr(r.exc_info[1]) if r.exc_info else "")
                for r in self.records if r.levelno >= logging.ERROR]


@pytest.fixture
def server_log() -> Iterator[_Records]:
    """What the server logs (its logger may not propagate to the root: listen on it)."""
    handler = _Records()
    logger = logging.getLogger("richchat.server")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def test_unreadable_history_still_lets_clients_join_and_chat(
    make_server: ServerFactory, tmp_path: Path, server_log: _Records
) -> None:
    server = await make_server(data_dir=tmp_path / "data")
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    alice.send("MSG|before the damage")
    await alice.expect(lambda line: line.endswith("|alice|before the damage"))
    _damage(tmp_path / "data" / "history.sqlite3", "messages")

    bob = await LineClient.connect(server.port, hello="t", nick="bob")  # history read fails
    await alice.expect(lambda line: line.startswith("JOIN|lobby|bob("))
    assert ("could not read the history of #lobby (no such table: messages)",
            "") in server_log.errors()  # one line: an expected fault, no traceback
    assert not any("before the damage" in line for line in bob.lines)  # joined without it
    # bob's message cannot be stored: nobody sees it, and bob is told instead of confirmed
    bob.send("MSG|not kept")
    refusal = await bob.expect(lambda line: line.startswith("ERR|"))
    assert refusal.startswith("ERR|not_stored|your message was not delivered")
    assert "no such table: messages" in refusal
    assert ("could not write history (no such table: messages); 1 message(s) not relayed",
            "") in server_log.errors()
    bob.send("CMD_TOPIC|lobby|topics still work")
    for c in (alice, bob):
        await c.expect("TOPIC|lobby|bob|topics still work")
    assert not any("not kept" in line for line in alice.lines + bob.lines if line != refusal)
    raw = await LineClient.connect(server.port)  # a netcat user too
    await raw.expect(lambda line: line.startswith("*** Welcome to "))
    await raw.close()
    await alice.close()
    await bob.close()


async def test_unwritable_topic_still_applies(
    make_server: ServerFactory, tmp_path: Path, server_log: _Records
) -> None:
    server = await make_server(data_dir=tmp_path / "data")
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    _damage(tmp_path / "data" / "history.sqlite3", "topics")
    alice.send("CMD_TOPIC|lobby|kept in memory")
    await alice.expect(lambda line: line == "TOPIC|lobby|alice|kept in memory")
    assert ("could not store the topic of #lobby (no such table: topics)",
            "") in server_log.errors()
    alice.send("MSG|and the connection lives")
    await alice.expect(lambda line: line.endswith("|alice|and the connection lives"))
    late = await LineClient.connect(server.port, hello="t", nick="late")  # sees it all the same
    if "TOPIC|lobby|alice|kept in memory" not in late.lines:
        await late.expect("TOPIC|lobby|alice|kept in memory")
    await late.close()
    await alice.close()
