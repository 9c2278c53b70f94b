"""Run the scan engines in forked worker processes, one per core, from asyncio.

Each worker gets an interleaved share of the ports (``ports[i::n]``) and its share of the
file-descriptor budget, and reports over a pipe: ``P done open`` progress lines, then one
``R {json}`` line with its :class:`SweepResult`. The parent reads the pipes on the event
loop, so the async caller stays responsive; cancelling the caller terminates the workers
(by PID) and reaps them. Workers ignore SIGINT: Ctrl+C is the parent's to handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from richchat.core.errors import RichchatError
from richchat.core.scanner.engine import SweepResult, connect_sweep_class

ProgressFn = Callable[[int, int], None]
OpenFn = Callable[[int, float], None]


def _child(  # pragma: no cover - runs in the forked child
    write_fd: int,
    kind: str,
    family: int,
    address: tuple[Any, ...],
    ports: Sequence[int],
    kwargs: dict[str, Any],
) -> None:
    status = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(-1)

        def progress(done: int, found: int) -> None:
            os.write(write_fd, f"P {done} {found}\n".encode())

        def found_open(port: int, rtt: float) -> None:
            os.write(write_fd, f"O {port} {rtt}\n".encode())

        if kind == "syn":
            from richchat.core.scanner.syn import SynSweep

            result = SynSweep(
                family, address, on_progress=progress, on_open=found_open, **kwargs
            ).run(list(ports))
        else:
            result = connect_sweep_class()(
                family, address, on_progress=progress, on_open=found_open, **kwargs
            ).run(ports)
        data = ("R " + json.dumps(result.to_wire()) + "\n").encode()
        while data:
            data = data[os.write(write_fd, data):]
    except BaseException as exc:
        status = 1
        with contextlib.suppress(OSError):
            os.write(write_fd, f"E {type(exc).__name__}: {exc}\n".encode())
    finally:
        os._exit(status)


class _Worker:
    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd = fd
        self.buf = b""
        self.done = 0
        self.found = 0
        self.result: SweepResult | None = None
        self.partial: dict[int, float] = {}  # open ports reported so far
        self.error: str | None = None
        self.eof = asyncio.get_running_loop().create_future()
        self.reaped = False
        self.finished = False  # the worker closed its pipe (it exited)

    def on_readable(self, on_line: Callable[[], None], on_open: OpenFn | None) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            asyncio.get_running_loop().remove_reader(self.fd)
            self.finished = True
            if not self.eof.done():
                self.eof.set_result(None)
            return
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            kind, _, rest = line.partition(b" ")
            if kind == b"P":
                done, found = rest.split()
                self.done, self.found = int(done), int(found)
            elif kind == b"O":
                port, rtt = rest.split()
                self.partial[int(port)] = float(rtt)
                if on_open is not None:
                    on_open(int(port), float(rtt))
            elif kind == b"R":
                self.result = SweepResult.from_wire(json.loads(rest))
            elif kind == b"E":
                self.error = rest.decode(errors="replace")
        on_line()

    def stop(self) -> None:
        if not self.reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def reap(self) -> None:
        if not self.reaped:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.reaped = True


async def parallel_sweep(
    family: int,
    address: tuple[Any, ...],
    ports: Sequence[int],
    *,
    workers: int,
    max_inflight: int,
    timeout: float,
    kind: str = "connect",
    on_progress: ProgressFn | None = None,
    on_open: OpenFn | None = None,
    stop_event: asyncio.Event | None = None,
) -> SweepResult:
    """Scan ``ports`` with ``workers`` forked processes and merge their results.

    ``kind`` is ``"connect"`` (:class:`ConnectSweep`) or ``"syn"`` (:class:`SynSweep`, each
    worker with its own raw socket and source port).

    When ``stop_event`` is set the workers are terminated and the open ports they had
    reported so far come back in a result marked ``interrupted``.
    """
    loop = asyncio.get_running_loop()
    shares = [list(ports[i::workers]) for i in range(workers)]
    shares = [s for s in shares if s]
    per_worker = max(1, max_inflight // max(1, len(shares)))
    kwargs: dict[str, Any] = {"timeout": timeout}
    if kind == "connect":
        kwargs["max_inflight"] = per_worker
    procs: list[_Worker] = []
    interrupted = False

    def report() -> None:
        if on_progress is not None:
            on_progress(sum(w.done for w in procs), sum(w.found for w in procs))

    try:
        for share in shares:
            read_fd, write_fd = os.pipe()
            with warnings.catch_warnings():
                # Python 3.12 warns about fork() with threads running; the child only
                # uses sockets and os.write, then os._exit(), so no lock can bite it.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                os.close(read_fd)
                _child(write_fd, kind, family, address, share, kwargs)
            os.close(write_fd)
            os.set_blocking(read_fd, False)
            worker = _Worker(pid, read_fd)
            procs.append(worker)
            loop.add_reader(read_fd, worker.on_readable, report, on_open)
        everything = asyncio.gather(*(w.eof for w in procs))
        if stop_event is None:
            await everything
        else:
            waiter = asyncio.ensure_future(stop_event.wait())
            try:
                await asyncio.wait(
                    _futures(everything, waiter), return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                waiter.cancel()
            if not everything.done():
                everything.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await everything
                interrupted = True
    finally:
        for w in procs:
            if not w.finished:
                loop.remove_reader(w.fd)
                w.stop()
            w.reap()
            os.close(w.fd)
    merged = SweepResult()
    if interrupted:
        for w in procs:
            if w.result is not None:
                merged.merge(w.result)
            else:
                merged.open.update(w.partial)
                merged.closed += max(0, w.done - len(w.partial))
        merged.interrupted = True
        return merged
    for w in procs:
        if w.result is None:
            raise RichchatError(f"scan worker {w.pid} failed: {w.error or 'no result'}")
        merged.merge(w.result)
    merged.filtered.sort()
    return merged


def _futures(*futs: asyncio.Future[Any]) -> list[asyncio.Future[Any]]:
    return list(futs)
