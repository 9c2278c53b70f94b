"""Shared files on the server's disk: content-addressed blobs, offers, quota and retention.

Layout, in ``DATA_DIR/files/``::

    <sha256>              a verified file, named by the SHA-256 of its bytes (one copy
                          however many times, and with whomever, it is shared)
    partial/<sha256>      an upload in progress, or interrupted (resumed from its size)
    index.sqlite3         blobs (size, when last shared), offers (id, audience, sender,
                          name), partial uploads (declared size, last activity)

* **Offers** are what people share: a file id (``richchat get HOST ID``), the blob's SHA-256,
  the name the sender gave, who shared it and with whom (a room, or ``@user``). The same
  bytes shared twice are one blob and two offers.
* **Quota** (``file_quota``, default 1 GiB): stored blobs, the declared size of every upload
  under way, and the bytes interrupted uploads hold never exceed it together. An upload
  reserves its size when its bytes start to flow (not when it is offered: an offer nobody
  uploads holds nothing and evicts nothing); one that does not fit makes room by deleting,
  oldest first, the blobs shared longest ago (their offers go with them) and interrupted
  uploads by their last byte; uploads under way are never deleted for it. A file that cannot
  fit even then is refused before a byte is sent (``quota_full``), and nothing is deleted.
* **Retention** (``file_retention``, default 7 days): a blob is deleted (with its offers) that
  long after it was last shared (sharing the same bytes again renews it). An interrupted
  upload is kept as long, counted from its last byte, so its sender can resume it.

Everything here is synchronous and quick (small SQLite writes, ``unlink``, ``rename``); the
bytes themselves are read and written by :mod:`.transfer`, off the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger("richchat.server")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    sha256      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    last_shared INTEGER NOT NULL            -- ms since the epoch
);
CREATE INDEX IF NOT EXISTS blobs_age ON blobs (last_shared);
CREATE TABLE IF NOT EXISTS offers (
    id      TEXT PRIMARY KEY,
    sha256  TEXT NOT NULL,
    size    INTEGER NOT NULL,
    name    TEXT NOT NULL,
    sender  TEXT NOT NULL,
    target  TEXT NOT NULL,                  -- a room, or '@' + a nickname
    pair    TEXT NOT NULL DEFAULT '',       -- private: both name keys, sorted, '|'-joined
    ts      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS offers_target ON offers (target, ts);
CREATE INDEX IF NOT EXISTS offers_pair ON offers (pair, ts);
CREATE INDEX IF NOT EXISTS offers_sha ON offers (sha256);
CREATE TABLE IF NOT EXISTS partials (
    sha256  TEXT PRIMARY KEY,
    size    INTEGER NOT NULL,               -- the size the sender declared
    updated INTEGER NOT NULL                -- ms since the epoch
);
"""

#: letters of file ids: lowercase, without the ones easily misread (l, o, 0, 1)
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
ID_LENGTH = 12
#: files a CMD_FILES answer lists at most (the newest)
LIST_LIMIT = 100


class StoredOffer(NamedTuple):
    id: str
    sha256: str
    size: int
    name: str
    sender: str
    target: str  # a room, or '@' + the addressee's name
    ts: int  # ms since the epoch

    @property
    def private(self) -> bool:
        return self.target.startswith("@")


def new_file_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))


