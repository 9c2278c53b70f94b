"""File transfer benchmark: a 1 GiB file uploaded to and downloaded from a richchat server on
loopback, side by side with the same bytes piped through ``ncat`` in the same run, while 100
other clients chat.

Measured, in one run:

* **ncat**: ``ncat -l 127.0.0.1 PORT > FILE`` and ``ncat --send-only 127.0.0.1 PORT < FILE``:
  the time from the sender's start to the listener's exit (the bytes on the listener's disk).
* **richchat upload**: a worker process (this script with ``--worker upload``) runs
  ``richchat.core.sharing.share_file`` (what ``richchat send --file`` runs): connect, register,
  hash the file (SHA-256), offer it, upload it on a transfer connection, wait for the server's
  verification and the published offer. Throughput is over the transfer: from the server's
  ``XOK`` (the first progress report) to the end (the server has received, hashed, fsync'ed
  and stored every byte); the whole command's time (hashing included) is shown too.
* **richchat download**: ``fetch_file`` (what ``richchat get`` runs) into a fresh directory,
  verified (SHA-256) and named; throughput from the first progress report to the end.
* **Server memory**: the server's anonymous resident memory (RssAnon, /proc) sampled every
  20 ms during each transfer; growth = the highest sample minus the last sample before it.
* **Chat latency**: 100 clients in the lobby (benchmarks/fanout.py's load generator, its
  paced phase: 10 senders at a fixed rate, arrival latency from the kernel's receive
  timestamp), measured idle, then during an upload (of another file of the same size), then
  during a download. Each of these phases starts once its worker reports the first
  transferred bytes; the table says which share of the phase overlapped the transfer.
  Throughput is measured on transfers of their own, with the chat quiet (100 clients
  connected, nobody talking), as ncat's is: the load generator's CPU is not taken from them.

Every step (ncat, each transfer, each chat phase) starts once the page cache holds nothing
dirty (``sync``) and right after a scratch file of 1.25 times the size was written and deleted:
no step runs while the kernel writes back the files of the step before it, and on a virtual
machine that hands freed memory back to its hypervisor every step writes its file into
memory the machine holds, alike (``settle()`` says why this decided which transfer was fast;
``--no-settle`` leaves it out). What the machine wrote back during each chat phase, how long
the server's event loop thread waited for a CPU and what the hypervisor stole are in a table
of their own.

Only loopback (127.0.0.1); every phase is bounded in count and time; the temporary files
(7 GiB at most: two files, the server's copies, two downloads, ncat's copy) are deleted at the
end.

    python benchmarks/transfer.py                 # 1 GiB, 100 chat clients (~1.5 min)
    python benchmarks/transfer.py --size 256M --json out.json
    python benchmarks/transfer.py --against /work/main --rounds 3   # paired, ~10 min
    python benchmarks/transfer.py --cold      # downloads read the server's copy from the disk

Paired (``--against DIR``): the server of each round is run from this tree or from DIR
(``PYTHONPATH=DIR``), alternating A B, B A, ...; the clients, the chat load generator and
ncat are this tree's for both. Each round: ncat, an upload and a download on their own
(throughput, memory), then the chat idle, an upload during the chat, the chat idle, a
download during the chat, the chat idle: each transfer's p99 is compared with the idle
phases right before and right after it. The server's CPU is split between its event loop's
thread and its other threads (/proc/PID/task).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

import fanout as fo  # noqa: E402  (the chat load generator)

HOST = "127.0.0.1"
MiB = 1024 * 1024


# --------------------------------------------------------------------------- workers


def _progress_recorder(marks: dict[str, float]) -> object:
    def progress(stage: str, done: int, total: int) -> None:
        now = time.time()
        key = f"first_{stage}"
        if key not in marks:
            marks[key] = now
            if stage in ("uploading", "downloading"):
                print(json.dumps({"event": "started", "t": now}), flush=True)
        marks[f"last_{stage}"] = now

    return progress


async def _worker(args: argparse.Namespace) -> None:
    from richchat.core.client import Address
    from richchat.core.sharing import fetch_file, share_file
    from richchat.core.transfer import DownloadDir

    address = Address(HOST, args.port)
    marks: dict[str, float] = {"start": time.time()}
    progress = _progress_recorder(marks)
    if args.worker == "upload":
        shared = await share_file(address, "uploader", Path(args.path), timeout=60,
                                  progress=progress)  # type: ignore[arg-type]
        result: dict[str, object] = shared.model_dump()
        first = marks.get("first_uploading", marks["start"])
    else:
        got = await fetch_file(address, args.file_id, DownloadDir(Path(args.path)),
                               nick="downloader", timeout=60,
                               progress=progress)  # type: ignore[arg-type]
        result = got.model_dump()
        first = marks.get("first_downloading", marks["start"])
    marks["end"] = time.time()
    result.update(event="done", marks=marks, transfer_s=marks["end"] - first,
                  total_s=marks["end"] - marks["start"], sys_s=os.times().system)
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------- helpers


def make_file(path: Path, size: int) -> None:
    """``size`` bytes: a 16 MiB random block, each copy stamped with its index (no two
    blocks alike, so nothing on the way can shortcut repeated data)."""
    block = bytearray(os.urandom(16 * MiB))
    with open(path, "wb") as fh:
        written, index = 0, 0
        while written < size:
            block[:8] = index.to_bytes(8, "little")
            chunk = block[: min(len(block), size - written)]
            fh.write(chunk)
            written += len(chunk)
            index += 1


def parse_size(text: str) -> int:
    from richchat.core.protocol.filenames import parse_size as parse

    return parse(text)


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def ncat_pipe(src: Path, out: Path, timeout: float) -> tuple[float, float]:
    """Seconds to pipe ``src`` through ncat on loopback into ``out``, and the system CPU
    seconds of the listener (the receiving side: it reads the socket, writes the file)."""
    exe = shutil.which("ncat")
    if exe is None:
        raise SystemExit("ncat is not installed")
    port = fo.free_port()
    with open(out, "wb") as sink:
        listener = subprocess.Popen([exe, "-l", HOST, str(port)], stdout=sink,
                                    stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:  # ncat -l is listening once a connect succeeds... which it accepts:
                # so wait for the port to be bound instead, without connecting
                if f"{port:04X}" in Path("/proc/net/tcp").read_text().upper():
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("ncat -l did not start")
                time.sleep(0.02)
            t0 = time.monotonic()
            # blocking waits, not subprocess's timed ones (they poll with sleeps of up to
            # 50 ms); a watchdog ends both ncats past the timeout
            with open(src, "rb") as source:
                sender = subprocess.Popen([exe, "--send-only", HOST, str(port)], stdin=source,
                                          stdout=subprocess.DEVNULL)

            def stop() -> None:
                sender.kill()
                listener.kill()

            watchdog = threading.Timer(timeout, stop)
            watchdog.start()
            try:
                sent = sender.wait()
                _, status, usage = os.wait4(listener.pid, 0)
                listener.returncode = got = os.waitstatus_to_exitcode(status)
            finally:
                watchdog.cancel()
            seconds = time.monotonic() - t0
            if sent != 0 or got != 0:
                raise RuntimeError(f"ncat exited with {sent} (sender), {got} (listener)")
            return seconds, usage.ru_stime
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait(timeout=5)


def start_server(tmp: Path, size: int, tree: Path = ROOT,
                 extra: list[str] | None = None) -> fo.Server:
    """A ``richchat server`` run from the source tree ``tree`` (``PYTHONPATH=tree``)."""
    data = tmp / "server"
    args = [
        "server", "--host", HOST, "--port", "0", "--no-beacon", "--no-mdns",
        "--data-dir", str(data), "--log-level", "warning", "--flood-rate", "0",
        "--file-max-size", str(size), "--file-quota", str(2 * size + MiB),
        *(extra or []),
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "richchat", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(tree)),
                            cwd=tmp)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"richchat server did not start: {line!r}")
    port = int(line.rsplit(":", 1)[1].split()[0])
    return fo.Server("richchat", proc, port, fo.HelloDialect(), data, " ".join(cmd[1:]))


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache (written back first): the next reads of it
    come from the disk, as for a file shared days ago (``--cold``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def settle(tmp: Path, size: int, enabled: bool = True) -> None:
    """Put every step in the same state before it starts (docs/performance.md, "File
    transfers: what the machine's memory did to the figures"):

    * write back what earlier steps left dirty in the page cache, so that no step (ncat's or
      richchat's) runs while the kernel writes back the files of the step before it (the
      first steps of a run overlapped the write-back of the 2 GiB of source files made for
      it);
    * then write a scratch file of 1.25 x ``size`` and delete it at once (never written
      back, no disk I/O, as long as it stays below the kernel's background write-back
      threshold, ``vm.dirty_background_ratio`` of the available memory: 10 % of 23 GB here;
      on a smaller machine some of it is written, and it may push the source files out of
      the page cache; the write-back table shows what was written). On a virtual machine whose balloon device reports free memory to
      the hypervisor (virtio free page reporting, ``/sys/module/page_reporting``), memory
      freed a few seconds ago is handed back, and a process writing a new file into the page
      cache makes the hypervisor give it back page by page: writing 1 GiB then costs 1.1-2.6 s
      of system time instead of 0.17-0.25 s. Which step found memory freed just before it
      decided which was fast: ncat, which each round starts right after the round before
      deleted its files, nearly always; the download, which follows steps that keep their
      files, nearly never. The scratch file leaves memory the machine holds, freed just
      before, for every step alike: a machine without such a balloon is always in that state.
    """
    if not enabled:
        return
    os.sync()
    scratch = tmp / "settle.scratch"
    block = bytes(16 * MiB)
    with open(scratch, "wb") as fh:
        for _ in range(0, size + size // 4, len(block)):
            fh.write(block)
    scratch.unlink()


def proc_sys(pid: int) -> float:
    """System CPU seconds of a process (/proc/PID/stat, stime)."""
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[12]) / fo.CLK_TCK


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (utime + stime) of each thread of a process, from /proc/PID/task/*/stat
    (the thread whose id is ``pid`` runs the server's event loop)."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(task.name)] = (int(fields[11]) + int(fields[12])) / fo.CLK_TCK
    return out


def cpu_split(pid: int, before: dict[int, float], seen: dict[int, float]) -> tuple[float, float]:
    """(event loop thread, other threads) CPU seconds from ``before`` to the last samples in
    ``seen`` (a thread that ended counts with its last sample: workers that live for one
    transfer end with it)."""
    loop = seen.get(pid, 0.0) - before.get(pid, 0.0)
    others = sum(cpu - before.get(tid, 0.0) for tid, cpu in seen.items() if tid != pid)
    return round(loop, 2), round(others, 2)


def git_head(tree: Path) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "-uno"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            return out.stdout.strip() + ("+changes" if dirty else "")
    return tree.name


@dataclass
class TransferResult:
    direction: str
    transfer_s: float
    total_s: float
    mb_per_s: float  # MB (10^6 bytes) per second over the transfer
    rss_before_kb: int
    rss_peak_kb: int
    growth_mb: float
    paced: fo.PhaseResult | None = None
    overlap: float = 0.0  # share of the paced phase that ran during the transfer
    #: the server's CPU seconds during the transfer: event loop thread, other threads
    loop_cpu_s: float = 0.0
    workers_cpu_s: float = 0.0
    receiver_sys_s: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


async def sample_rss(pid: int, stop: asyncio.Event, samples: list[int],
                     cpu: dict[int, float]) -> None:
    while not stop.is_set():
        samples.append(fo.proc_rss_kb(pid))
        with contextlib.suppress(OSError):
            cpu.update(thread_cpu(pid))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.02)


async def transfer(direction: str, worker_args: list[str], server: fo.Server, run: fo.Run,
                   size: int, args: argparse.Namespace, chat: bool) -> TransferResult:
    """One transfer by a worker process; with ``chat``, the chat's paced phase during it."""
    pid = server.proc.pid
    stop = asyncio.Event()
    samples: list[int] = []
    await asyncio.sleep(0.5)
    before = fo.proc_rss_kb(pid)
    cpu0 = thread_cpu(pid)
    sys0 = proc_sys(pid)
    cpu_seen: dict[int, float] = {}
    sampler = asyncio.ensure_future(sample_rss(pid, stop, samples, cpu_seen))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--worker", direction, *worker_args,
        stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert proc.stdout is not None
    started = await asyncio.wait_for(proc.stdout.readline(), args.timeout)
    if not started:
        raise RuntimeError(f"the {direction} worker ended before any byte")
    paced = None
    t_phase = t_phase_end = time.time()
    if chat:
        rate = min(args.rate, args.paced_budget / (run.senders * (run.n - 1)))
        msgs = max(4, int(rate * args.paced_seconds))
        phase, cpu = await run.run_phase(msgs, rate, timeout=args.timeout)
        t_phase_end = time.time()
        paced = fo.summarize(phase, cpu, round(rate, 2))
    done_line = await asyncio.wait_for(proc.stdout.readline(), args.timeout)
    await asyncio.wait_for(proc.wait(), args.timeout)
    stop.set()
    await sampler
    server_sys = proc_sys(pid) - sys0
    if proc.returncode != 0 or not done_line:
        raise RuntimeError(f"the {direction} worker failed ({proc.returncode})")
    done = json.loads(done_line)
    t_end = done["marks"]["end"]
    overlap = max(0.0, min(t_end, t_phase_end) - t_phase) / max(1e-9, t_phase_end - t_phase)
    peak = max(samples) if samples else before
    loop_cpu, workers_cpu = cpu_split(pid, cpu0, cpu_seen)
    return TransferResult(
        direction=direction, transfer_s=round(done["transfer_s"], 3),
        total_s=round(done["total_s"], 3), mb_per_s=round(size / done["transfer_s"] / 1e6, 1),
        rss_before_kb=before, rss_peak_kb=peak, growth_mb=round((peak - before) / 1024, 2),
        paced=paced, overlap=round(overlap, 2) if chat else 0.0,
        loop_cpu_s=loop_cpu, workers_cpu_s=workers_cpu,
        # the receiving side's system CPU: the server's for an upload, the client's for a
        # download (its whole process, start-up included)
        receiver_sys_s=round(server_sys if direction == "upload" else done["sys_s"], 2),
        extra={k: v for k, v in done.items() if k in ("id", "sha256", "sent", "received",
                                                       "path")},
    )


async def idle_phase(run: fo.Run, args: argparse.Namespace) -> fo.PhaseResult:
    rate = min(args.rate, args.paced_budget / (run.senders * (run.n - 1)))
    msgs = max(4, int(rate * args.paced_seconds))
    phase, cpu = await run.run_phase(msgs, rate, timeout=args.timeout)
    return fo.summarize(phase, cpu, round(rate, 2))


async def bench_round(label: str, tree: Path, src: Path, other: Path, tmp: Path,
                      args: argparse.Namespace) -> dict[str, Any]:
    """One round against the server of ``tree``: ncat; an upload and a download on their
    own (throughput, memory); then the chat idle, an upload during the chat, the chat idle,
    a download during the chat, the chat idle (each transfer's p99 against the idle phases
    right before and right after it)."""
    size = args.size
    report: dict[str, Any] = {"tree": label, "path": str(tree), "commit": git_head(tree),
                                 "load_before": loadavg()}
    settle(tmp, size, args.settle)
    ncat_s, ncat_sys = ncat_pipe(src, tmp / "ncat.out", args.timeout)
    if (tmp / "ncat.out").stat().st_size != size:
        raise RuntimeError("ncat lost bytes")
    (tmp / "ncat.out").unlink()
    report["ncat_s"] = round(ncat_s, 3)
    report["ncat_mb_per_s"] = round(size / ncat_s / 1e6, 1)
    report["ncat_receiver_sys_s"] = round(ncat_sys, 2)
    print(f"[{label}] ncat: {ncat_s:.2f}s, {size / ncat_s / 1e6:.0f} MB/s", file=sys.stderr)
    server_tmp = tmp / f"server-{label}"
    server_tmp.mkdir()
    server = start_server(server_tmp, size, tree, args.server_arg)
    report["server_command"] = f"PYTHONPATH={tree} python -m richchat {server.config}"
    run = fo.Run(server, args.clients, args.senders, args.payload, 8)
    try:
        await run.connect_all(timeout=60)
        if run.registered < args.clients:
            raise RuntimeError(f"only {run.registered} chat clients registered")
        await run.quiesce(quiet=0.5, timeout=30)
        results: dict[str, TransferResult] = {}
        idles: dict[str, fo.PhaseResult] = {}
        steps: list[tuple[str, str, Path | None, bool]] = [
            ("upload", "upload", src, False),
            ("download", "download", tmp / "down-1", False),
            ("idle before", "", None, True),
            ("upload + chat", "upload", other, True),
            ("idle between", "", None, True),
            ("download + chat", "download", tmp / "down-2", True),
            ("idle after", "", None, True),
        ]
        for key, direction, path, chat in steps:
            settle(tmp, size, args.settle)
            if not direction:
                idles[key] = await idle_phase(run, args)
                print(f"[{label}] {key}: chat paced p99 {idles[key].p99_ms} ms", file=sys.stderr)
                continue
            assert path is not None
            extra = ["--port", str(server.port), "--path", str(path)]
            if direction == "download":
                extra += ["--file-id", str(results["upload"].extra["id"])]
                if args.cold:
                    evict(server_tmp / "server" / "files" / str(results["upload"].extra["sha256"]))
            result = await transfer(direction, extra, server, run, size, args, chat)
            results[key] = result
            p99 = f", chat paced p99 {result.paced.p99_ms} ms" if result.paced else ""
            print(f"[{label}] {key}: {result.mb_per_s} MB/s, server +{result.growth_mb} MB, "
                  f"CPU loop {result.loop_cpu_s} s / workers {result.workers_cpu_s} s{p99}",
                  file=sys.stderr)
            if direction == "download":
                shutil.rmtree(path, ignore_errors=True)
        report["transfers"] = {k: asdict(v) for k, v in results.items()}
        report["idle"] = {k: asdict(v) for k, v in idles.items()}
        report["lost_connections"] = run.lost_connections
    finally:
        run.close()
        server.stop()
        shutil.rmtree(server_tmp, ignore_errors=True)
    report["load_after"] = loadavg()
    return report


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    size = args.size
    tmp = Path(tempfile.mkdtemp(prefix="transfer-bench-", dir=args.tmp))
    trees: list[tuple[str, Path]] = [("this", ROOT)]
    if args.against is not None:
        trees.append(("against", args.against.resolve()))
    report: dict[str, Any] = {"size": size, "load_before": loadavg(),
                                 "cores": os.cpu_count(), "rounds": []}
    rounds: list[dict[str, Any]] = report["rounds"]
    try:
        src, other = tmp / "payload.bin", tmp / "payload-2.bin"
        t0 = time.monotonic()
        make_file(src, size)
        make_file(other, size)
        print(f"made 2 x {size} bytes in {time.monotonic() - t0:.1f}s; load {loadavg()}",
              file=sys.stderr)
        for r in range(args.rounds):
            # A B, then B A, ...: a trend in the machine's load falls on both trees alike
            for label, tree in (trees if r % 2 == 0 else trees[::-1]):
                result = await bench_round(label, tree, src, other, tmp, args)
                result["round"] = r + 1
                rounds.append(result)
                print(round_rows([result], size)[-1], file=sys.stderr)
    finally:
        report["load_after"] = loadavg()
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def _ratios(r: dict[str, Any]) -> dict[str, float]:
    """p99 during each transfer over the idle p99 right before it, right after it, and over
    the mean of the two."""
    idle = {k: v["p99_ms"] for k, v in r["idle"].items()}
    tr = r["transfers"]
    out: dict[str, float] = {}
    for key, before, after in (("upload + chat", "idle before", "idle between"),
                               ("download + chat", "idle between", "idle after")):
        p99 = tr[key]["paced"]["p99_ms"]
        out[f"{key} vs before"] = p99 / idle[before]
        out[f"{key} vs after"] = p99 / idle[after]
        out[f"{key} vs both"] = p99 / ((idle[before] + idle[after]) / 2)
    return out


HEADER = (
    "| round | tree | load | ncat MB/s | upload MB/s (vs ncat) | download MB/s (vs ncat) "
    "| server memory growth | chat p99 idle before / between / after (ms) "
    "| p99 during upload (vs idle before / after) | p99 during download (vs idle before / after) "
    "| server CPU s, loop / other threads: upload+chat; download+chat |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def round_rows(rounds: list[dict[str, Any]], size: int) -> list[str]:
    lines = []
    for r in rounds:
        ncat = float(r["ncat_mb_per_s"])
        tr: dict[str, dict[str, Any]] = r["transfers"]
        idle = {k: v["p99_ms"] for k, v in r["idle"].items()}
        q = _ratios(r)
        up, down = tr["upload"], tr["download"]
        upc, downc = tr["upload + chat"], tr["download + chat"]
        growth = max(float(t["growth_mb"]) for t in tr.values())
        lines.append(
            f"| {r['round']} | {r['tree']} ({r['commit']}) | {r['load_before']} "
            f"| {ncat:.0f} | {up['mb_per_s']:.0f} ({float(up['mb_per_s']) / ncat:.2f}) "
            f"| {down['mb_per_s']:.0f} ({float(down['mb_per_s']) / ncat:.2f}) "
            f"| {growth:.1f} MB "
            f"| {idle['idle before']:.1f} / {idle['idle between']:.1f} / {idle['idle after']:.1f} "
            f"| {upc['paced']['p99_ms']:.1f} ({q['upload + chat vs before']:.2f}x / "
            f"{q['upload + chat vs after']:.2f}x) "
            f"| {downc['paced']['p99_ms']:.1f} ({q['download + chat vs before']:.2f}x / "
            f"{q['download + chat vs after']:.2f}x) "
            f"| {upc['loop_cpu_s']} / {upc['workers_cpu_s']}; "
            f"{downc['loop_cpu_s']} / {downc['workers_cpu_s']} |"
        )
    return lines


PHASES = ("idle before", "upload + chat", "idle between", "download + chat", "idle after")


def phase_rows(rounds: list[dict[str, Any]]) -> list[str]:
    """What else happened during each chat phase: the time the server's event loop thread
    was ready to run but waited for a CPU, the disk writeback (of any file, by any process
    or the kernel's flusher threads) and the CPU time the hypervisor stole."""
    lines = [
        "| round | tree | " + " | ".join(PHASES) + " |",
        "|---|---|" + "---|" * len(PHASES),
    ]
    for r in rounds:
        cells = []
        for key in PHASES:
            phase = r["idle"].get(key) or r["transfers"][key]["paced"]
            cells.append(f"{phase['p99_ms']:.1f}; {phase.get('loop_cpu_wait_ms', 0):.0f}; "
                         f"{phase.get('writeback_mb', 0):.0f} MB; "
                         f"{phase.get('steal_ms', 0):.0f}")
        lines.append(f"| {r['round']} | {r['tree']} | " + " | ".join(cells) + " |")
    return lines


def table(report: dict[str, Any]) -> str:
    import statistics

    size = int(report["size"])
    rounds: list[dict[str, Any]] = report["rounds"]
    lines = [
        f"size {size} bytes ({size / MiB:.0f} MiB); load average before {report['load_before']}, "
        f"after {report['load_after']}; {report['cores']} cores",
        "",
        HEADER,
        *round_rows(rounds, size),
        "",
        "The receiving side's system CPU seconds in the throughput runs (ncat's listener; "
        "the server for the upload; the downloading process), which writes the file into "
        "the page cache:",
        "",
        "| round | tree | ncat s (listener sys s) | upload s (server sys s) "
        "| download s (client sys s) |",
        "|---|---|---|---|---|",
        *[f"| {r['round']} | {r['tree']} | {r['ncat_s']} ({r.get('ncat_receiver_sys_s', '-')}) "
          f"| {r['transfers']['upload']['transfer_s']} "
          f"({r['transfers']['upload'].get('receiver_sys_s', '-')}) "
          f"| {r['transfers']['download']['transfer_s']} "
          f"({r['transfers']['download'].get('receiver_sys_s', '-')}) |" for r in rounds],
        "",
        "Each chat phase: the paced p99 (ms); the ms the server's event loop thread waited "
        "for a CPU; the MB the machine wrote back to disk; the CPU ms the hypervisor stole:",
        "",
        *phase_rows(rounds),
        "",
        "| tree | rounds | median p99 ratio, upload (vs idle before / after / mean of both) "
        "| median p99 ratio, download (same) | median upload / download vs ncat "
        "| highest memory growth |",
        "|---|---|---|---|---|---|",
    ]
    for label in dict.fromkeys(str(r["tree"]) for r in rounds):
        mine = [r for r in rounds if r["tree"] == label]
        qs = [_ratios(r) for r in mine]

        def med(key: str, qs: list[dict[str, float]] = qs) -> str:
            return f"{statistics.median(q[key] for q in qs):.2f}x"

        def vs_ncat(key: str, mine: list[dict[str, Any]] = mine) -> float:
            return statistics.median(
                float(r["transfers"][key]["mb_per_s"]) / float(r["ncat_mb_per_s"])
                for r in mine)

        growth = max(float(t["growth_mb"]) for r in mine
                     for t in r["transfers"].values())
        lines.append(
            f"| {label} ({mine[0]['commit']}) | {len(mine)} "
            f"| {med('upload + chat vs before')} / {med('upload + chat vs after')} / "
            f"{med('upload + chat vs both')} "
            f"| {med('download + chat vs before')} / {med('download + chat vs after')} / "
            f"{med('download + chat vs both')} "
            f"| {vs_ncat('upload'):.2f} / {vs_ncat('download'):.2f} | {growth:.1f} MB |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=parse_size, default=1024 * MiB,
                    help="file size (1G, 256M, bytes); default 1 GiB")
    ap.add_argument("--clients", type=int, default=100, help="chat clients (default 100)")
    ap.add_argument("--senders", type=int, default=10, help="of them sending in paced phases")
    ap.add_argument("--payload", type=int, default=100)
    ap.add_argument("--rate", type=float, default=100.0, help="paced: messages/s per sender")
    ap.add_argument("--paced-budget", type=float, default=50_000.0)
    ap.add_argument("--paced-seconds", type=float, default=2.0,
                    help="each paced phase (it should end before the transfer does)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--tmp", default=None, help="where the temporary files go (default TMPDIR)")
    ap.add_argument("--cold", action="store_true",
                    help="before each download, drop the server's copy from the page cache "
                         "(its bytes come from the disk, as for a file shared days ago)")
    ap.add_argument("--no-settle", dest="settle", action="store_false",
                    help="start each step as the step before left the machine (no sync, no "
                         "scratch file: see settle())")
    ap.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="one more argument for the richchat server (repeat for several); "
                         "one that starts with - in the = form: --server-arg=--file-rate "
                         "--server-arg=300M")
    ap.add_argument("--json", type=Path, help="write the results as JSON here")
    ap.add_argument("--against", type=Path, default=None, metavar="DIR",
                    help="also run the server from the source tree DIR (PYTHONPATH=DIR), "
                         "in alternating rounds with this tree's; the clients are this tree's")
    ap.add_argument("--rounds", type=int, default=None,
                    help="rounds per tree (default 1; 3 with --against)")
    ap.add_argument("--worker", choices=("upload", "download"), help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--file-id", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        asyncio.run(_worker(args))
        return
    if args.rounds is None:
        args.rounds = 3 if args.against is not None else 1
    if not 1 <= args.rounds <= 20:
        ap.error("--rounds: 1 to 20")
    report = asyncio.run(main_async(args))
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
