"""The transfer worker threads of richchat.core.hashwrite: every chunk written and hashed, in
order, while the event loop runs."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from richchat.core.hashwrite import HashWriter


async def test_hash_writer_writes_and_hashes_every_chunk_in_order(tmp_path: Path) -> None:
    chunks = [os.urandom(100_000) for _ in range(5)]
    hasher = hashlib.sha256()
    with open(tmp_path / "out", "wb", buffering=0) as fh:
        writer = HashWriter(fh, hasher)
        try:
            await asyncio.wait_for(writer.feed(chunks[:2]), 30)
            await asyncio.wait_for(writer.feed(chunks[2:]), 30)
        finally:
            writer.close()
    assert (tmp_path / "out").read_bytes() == b"".join(chunks)
    assert hasher.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()
