"""Message history on disk: SQLite in WAL mode, written in batches before messages are relayed.

The hub assigns message ids in memory, queues rows with :meth:`HistoryStore.add`, and calls
:meth:`HistoryStore.flush` (one transaction) before any queued bytes reach a socket, so every
message a client has seen is on disk, and survives ``kill -9`` of the server.

Durability: a commit reaches the operating system (the page cache), which is what survives
``kill -9`` or a crash of the server; the disk itself is synced by the checkpoint thread,
every :data:`CHECKPOINT_EVERY` s (WAL before the copy, database after), never by the event
loop. The loop's connection runs with ``synchronous=OFF``: with ``NORMAL`` SQLite synced
the WAL on the first commit after each checkpoint, on the loop thread, and while a large
file transfer kept the disk busy that one ``fdatasync`` held every chat message for hundreds
of milliseconds. A power cut or an OS crash can lose the last second of messages (as with
``NORMAL``, which also loses commits since the last sync); the file stays consistent: every
WAL frame carries a checksum chained to its header, so frames that did not reach the disk
are ignored, and the database file changes only in checkpoints, after the WAL is synced.
Retention: the newest ``retention`` messages of each room are kept; older rows are deleted
every :data:`PRUNE_EVERY` inserts. Private messages are never stored.

The file deleted (or another file moved over it) under a running server: SQLite would go on
writing to the open, unlinked file, and every message confirmed from then on would be gone at
the next start. So before each write (and each history read) the store checks that the path
still names the file it has open (device and inode: one ``stat``), and if not starts a new
history file there: the messages of the old one are gone (deleting the file is how one
clears history), the server's identity and the room topics are written to the new one, and
message ids go on increasing. Its header overwritten in place (the file truncated, or
garbage written over it): SQLite, working from its cache and its WAL, would not notice, and the
next start would refuse the file; the same check reads the header's 16 bytes (one ``pread``),
and if they are not SQLite's, moves the damaged file (and its WAL) aside as
``history.sqlite3.damaged-TIME`` and starts a new one. Damage further in the file is not
looked for: SQLite reports it when it reads the page (the write fails and is refused), or
the next start does (exit status 13).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger("richchat.server")

#: what a failing history file raises (disk full, damaged, deleted directory, read-only): an
#: expected fault, logged in one line with its reason, never with a traceback
STORAGE_FAULTS: tuple[type[Exception], ...] = (sqlite3.Error, OSError)

#: the first bytes of every SQLite database file
SQLITE_MAGIC = b"SQLite format 3\x00"

PRUNE_EVERY = 1000
#: seconds between WAL checkpoints, which run in a background thread (they fsync)
CHECKPOINT_EVERY = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id   INTEGER PRIMARY KEY,
    room TEXT NOT NULL,
    ts   INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_room_id ON messages (room, id);
CREATE TABLE IF NOT EXISTS topics (
    room   TEXT PRIMARY KEY,
    setter TEXT NOT NULL,
    text   TEXT NOT NULL,
    ts     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StoredMessage(NamedTuple):
    id: int
    room: str
    ts: int
    name: str
    kind: str  # "msg" or "action"
    text: str


class HistoryStore:
    def __init__(self, path: Path, retention: int = 10_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.retention = retention
        self._next_id = 1
        self._pending: list[StoredMessage] = []
        self._since_prune = 0
        self._touched: set[str] = set()  # rooms written to since the last prune
        #: meta and topics rows as last read, carried into a new file (``_ensure_file``)
        self._carried: list[tuple[str, list[tuple[object, ...]]]] = []
        self._open()

    def _open(self) -> None:
        """Open (or create) the file at :attr:`path`, and start its checkpoint thread."""
        self._set_aside_a_stale_wal()
        self._db = sqlite3.connect(str(self.path), isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=OFF")  # the checkpoint thread syncs
            # Checkpoints copy the WAL into the database and fsync: milliseconds that would
            # stall the event loop. A thread with its own connection runs them instead (the
            # sqlite3 module releases the GIL while SQLite works).
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()
            self._identity = _identity(self.path)
            self._fd = os.open(self.path, os.O_RDONLY)  # for the header check
        except BaseException:
            self._db.close()
            raise
        self._next_id = max(self._next_id, int(row[0]) + 1)
        self._write_wal_owner()
        # The checkpoint thread's own connection, made and used once here: SQLite opens a
        # database file on first use, and a connection first used after another file was
        # moved over the history would be on that file, and checkpoint the old file's WAL
        # into it (its last close did) - a backup put back would get the old messages.
        try:
            checkpoints = sqlite3.connect(str(self.path), isolation_level=None,
                                          check_same_thread=False)
        except sqlite3.Error:
            self._close_file()
            raise
        try:
            checkpoints.execute("PRAGMA busy_timeout=1000")
            # WAL synced before each checkpoint, database file after (module doc)
            checkpoints.execute("PRAGMA synchronous=NORMAL")
            checkpoints.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except BaseException:
            checkpoints.close()
            self._close_file()
            raise
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, args=(checkpoints,), name="richchat-wal-checkpoint",
            daemon=True,
        )
        self._checkpointer.start()

    @property
    def _owner_path(self) -> Path:
        return self.path.with_name(self.path.name + ".wal-owner")

    def _write_wal_owner(self) -> None:
        """Note which file (device, inode) the WAL next to the history belongs to."""
        if self._identity is None:
            return
        try:
            self._owner_path.write_text(f"{self._identity[0]}:{self._identity[1]}\n")
        except OSError as exc:  # the check at the next start is then skipped: not fatal
            log.warning("cannot write %s: %s", self._owner_path, exc.strerror or exc)

    def _set_aside_a_stale_wal(self) -> None:
        """Before SQLite opens the history: a WAL left by another file (a backup moved over
        the history, then the server killed before it noticed) would be replayed onto this
        one, which it does not belong to. It is moved aside instead (kept for a rescue)."""
        wal = Path(f"{self.path}-wal")
        current = _identity(self.path)
        try:
            owner = self._owner_path.read_text().strip()
        except OSError:
            return  # no note (an older version wrote the WAL): SQLite's usual recovery
        if current is None or not wal.exists() or owner == f"{current[0]}:{current[1]}":
            return
        aside = _aside_name(wal, "stale")
        os.rename(wal, aside)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{self.path}-shm")
        log.error("the WAL next to history file %s belongs to the file it replaced: moved "
                  "aside to %s, not replayed onto it", self.path, aside)

    def _stop_checkpoints(self) -> None:
        self._stop.set()
        self._checkpointer.join(timeout=5)

    def _ensure_file(self) -> None:
        """Start a new history file if the open one was deleted or replaced (module doc)."""
        aside: str | None = None
        in_place = False  # the damaged file is the open one (its WAL goes aside with it)
        current = _identity(self.path)
        if current is not None and current == self._identity and self._fd >= 0:
            try:
                if os.pread(self._fd, len(SQLITE_MAGIC), 0) == SQLITE_MAGIC:
                    return
            except OSError:
                pass
            aside, in_place = _aside_name(self.path), True
            log.error("history file %s was damaged under the server (its header is not "
                      "SQLite's): moved aside to %s; starting a new one", self.path, aside)
        elif current is not None and not _sqlite_or_empty(self.path):
            # another file moved over it, not a database: SQLite could not open it, and every
            # message would be refused until someone removed it
            aside = _aside_name(self.path)
            log.error("history file %s was replaced under the server by a file that is not "
                      "SQLite's: moved aside to %s; starting a new one", self.path, aside)
        elif current is not None and os.path.isdir(self.path):
            log.error("history file %s is a directory now: messages are not stored until it "
                      "is removed", self.path)
        elif current is not None:
            log.error("history file %s was replaced under the server by another SQLite file "
                      "(a backup put back?): using that one from now on (the messages of the "
                      "file it replaced are gone)", self.path)
        else:
            log.error("history file %s was deleted under the server: starting a new one there "
                      "(the messages it held are gone)", self.path)
        # the identity and topics carry over: read from the old file (still open, still
        # readable), or, if that is gone (a reopen failed), as they were last read
        try:
            keep = [(table, self._db.execute(f"SELECT * FROM {table}").fetchall())
                    for table in ("meta", "topics")]
            self._carried = keep
        except sqlite3.Error:
            keep = self._carried
        self._stop_checkpoints()
        self._close_file()
        if aside is not None:  # the damaged file (and its WAL, as SQLite would name them)
            os.rename(self.path, aside)
            if in_place:
                with contextlib.suppress(FileNotFoundError):
                    os.rename(f"{self.path}-wal", f"{aside}-wal")
        # The old file's WAL and shared-memory index, if still there, belong to it (SQLite
        # leaves them when its file is gone): a new file must not replay them.
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")
        self._open()
        with self._transaction():
            for table, rows in keep:
                for row in rows:
                    marks = ", ".join("?" * len(row))
                    self._db.execute(f"INSERT OR IGNORE INTO {table} VALUES ({marks})", row)

    def _checkpoint_loop(self, db: sqlite3.Connection) -> None:
        try:
            failing = False
            while not self._stop.wait(CHECKPOINT_EVERY):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy, disk trouble: try again next time
                    if not failing:  # once, not every second while the disk stays full
                        log.warning("WAL checkpoint failed: %s (retrying every %g s)", exc,
                                    CHECKPOINT_EVERY)
                    failing = True
                else:
                    if failing:
                        log.info("WAL checkpoint works again")
                    failing = False
        finally:
            db.close()

    def add(self, room: str, ts: int, name: str, kind: str, text: str) -> int:
        msg_id = self._next_id
        self._next_id += 1
        self._pending.append(StoredMessage(msg_id, room, ts, name, kind, text))
        return msg_id

    def flush(self) -> None:
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        self._ensure_file()
        with self._transaction():
            self._db.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)", rows)
        self._since_prune += len(rows)
        self._touched.update(r.room for r in rows)
        if self._since_prune >= PRUNE_EVERY:
            touched, self._touched = self._touched, set()
            self._since_prune = 0
            try:
                self.prune(touched)
            except sqlite3.Error as exc:  # the rows are stored all the same: not a failure
                log.error("could not delete old history (retention): %s", exc)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One explicit transaction: in autocommit mode (isolation_level=None) ``with db:``
        does not open one, and every row of an executemany would be a commit of its own."""
        db = self._db
        db.execute("BEGIN")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def prune(self, rooms: Iterable[str] | None = None) -> None:
        """Keep the newest ``retention`` messages of each room (of ``rooms``, or all).

        One indexed range delete per room: cost grows with ``retention``, not with the table.
        """
        if rooms is None:
            rooms = [r[0] for r in self._db.execute("SELECT DISTINCT room FROM messages")]
        with self._transaction():
            for room in rooms:
                self._db.execute(
                    "DELETE FROM messages WHERE room = ?1 AND id <= ("
                    "SELECT id FROM messages WHERE room = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    (room, self.retention),
                )

    @property
    def last_id(self) -> int:
        """The id of the newest message added (stored or about to be), 0 when none."""
        return self._next_id - 1

    def recent(self, room: str, limit: int, upto: int | None = None) -> list[StoredMessage]:
        """The last ``limit`` messages of ``room`` (with an id at most ``upto``), oldest
        first."""
        self._ensure_file()  # (a backup moved over it: read that one, as the next write will)
        self.flush()
        if limit <= 0:
            return []
        rows = self._db.execute(
            "SELECT id, room, ts, name, kind, text FROM messages WHERE room = ? AND id <= ? "
            "ORDER BY id DESC LIMIT ?",
            (room, self._next_id if upto is None else upto, limit),
        ).fetchall()
        return [StoredMessage(*r) for r in reversed(rows)]

    def count(self, room: str | None = None) -> int:
        self.flush()
        if room is None:
            return int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        q = "SELECT COUNT(*) FROM messages WHERE room = ?"
        return int(self._db.execute(q, (room,)).fetchone()[0])

    def set_topic(self, room: str, setter: str, text: str, ts: int) -> None:
        self._ensure_file()
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO topics VALUES (?, ?, ?, ?)", (room, setter, text, ts)
            )

    def topics(self) -> dict[str, tuple[str, str]]:
        rows = self._db.execute("SELECT room, setter, text FROM topics").fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def meta(self, key: str, default: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return str(row[0])
        with self._db:
            self._db.execute("INSERT INTO meta VALUES (?, ?)", (key, default))
        return default

    def _close_file(self) -> None:
        self._db.close()
        self._identity = None
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def close(self) -> None:
        try:
            # A file moved over the history since the last write: switch to it first. Closed
            # as it is, the old file's connection would leave its WAL under the history's
            # name (SQLite keeps the WAL of a database that has moved), and the next start
            # would replay it onto the new file.
            self._ensure_file()
            self.flush()  # (may start a new file, and its checkpoint thread: stopped below)
        finally:
            self._stop_checkpoints()
            # SQLite checkpoints the WAL into the database when its last connection closes:
            # that checkpoint is synced like the thread's (WAL before, database after), on
            # the loop, which at shutdown has no chat to hold up
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._close_file()


def _sqlite_or_empty(path: Path) -> bool:
    """True if ``path`` is a regular file that starts as a SQLite database does, or is empty
    (SQLite makes an empty file a new database), or cannot be read (opening it will say why);
    False for a FIFO, a socket or a device there (never opened: opening a FIFO would block
    the event loop until someone writes to it). A directory is not moved aside: writes are
    refused (SQLite cannot open it) until it is removed."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            return True
        if not stat.S_ISREG(mode):
            return False
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return True
    try:
        head = os.read(fd, len(SQLITE_MAGIC))
    except OSError:
        return True
    finally:
        os.close(fd)
    return not head or head == SQLITE_MAGIC


def _aside_name(path: Path, why: str = "damaged") -> str:
    """``history.sqlite3.damaged-YYYYMMDD-HHMMSS``, with ``-2``, ``-3``... if that exists: a
    file moved aside is never overwritten by the next one."""
    base = f"{path}.{why}-{time.strftime('%Y%m%d-%H%M%S')}"
    name, n = base, 1
    while os.path.lexists(name):
        n += 1
        name = f"{base}-{n}"
    return name


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``; None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
