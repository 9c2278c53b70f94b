"""A file being received, and its SHA-256, fed chunk by chunk off the event loop.

Each chunk is written by one worker thread and hashed by another at the same time: the two
costs overlap instead of adding up (on the 2-core VM of docs/performance.md, writing to the
page cache runs at 300-1000 MB/s and SHA-256 at 450-850 MB/s, so one thread doing both was
the bottleneck of a transfer). One thread per role keeps each role in order. Both release
the GIL (``write`` and ``hashlib`` on large buffers), so the event loop keeps running.

Used by the server for uploads over TLS (:mod:`richchat.core.server.transfer`; plain TCP
uploads have a thread of their own there) and by clients for downloads
(:mod:`richchat.core.transfer`).

Every thread here runs at a lower scheduling priority (:func:`background_priority`): a
transfer is bulk work, and the event loop beside it serves the chat, whose latency is what
people notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

Chunk = bytes | bytearray | memoryview

#: the niceness added to transfer threads (Linux schedules threads one by one: a thread at
#: nice 10 gets about a tenth of the CPU time of the event loop's thread at nice 0 when both
#: want it, and all of it when the loop is idle)
BACKGROUND_NICE = 10


def background_priority() -> None:
    """Lower the calling thread's scheduling priority by :data:`BACKGROUND_NICE` (Linux:
    ``setpriority`` on the thread's id affects that thread only). Elsewhere (where the call
    would lower the whole process, or does not exist), or if not allowed: nothing."""
    if not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        return
    with contextlib.suppress(OSError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid)
                       + BACKGROUND_NICE)


def _write_all(file: IO[bytes], chunks: Sequence[Chunk]) -> None:
    for chunk in chunks:
        file.write(chunk)


def _hash_all(hasher: Any, chunks: Sequence[Chunk]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


class HashWriter:
    def __init__(self, file: IO[bytes], hasher: Any) -> None:
        self.file = file
        self.hasher = hasher
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="richchat-write",
                                          initializer=background_priority)
        self._hashing = ThreadPoolExecutor(1, thread_name_prefix="richchat-hash",
                                           initializer=background_priority)

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
