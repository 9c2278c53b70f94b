"""HistoryStore batching and retention, on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from richchat.core.server import storage
from richchat.core.server.storage import PRUNE_EVERY, HistoryStore


def test_retention_keeps_the_newest_messages_of_each_room(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite3", retention=50)
    for i in range(PRUNE_EVERY + 200):
        store.add("lobby" if i % 2 else "dev", 1_000 + i, "alice", "msg", f"m{i}")
    store.flush()
    assert store.count("lobby") == 50
    assert store.count("dev") == 50
    last = PRUNE_EVERY + 199
    assert [m.text for m in store.recent("lobby", 3)] == [
        f"m{last - 4}",
        f"m{last - 2}",
        f"m{last}",
    ]
    store.close()


def test_a_flushed_batch_is_on_disk_for_another_reader(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = HistoryStore(path)
    ids = [store.add("lobby", 1, "bob", "msg", f"hello {i}") for i in range(10)]
    store.flush()
    other = sqlite3.connect(str(path))
    rows = other.execute("SELECT id, text FROM messages ORDER BY id").fetchall()
    other.close()
    assert rows == [(i, f"hello {n}") for n, i in enumerate(ids)]
    store.close()


def test_a_failed_prune_does_not_fail_the_stored_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention's delete fails (here a trigger forbids it; on a full disk the delete too
    needs room in the WAL) after the batch was committed: flush() must not report the
    stored batch as failed, or its senders would be told "not stored" about messages that
    are in history. Failed before the fix (flush raised)."""
    monkeypatch.setattr(storage, "PRUNE_EVERY", 10)
    store = HistoryStore(tmp_path / "h.sqlite3", retention=5)
    store._db.execute("CREATE TRIGGER no_deletes BEFORE DELETE ON messages "
                      "BEGIN SELECT RAISE(FAIL, 'no deletes'); END")
    for i in range(10):
        store.add("lobby", i, "alice", "msg", f"m{i}")
    store.flush()  # the batch is stored; the prune after it fails
    assert [m.text for m in store.recent("lobby", 100)] == [f"m{i}" for i in range(10)]
    store.close()
