"""A file being received, and its SHA-256, fed chunk by chunk off the event loop.

Each chunk is written by one worker thread and hashed by another at the same time: the two
costs overlap instead of adding up (on the 2-core VM of docs/performance.md, writing to the
page cache runs at 300-1000 MB/s and SHA-256 at 450-850 MB/s, so one thread doing both was
the bottleneck of a transfer). One thread per role keeps each role in order. Both release
the GIL (``write`` and ``hashlib`` on large buffers), so the event loop keeps running.

Both threads run at a lower scheduling priority (:func:`bulk_thread`): when the CPUs are all
busy, the event loop thread (the chat) gets one before the bulk work does.

Used by the server for uploads (:mod:`richchat.core.server.transfer`) and by clients for
downloads (:mod:`richchat.core.transfer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

Chunk = bytes | bytearray | memoryview

#: how much lower than the thread that starts them threads doing bulk work (writing, hashing,
#: verifying files) run: nice +10 (at most 19)
BULK_NICE = 10


def bulk_thread() -> None:
    """Initializer of a thread that does bulk work: lower its own scheduling priority (the
    thread only; Linux only: elsewhere the call would lower the whole process).

    A transfer at full speed keeps every CPU of a small machine busy (the sender, the
    receiving loop, the writer, the hasher); at equal priority the event loop thread waits its
    turn behind them, and every chat message with it."""
    if not sys.platform.startswith("linux"):  # elsewhere a thread id names no thread here
        return
    with contextlib.suppress(OSError):
        tid = threading.get_native_id()
        lower = min(19, os.getpriority(os.PRIO_PROCESS, tid) + BULK_NICE)
        os.setpriority(os.PRIO_PROCESS, tid, lower)


def _write_all(file: IO[bytes], chunks: Sequence[Chunk]) -> None:
    """Write every byte. Our files are unbuffered: a write to a nearly full disk writes what
    fits and returns that count (the next one raises ENOSPC); ignored, the file was cut short
    while its hash, of the bytes received, still matched."""
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
        while view:
            written = file.write(view)
            if not written:  # None (non-blocking) or 0: nothing more will go
                raise OSError(errno.EIO, "the file took no more bytes")
            view = view[written:]


def _hash_all(hasher: Any, chunks: Sequence[Chunk]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


class HashWriter:
    def __init__(self, file: IO[bytes], hasher: Any) -> None:
        self.file = file
        self.hasher = hasher
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="richchat-write",
                                          initializer=bulk_thread)
        self._hashing = ThreadPoolExecutor(1, thread_name_prefix="richchat-hash",
                                           initializer=bulk_thread)

    def feed(self, chunks: Sequence[Chunk]) -> asyncio.Future[tuple[None, None]]:
        """Write and hash ``chunks`` (after everything fed before); done when both are."""
        loop = asyncio.get_running_loop()
        return asyncio.gather(
            loop.run_in_executor(self._writer, _write_all, self.file, chunks),
            loop.run_in_executor(self._hashing, _hash_all, self.hasher, chunks),
        )

    def close(self) -> None:
        """Let the threads go once what was fed is done (the file is the caller's)."""
        self._writer.shutdown(wait=False)
        self._hashing.shutdown(wait=False)
