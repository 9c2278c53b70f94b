"""The transfer worker threads of richchat.core.hashwrite: what they write and hash, and that
they run below the event loop's scheduling priority (Linux: per thread)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path

from richchat.core.hashwrite import BACKGROUND_NICE, HashWriter, background_priority


def nice_of(thread: threading.Thread) -> int:
    assert thread.native_id is not None
    return os.getpriority(os.PRIO_PROCESS, thread.native_id)


def lowered(before: int) -> int:
    return min(19, before + BACKGROUND_NICE)


def test_background_priority_lowers_the_calling_thread_only() -> None:
    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []

    def work() -> None:
        background_priority()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert seen == [lowered(main_before)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before
    assert os.getpriority(os.PRIO_PROCESS, 0) == main_before  # the process as a whole too


async def test_hash_writer_threads_write_hash_and_run_at_a_lower_priority(
        tmp_path: Path) -> None:
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    chunks = [os.urandom(100_000) for _ in range(5)]
    hasher = hashlib.sha256()
    with open(tmp_path / "out", "wb", buffering=0) as fh:
        writer = HashWriter(fh, hasher)
        try:
            await asyncio.wait_for(writer.feed(chunks[:2]), 30)
            await asyncio.wait_for(writer.feed(chunks[2:]), 30)
            workers = [t for t in threading.enumerate()
                       if t.name.startswith(("richchat-write", "richchat-hash"))]
            assert len(workers) == 2
            assert [nice_of(t) for t in workers] == [lowered(loop_nice)] * 2
        finally:
            writer.close()
    assert (tmp_path / "out").read_bytes() == b"".join(chunks)
    assert hasher.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_nice
