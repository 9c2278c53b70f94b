"""``scan()``: the one entry point used by ``richchat scan`` and the ``join`` wizard."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from richchat.core.errors import UnknownHostError, UsageError
from richchat.core.scanner.engine import SweepResult, sweep
from richchat.core.scanner.limits import concurrency_budget
from richchat.core.scanner.ports import parse_ports
from richchat.core.scanner.progress import ScanProgress

if TYPE_CHECKING:
    # Imported for real once the sweep is running (pydantic and the protocol models take a
    # few hundred milliseconds to import; the sweep does not need them).
    from richchat.core.scanner.models import PortResult, ScanReport

ProgressCallback = Callable[[ScanProgress], None]

PARALLEL_MIN_PORTS = 4096  # below this, forking workers costs more than it saves
PROBE_CONCURRENCY = 32


async def resolve(host: str) -> tuple[int, tuple[Any, ...]]:
    """Resolve ``host`` to (family, sockaddr-without-port) for TCP."""
    loop = asyncio.get_running_loop()
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        try:  # a numeric address needs no resolver (and no executor thread)
            infos = socket.getaddrinfo(
                name, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
            )
        except socket.gaierror:
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnknownHostError(f"cannot resolve host {host!r}: {exc}") from None
    if not infos:
        raise UnknownHostError(f"cannot resolve host {host!r}")
    family, _, _, _, sockaddr = infos[0]
    parts: tuple[Any, ...] = tuple(sockaddr)
    if family == socket.AF_INET6:
        return family, (parts[0], parts[2], parts[3])
    return family, (parts[0],)


def default_workers() -> int:
    if not hasattr(os, "fork"):
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


class _Progress:
    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self.callback = callback
        self.started = time.monotonic()

    def __call__(self, done: int, found: int, phase: str = "sweep") -> None:
        if self.callback is None:
            return
        elapsed = max(1e-6, time.monotonic() - self.started)
        self.callback(
            ScanProgress(
                done=min(done, self.total),
                total=self.total,
                open=found,
                rate=done / elapsed,
                phase=phase,  # type: ignore[arg-type]
            )
        )


async def _threaded(
    fn: Callable[..., SweepResult],
    family: int,
    address: tuple[Any, ...],
    ports: Sequence[int],
    progress: Callable[[int, int], None],
    on_open: Callable[[int, float], None],
    stop_event: asyncio.Event | None,
    **kwargs: Any,
) -> SweepResult:
    """Run a synchronous sweep in a thread; stop it on cancel or when ``stop_event`` is set."""
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    if stop_event is not None and stop_event.is_set():
        stop.set()  # stopped before it started: scan nothing

    def report(done: int, found: int) -> None:
        loop.call_soon_threadsafe(progress, done, found)

    def found_open(port: int, rtt: float) -> None:
        loop.call_soon_threadsafe(on_open, port, rtt)

    task: asyncio.Future[SweepResult] = loop.run_in_executor(
        None,
        lambda: fn(
            family, address, ports,
            on_progress=report, on_open=found_open, should_stop=stop.is_set, **kwargs,
        ),
    )
    watcher = asyncio.ensure_future(stop_event.wait()) if stop_event is not None else None
    try:
        if watcher is not None:
            await asyncio.wait(_futures(task, watcher), return_when=asyncio.FIRST_COMPLETED)
            if watcher.done():
                stop.set()
        result = await asyncio.shield(task)
    finally:
        stop.set()
        if watcher is not None:
            watcher.cancel()
        if not task.done():
            with contextlib.suppress(BaseException):
                await task
    await asyncio.sleep(0)  # let the last call_soon_threadsafe callbacks run
    return result


class _Prober:
    """Probes each open port as soon as the sweep finds it, so probing overlaps the sweep."""

    def __init__(self, family: int, address: tuple[Any, ...], timeout: float,
                 enabled: bool) -> None:
        self.family = family
        self.address = address
        self.timeout = timeout
        self.enabled = enabled
        self.sem = asyncio.Semaphore(PROBE_CONCURRENCY)
        self.found: dict[int, float] = {}
        self.results: dict[int, PortResult] = {}
        self.refused: set[int] = set()
        self.tasks: list[asyncio.Task[None]] = []

    def on_open(self, port: int, rtt: float) -> None:
        if port in self.found:
            return
        self.found[port] = rtt
        self.tasks.append(asyncio.ensure_future(self._one(port, rtt)))

    async def _one(self, port: int, rtt: float) -> None:
        from richchat.core.scanner.probes import NotOpen, probe_port, verify_open

        async with self.sem:
            try:
                if self.enabled:
                    self.results[port] = await probe_port(
                        self.family, self.address, port,
                        connect_timeout=max(self.timeout, 1.0), rtt=rtt,
                    )
                else:
                    await verify_open(
                        self.family, self.address, port, connect_timeout=max(self.timeout, 1.0)
                    )
            except NotOpen:
                self.refused.add(port)  # the sweep's answer did not hold: never report it

    async def finish(self, stop_event: asyncio.Event | None, progress: _Progress) -> None:
        """Wait for every probe (or until ``stop_event``), then cancel what is left."""
        pending: set[asyncio.Future[Any]] = set(self.tasks)
        waiter = asyncio.ensure_future(stop_event.wait()) if stop_event is not None else None
        try:
            while pending and not (waiter is not None and waiter.done()):
                progress(len(self.tasks) - len(pending), len(self.results), "probe")
                wait_on = pending | ({waiter} if waiter is not None else set())
                done, _ = await asyncio.wait(wait_on, return_when=asyncio.FIRST_COMPLETED)
                pending -= done
                for t in done:
                    if t is not waiter and not t.cancelled() and t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
        finally:
            self.cancel()
            if waiter is not None:
                waiter.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def cancel(self) -> None:
        for t in self.tasks:
            t.cancel()

    def ports(self, sweep_open: dict[int, float]) -> list[PortResult]:
        from richchat.core.scanner.models import PortResult

        merged = {**self.found, **sweep_open}
        return [
            self.results.get(p) or PortResult(port=p, rtt_ms=round(merged[p] * 1000, 3))
            for p in sorted(merged)
            if p not in self.refused
        ]


async def scan(
    host: str,
    ports: Sequence[int] | str | None = None,
    *,
    timeout: float = 1.0,
    concurrency: int | None = None,
    syn: bool = False,
    probe: bool = True,
    workers: int | None = None,
    progress_callback: ProgressCallback | None = None,
    stop_event: asyncio.Event | None = None,
) -> ScanReport:
    """Scan TCP ``ports`` of ``host`` and identify what listens on the open ones.

    ``ports`` is a list of port numbers or an nmap-style spec (``"22,80,5000-6000"``,
    ``"-"``); None means every port. ``timeout`` is the longest wait for one connect (the
    first pass adapts it to the measured round-trip time; the retry uses it in full).
    ``probe=False`` skips service identification. Setting ``stop_event`` ends the scan
    early with the results so far (``report.interrupted``); cancelling the task stops it
    without a report. ``progress_callback`` gets a :class:`ScanProgress` now and then.
    """
    if timeout <= 0:
        raise UsageError("--timeout must be positive")
    if concurrency is not None and concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if ports is None or isinstance(ports, str):
        port_list = parse_ports(ports if ports is not None else "-")
    else:
        port_list = sorted(set(ports))
    if not port_list:
        raise UsageError("no ports to scan")
    if port_list[0] < 1 or port_list[-1] > 65535:  # sorted: the ends tell
        raise UsageError("ports must be between 1 and 65535")
    family, address = await resolve(host)
    started_at = datetime.now(timezone.utc)
    t0 = time.monotonic()
    progress = _Progress(len(port_list), progress_callback)
    budget = concurrency_budget(concurrency)
    prober = _Prober(family, address, timeout, probe)

    try:
        n_workers = workers if workers is not None else default_workers()
        parallel = n_workers > 1 and len(port_list) >= PARALLEL_MIN_PORTS and hasattr(os, "fork")
        if syn:
            from richchat.core.scanner.syn import require_raw_privilege, syn_sweep

            require_raw_privilege(family)
        sweeping: asyncio.Future[SweepResult]
        if parallel:
            from richchat.core.scanner.workers import parallel_sweep

            sweeping = asyncio.ensure_future(parallel_sweep(
                family, address, port_list,
                workers=n_workers, max_inflight=budget, timeout=timeout,
                kind="syn" if syn else "connect",
                on_progress=progress, on_open=prober.on_open, stop_event=stop_event,
            ))
        else:
            sweeping = asyncio.ensure_future(_threaded(
                syn_sweep if syn else sweep, family, address, port_list, progress,
                prober.on_open, stop_event,
                **({"timeout": timeout} if syn else {"timeout": timeout, "max_inflight": budget}),
            ))
        try:
            await asyncio.sleep(0)  # the sweep is under way: now pay for the heavy imports
            from richchat.core.scanner import (
                models,
                probes,  # noqa: F401
            )
            result = await sweeping
        finally:
            if not sweeping.done():
                sweeping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeping
        if not result.interrupted:
            await prober.finish(stop_event, progress)
    finally:
        prober.cancel()

    interrupted = result.interrupted or (stop_event is not None and stop_event.is_set())
    scanned = len(port_list)
    if result.interrupted:  # only the ports that got an answer (or none after a retry)
        scanned = min(scanned, len(result.open) + result.closed + len(result.filtered))
    report = models.ScanReport(
        host=host,
        address=address[0],
        family="ipv6" if family == socket.AF_INET6 else "ipv4",
        method="syn" if syn else "connect",
        ports_scanned=scanned,
        ports_requested=len(port_list),
        open=prober.ports(result.open),
        closed=result.closed + len(prober.refused),
        filtered=sorted(result.filtered),
        self_connects=result.self_connects,
        started_at=started_at,
        srtt_ms=None if result.srtt is None else round(result.srtt * 1000, 3),
        interrupted=interrupted,
    )
    report.duration_s = round(time.monotonic() - t0, 3)
    return report


def _futures(*futs: asyncio.Future[Any]) -> list[asyncio.Future[Any]]:
    return list(futs)