class FileStore:
    def __init__(
        self,
        directory: Path,
        *,
        quota: int,
        retention: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.partial_dir = directory / "partial"
        self.quota = quota
        self.retention = retention
        self._clock = clock
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(directory / "index.sqlite3"), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        #: uploads under way or interrupted: SHA-256 -> declared size
        self.partials: dict[str, int] = dict(
            self._db.execute("SELECT sha256, size FROM partials").fetchall()
        )
        #: uploads under way (their declared size is reserved in the quota)
        self.active: set[str] = set()
        #: interrupted uploads: SHA-256 -> bytes their partial file holds (counted as such)
        self.held: dict[str, int] = {}
        self._reconcile()
        for sha in self.partials:
            with contextlib.suppress(OSError):
                self.held[sha] = self.partial_path(sha).stat().st_size
        self.blob_bytes = int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM blobs")
                              .fetchone()[0])

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _reconcile(self) -> None:
        """The index and the directory agree: rows whose blob is missing (deleted by hand, a
        crash between rename and insert) go, and so do files no row names."""
        known = {sha for (sha,) in self._db.execute("SELECT sha256 FROM blobs")}
        for sha in list(known):
            if not self.blob_path(sha).is_file():
                log.warning("shared file %s is missing from %s: forgotten", sha[:12],
                            self.directory)
                self._forget_rows(sha)
                known.discard(sha)
        for entry in self.directory.iterdir():
            if len(entry.name) == 64 and entry.name not in known and entry.is_file():
                with contextlib.suppress(OSError):
                    entry.unlink()
        for entry in self.partial_dir.iterdir():
            if entry.name not in self.partials:
                with contextlib.suppress(OSError):
                    entry.unlink()

    # ------------------------------------------------------------------ paths

    def blob_path(self, sha256: str) -> Path:
        return self.directory / sha256

    def partial_path(self, sha256: str) -> Path:
        return self.partial_dir / sha256

    # ------------------------------------------------------------------ blobs

    def blob_size(self, sha256: str) -> int | None:
        row = self._db.execute("SELECT size FROM blobs WHERE sha256 = ?", (sha256,)).fetchone()
        return int(row[0]) if row else None

    @property
    def used(self) -> int:
        """Bytes counted against the quota: stored blobs, the declared size of uploads under
        way, and what interrupted uploads hold."""
        reserved = sum(self.partials[sha] for sha in self.active if sha in self.partials)
        idle = sum(n for sha, n in self.held.items() if sha not in self.active)
        return self.blob_bytes + reserved + idle

    def reserve(self, sha256: str, size: int) -> str | None:
        """An upload of ``size`` bytes starts: make room for it (deleting the files shared
        longest ago if needed) and reserve it; the reason when it cannot fit, else None."""
        if sha256 in self.partials and self.partials[sha256] != size:
            self.drop_partial(sha256)  # declared with another size before: start again
        if size > self.quota:
            return f"the server keeps at most {self.quota} bytes of files"
        self.active.discard(sha256)
        # what this upload's partial file holds is part of the size it reserves now
        excess = self.used - self.held.get(sha256, 0) + size - self.quota
        if excess > 0:
            victims = self._victims(sha256, excess)
            if victims is None:  # deleting everything it may would not do: delete nothing
                return "the server's file space is taken by uploads under way; try later"
            self._evict(victims)
        self.active.add(sha256)
        if sha256 not in self.partials:
            self.partials[sha256] = size
            self._db.execute(
                "INSERT OR REPLACE INTO partials (sha256, size, updated) VALUES (?, ?, ?)",
                (sha256, size, self._now_ms()),
            )
        else:
            self._touch_partial(sha256)
        return None

    def _touch_partial(self, sha256: str) -> None:
        self._db.execute("UPDATE partials SET updated = ? WHERE sha256 = ?",
                         (self._now_ms(), sha256))

    def upload_ended(self, sha256: str, held: int) -> None:
        """An upload's connection ended unfinished with ``held`` bytes in its partial file:
        it holds those (not its declared size) until resumed, and its retention counts from
        now."""
        self.active.discard(sha256)
        if sha256 in self.partials:
            self.held[sha256] = held
            self._touch_partial(sha256)

    def drop_partial(self, sha256: str) -> None:
        """Forget an upload (its data failed the hash, or it expired) and its reservation."""
        self.partials.pop(sha256, None)
        self.active.discard(sha256)
        self.held.pop(sha256, None)
        self._db.execute("DELETE FROM partials WHERE sha256 = ?", (sha256,))
        with contextlib.suppress(FileNotFoundError):
            self.partial_path(sha256).unlink()

    def commit(self, sha256: str, size: int) -> None:
        """The verified partial becomes the blob ``sha256`` (renamed, atomically)."""
        os.replace(self.partial_path(sha256), self.blob_path(sha256))
        self.partials.pop(sha256, None)
        self.active.discard(sha256)
        self.held.pop(sha256, None)
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM partials WHERE sha256 = ?", (sha256,))
            self._db.execute(
                "INSERT OR REPLACE INTO blobs (sha256, size, last_shared) VALUES (?, ?, ?)",
                (sha256, size, self._now_ms()),
            )
        self.blob_bytes += size

    def _victims(self, keep: str, excess: int) -> list[tuple[str, int, bool]] | None:
        """What to delete, oldest first, to free ``excess`` bytes: stored files by when they
        were last shared, and interrupted uploads (not under way, not ``keep``) by their last
        byte; (sha256, bytes, is_blob). None if deleting all of them would not free enough:
        then nothing is deleted."""
        rows = self._db.execute("SELECT sha256, size, last_shared, 1 FROM blobs "
                                "UNION ALL SELECT sha256, 0, updated, 0 FROM partials "
                                "ORDER BY 3")
        victims: list[tuple[str, int, bool]] = []
        for sha, size, _when, is_blob in rows.fetchall():
            if excess <= 0:
                break
            if is_blob:
                count = int(size)
            elif sha == keep or sha in self.active:
                continue
            else:
                count = self.held.get(sha, 0)
            if count:
                victims.append((sha, count, bool(is_blob)))
                excess -= count
        return victims if excess <= 0 else None

    def _evict(self, victims: list[tuple[str, int, bool]]) -> None:
        for sha, size, is_blob in victims:
            if is_blob:
                log.info("file %s (%d bytes) deleted to make room (quota %d bytes)", sha[:12],
                         size, self.quota)
                self.delete_blob(sha)
            else:
                log.info("interrupted upload %s (%d bytes held) deleted to make room (quota %d "
                         "bytes)", sha[:12], size, self.quota)
                self.drop_partial(sha)

    def delete_blob(self, sha256: str) -> None:
        """Delete a blob and every offer of it (expired, evicted, or found damaged)."""
        with contextlib.suppress(FileNotFoundError):
            self.blob_path(sha256).unlink()
        self._forget_blob(sha256)

    def _forget_blob(self, sha256: str) -> None:
        size = self.blob_size(sha256)
        self._forget_rows(sha256)
        if size is not None:
            self.blob_bytes -= size

    def _forget_rows(self, sha256: str) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM blobs WHERE sha256 = ?", (sha256,))
            self._db.execute("DELETE FROM offers WHERE sha256 = ?", (sha256,))

    def sweep(self) -> int:
        """Delete what retention lets go; return the number of blobs and partials deleted."""
        cutoff = self._now_ms() - int(self.retention * 1000)
        old = [sha for (sha,) in self._db.execute(
            "SELECT sha256 FROM blobs WHERE last_shared < ?", (cutoff,))]
        for sha in old:
            log.info("file %s expired (kept %g days after it was last shared)", sha[:12],
                     self.retention / 86400)
            self.delete_blob(sha)
        stale = [sha for (sha,) in self._db.execute(
            "SELECT sha256 FROM partials WHERE updated < ?", (cutoff,)) if sha not in self.active]
        for sha in stale:
            self.drop_partial(sha)
        return len(old) + len(stale)

    # ------------------------------------------------------------------ offers

    def add_offer(self, sha256: str, size: int, name: str, sender: str, target: str,
                  ts: int, pair: str = "") -> StoredOffer:
        """Record that ``sender`` shared blob ``sha256`` with ``target`` (its retention
        starts again)."""
        offer = StoredOffer(new_file_id(), sha256, size, name, sender, target, ts)
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO offers (id, sha256, size, name, sender, target, pair, ts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (offer.id, sha256, size, name, sender, target, pair, ts),
            )
            self._db.execute("UPDATE blobs SET last_shared = ? WHERE sha256 = ?",
                             (self._now_ms(), sha256))
        return offer

    def offer(self, file_id: str) -> StoredOffer | None:
        row = self._db.execute(
            "SELECT id, sha256, size, name, sender, target, ts FROM offers WHERE id = ?",
            (file_id,),
        ).fetchone()
        return StoredOffer(*row) if row else None

    def room_offers(self, room: str, limit: int = LIST_LIMIT) -> list[StoredOffer]:
        return self._listing("target = ? AND pair = ''", (room,), limit)

    def pair_offers(self, pair: str, limit: int = LIST_LIMIT) -> list[StoredOffer]:
        return self._listing("pair = ?", (pair,), limit)

    def _listing(self, where: str, args: Iterable[object], limit: int) -> list[StoredOffer]:
        rows = self._db.execute(
            f"SELECT id, sha256, size, name, sender, target, ts FROM offers WHERE {where} "
            "ORDER BY ts DESC, rowid DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [StoredOffer(*row) for row in reversed(rows)]
