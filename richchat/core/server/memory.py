"""Housekeeping when the server is quiet: garbage collection and heap trimming.

Two costs of a long-running CPython server are moved to the moments when nobody waits:

* **Full garbage collections.** CPython's cyclic collector now and then walks every object
  that survived earlier collections: with a thousand clients that is tens of thousands of
  objects, a pause of tens of milliseconds in the middle of a broadcast (measured: 45 ms at
  1,000 clients), which is what the slowest deliveries then wait for. Once the server has been
  quiet for a while it runs that full collection itself, then *freezes* the survivors
  (``gc.freeze()``): later automatic collections skip them and only look at objects made
  since. The next quiet moment unfreezes, collects and freezes again, so cyclic garbage that
  was frozen is found then.
* **Freed heap.** CPython hands freed memory back to the C allocator, and glibc keeps it: a
  freed block in the middle of the heap stays part of the process until ``malloc_trim``
  releases the pages around it. A chat server's bursts leave a lot of that behind: every
  newcomer gets the whole user list (``ULIST|`` grows with the number of users, and is rebuilt
  after every change), a burst of messages fills every client's output list at once. Measured
  on loopback with 1,000 idle registered clients: 6-20 KB of RSS per connection right after
  the burst, 3-3.5 KB once the freed heap is given back.

:class:`HeapTrimmer` trims once the server has been quiet (no flush) for ``quiet`` seconds
after some activity, and at most every ``busy_interval`` seconds while activity never stops
(``malloc_trim`` costs about 1 ms at 1,000 clients, 11 ms at 5,000). The full collection costs
more (25 ms at 1,000 clients, 80 ms at 5,000), so a quiet moment runs it only when the
population changed (connections up or down by a tenth, or 50, since the last one) or
``collect_interval`` seconds have passed: a server with a steady trickle of messages does not
pay it after every message. Without glibc's ``malloc_trim`` (macOS, Windows, musl) it only
collects.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections.abc import Callable

log = logging.getLogger("richchat.server")


def libc_malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)`` as a callable, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl), or no C library to load
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int

    def trim() -> object:
        return fn(0)

    return trim


def collect_and_freeze() -> None:
    """A full collection over everything (frozen objects included), then freeze survivors."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class HeapTrimmer:
    """Decides when to tidy: after ``quiet`` seconds without activity (collect, freeze and
    trim), or while busy at most every ``busy_interval`` seconds (trim only). ``activity()``
    returns a counter that grows with work done (the hub's flush count)."""

    def __init__(
        self,
        activity: Callable[[], int],
        trim: Callable[[], object] | None,
        quiet: float = 1.0,
        busy_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        collect: Callable[[], object] | None = collect_and_freeze,
        population: Callable[[], int] = lambda: 0,
        collect_interval: float = 60.0,
    ) -> None:
        self.activity = activity
        self.trim = trim
        self.collect = collect
        self.population = population
        self.collect_interval = collect_interval
        self.quiet = quiet
        self.busy_interval = busy_interval
        self.clock = clock
        self.trims = 0
        self.collections = 0
        self._last_count = activity()
        self._pending = True  # start-up itself (imports, validators, history) left garbage
        self._last_trim = clock()
        self._collected_at: float | None = None  # None: not yet (start-up is due)
        self._collected_population = population()

    def tick(self) -> bool:
        """Called every ``quiet`` seconds; tidies (and returns True) when it is time."""
        now = self.clock()
        count = self.activity()
        quiet = count == self._last_count
        if not quiet:  # busy since the last tick
            self._last_count = count
            self._pending = True
            if self.trim is None or now - self._last_trim < self.busy_interval:
                return False
        elif not self._pending:  # quiet, and nothing to tidy since the last time
            return False
        if quiet:
            self._pending = False
            if self.collect is not None and self._collection_due(now):
                self.collect()
                self.collections += 1
                self._collected_at = now
                self._collected_population = self.population()
        self._last_trim = now
        if self.trim is not None:
            self.trim()
            self.trims += 1
        return True

    def _collection_due(self, now: float) -> bool:
        if self._collected_at is None or now - self._collected_at >= self.collect_interval:
            return True
        before = self._collected_population
        return abs(self.population() - before) >= max(50, before // 10)

    async def run(self) -> None:
        if self.trim is None and self.collect is None:
            return
        while True:
            await asyncio.sleep(self.quiet)
            try:
                self.tick()
            except Exception:  # never let housekeeping take the server down
                log.exception("heap housekeeping failed")
                return
