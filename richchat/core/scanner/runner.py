"""Run a whole scan for the ``richchat scan`` command: its own event loop, Ctrl+C ends it early
with what was found, a progress bar on a terminal."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

from richchat.core.scanner.api import scan

if TYPE_CHECKING:
    from rich.console import Console

    from richchat.core.scanner.models import ScanReport


def run_scan(
    host: str,
    ports: list[int],
    *,
    timeout: float,
    concurrency: int | None,
    syn: bool,
    probe: bool,
    progress: Console | None = None,
) -> ScanReport:
    """Scan ``host``; SIGINT (Ctrl+C) stops it and returns what was found so far (the report
    says ``interrupted``). ``progress``: a terminal console to draw a progress bar on."""

    async def main() -> ScanReport:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        try:
            if progress is None or not progress.is_terminal:
                return await scan(
                    host, ports, timeout=timeout, concurrency=concurrency, syn=syn,
                    probe=probe, stop_event=stop,
                )
            from richchat.core.scanner.render import ProgressBar

            with ProgressBar(progress, len(ports)) as bar:
                return await scan(
                    host, ports, timeout=timeout, concurrency=concurrency, syn=syn,
                    probe=probe, progress_callback=bar.update, stop_event=stop,
                )
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    return asyncio.run(main())
