"""The server's data directory: created when missing, checked, and held by one server.

Two servers on one data directory would both number messages from the same history file and
lose each other's writes (``UNIQUE constraint failed``), while their clients see every
message confirmed. So a server takes an exclusive lock on ``server.lock`` in the directory
for as long as it runs, and writes its PID there; a second server refuses to start and names
that PID. The lock belongs to the open file: the kernel drops it when the process ends,
``kill -9`` included, so a stale lock file never blocks a restart (its old PID is simply
overwritten). On POSIX this is ``flock`` (per open file, so two servers inside one process
exclude each other too); on Windows ``msvcrt.locking`` of one byte past the PID.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from pathlib import Path

from richchat.core.errors import DataDirError, DataDirLockedError
from richchat.core.protocol.text import is_digits

LOCK_NAME = "server.lock"
_WINDOWS_LOCK_OFFSET = 64  # the byte Windows locks; the PID before it stays readable
#: what a lock held by someone else fails with (flock: EWOULDBLOCK; Windows: EDEADLOCK)
_HELD = {errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, getattr(errno, "EDEADLOCK", errno.EAGAIN)}


def prepare_data_dir(path: Path) -> None:
    """Create ``path`` and its parents if needed; :class:`DataDirError` if it cannot be.

    A directory created here is for its owner only (0700): it holds the history, the file
    index (who shared what with whom, private files included) and the stored files, which
    other local users have no business reading. A directory that exists is left as it is
    (its owner chose its mode)."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        raise DataDirError(f"data directory {path} {_not_a_directory(path)}") from None
    except NotADirectoryError:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), path)
        raise DataDirError(
            f"cannot create data directory {path}: {blocker} is a file, not a directory"
        ) from None
    except OSError as exc:
        raise DataDirError(
            f"cannot create data directory {path}: {exc.strerror or exc}"
        ) from None
    if not path.is_dir():  # a symbolic link to a file, say
        raise DataDirError(f"data directory {path} is not a directory")


def _not_a_directory(path: Path) -> str:
    """What is in the way of a data directory: a file, or a symbolic link that leads nowhere
    (a moved disk, a typo in the link), which ``mkdir`` also finds "existing"."""
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:  # Python 3.11-3.12: a loop
            return "is a symbolic link loop"
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # Python 3.13 and later
                return "is a symbolic link loop"
            return f"is a symbolic link to {os.readlink(path)}, which does not exist"
    return "is a file, not a directory"


class DataDirLock:
    """An exclusive lock on ``DIR/server.lock`` holding this process' PID."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`DataDirLockedError` naming the holder's PID (or
        :class:`DataDirError` when the directory is not writable)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DataDirError(
                f"data directory {self.directory} is not writable: {exc.strerror or exc}"
            ) from None
        try:
            _lock(fd)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno not in _HELD:
                raise DataDirError(
                    f"cannot lock {self.path}: {exc.strerror or exc}"
                ) from None
            raise DataDirLockedError(
                f"data directory {self.directory} is in use by another richchat server "
                f"(PID {holder or 'unknown'})",
                hint="stop that server, or give this one its own --data-dir",
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:
            os.close(fd)
            raise DataDirError(
                f"data directory {self.directory} is not writable: {exc.strerror or exc}"
            ) from None
        self._fd = fd

    def release(self) -> None:
        """Empty the file (no server holds it now) and drop the lock; safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the file releases the lock


def _lock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - Windows
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        os.lseek(fd, 0, os.SEEK_SET)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if is_digits(text) else None
