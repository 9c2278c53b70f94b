"""Whole-process wall time of ``richchat send`` on loopback against ``richchat --version``.

Starts a real ``richchat server`` on 127.0.0.1 (port 0, beacon and mDNS off), then runs
ROUNDS paired rounds: in each, ``richchat --version``, ``richchat send`` (connect, HELLO,
register, send, wait for the echo, quit), a bare ``python -c pass``, the *pydantic floor*
(``--version`` in a process that has also imported the parts of pydantic that ``send``
needs to validate frames and typer needs to coerce its options) and a send with time marks (where
its time goes), one after the other, so background load hits all of them alike. Reports medians, the median of the per-round ratios
send / --version (goal of issue #18: at most 2) and the load average.

With ``--against DIR`` (another checkout: ``/work/main``, a ``git worktree`` of an older
commit), each round also runs that tree's ``--version`` and ``send`` (``PYTHONPATH=DIR``,
against the same server), the two trees in alternating order from round to round, and the
report adds a paired A/B table: each tree's medians and the per-round difference of the two
sends. DIR is not written to: its ``richchat`` package is copied to a temporary directory
and byte-compiled there.

    python benchmarks/send_startup.py [--rounds 21] [--against DIR] [--write docs/performance.md]

The tree is byte-compiled first, as ``pip install`` does (with PYTHONDONTWRITEBYTECODE set,
or a read-only tree, every run would compile richchat again). Bounded: at most 200 rounds,
60 s per command; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import ast
import compileall
import itertools
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
#: ``richchat --version`` in a process that first imported what send cannot avoid: pydantic's
#: models (the frames), its TypeAdapter machinery (typer coerces every non-flag option with
#: it) and its plugin loader (imported when the first validator is built, even with plugins
#: off); the heap frozen for exit as send does
FLOOR = """\
import gc, sys
import pydantic.main, pydantic.plugin._loader, typer._adapters
sys.argv = ["richchat", "--version"]
from richchat.cli import main
try:
    main()
finally:
    gc.freeze()
"""
#: ``richchat send`` with time marks (time.perf_counter() is CLOCK_MONOTONIC, the same clock
#: in every process): the same imports in the same process, attributed to phases
PHASES = """\
import atexit, os, sys, time
marks = [("start", time.perf_counter())]
# as in a real send, whose frame validators are built while the command runs without plugins
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "1")
def mark(name):
    marks.append((name, time.perf_counter()))
import richchat.cli
mark("import richchat.cli (typer, command modules)")
import pydantic.main, pydantic.plugin._loader, typer._adapters
mark("import pydantic: models, TypeAdapter (typer's coercion), plugin loader")
import richchat.core.client, richchat.core.send, richchat.core.send_render
mark("import richchat's protocol, client, send")
import richchat.core.send as core_send
real = core_send.send_messages
async def send_messages(*args, **kwargs):
    mark("typer: build the command, parse and coerce options")
    result = await real(*args, **kwargs)
    mark("connect, register, send, echo, quit")
    return result
core_send.send_messages = send_messages
atexit.register(lambda: (mark("after the send, to the exit hooks"),
                         sys.stderr.write(f"MARKS {marks!r}\\n")))
sys.argv = ["richchat", "send", *sys.argv[1:]]
richchat.cli.main()
"""


#: CPU seconds (user + system) of each command's process, beside its wall time: CPU time
#: hardly depends on what else the machine runs, wall time does
cpu: dict[str, list[float]] = {}


def timed(argv: list[str], env: dict[str, str], name: str = "") -> float:
    """Wall time of one command, from the fork to the moment its exit is reaped.

    The process is reaped with a blocking ``os.wait4``, which returns when it exits and gives
    its own CPU time. ``subprocess.run(..., timeout=...)`` (what this used before) waits by
    polling with sleeps that double up to 50 ms: every wall time came out as a point on that
    schedule (32, 64, 114, 164 ms...), up to 50 ms late. A watchdog kills a command that runs
    past 60 s.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        watchdog.cancel()
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])}... exited with {proc.returncode}")
    cpu.setdefault(name, []).append(usage.ru_utime + usage.ru_stime)
    return wall


def phases(argv: list[str], env: dict[str, str]) -> list[tuple[str, float]]:
    """One send with time marks: (phase, seconds) from process start to process end."""
    start = time.perf_counter()
    proc = subprocess.Popen([PY, "-c", PHASES, *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        _, stderr = proc.communicate()  # no timeout: a blocking wait, not a polling one
    finally:
        watchdog.cancel()
    end = time.perf_counter()
    if proc.returncode != 0:
        raise SystemExit(f"the instrumented send exited with {proc.returncode}: {stderr[-300:]}")
    line = next(x for x in stderr.splitlines() if x.startswith("MARKS "))
    marks: list[tuple[str, float]] = ast.literal_eval(line.removeprefix("MARKS "))
    out = [("interpreter start-up and `site`", marks[0][1] - start)]
    out += [(b[0], b[1] - a[1]) for a, b in itertools.pairwise(marks)]
    out.append(("exit (module teardown; the heap is frozen)", end - marks[-1][1]))
    return out


def ms(values: list[float]) -> str:
    return (f"{statistics.median(values) * 1000:.0f} ms (min {min(values) * 1000:.0f}, "
            f"max {max(values) * 1000:.0f})")


def signed_ms(values: list[float]) -> str:
    return (f"{statistics.median(values) * 1000:+.0f} ms (min {min(values) * 1000:+.0f}, "
            f"max {max(values) * 1000:+.0f})")


def describe_tree(path: Path) -> str:
    """``DIR at abc1234`` when DIR is a git checkout (``+ changes`` if its tracked files
    differ from that commit), else DIR."""
    try:
        out = subprocess.run(["git", "-C", str(path), "log", "-1", "--format=%h"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain",
                                "--untracked-files=no", "--", "richchat"],
                               capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return str(path)
    if not out.strip():
        return str(path)
    return f"{path} at {out.strip()}" + (" + changes" if dirty.strip() else "")


def copy_tree(source: Path, into: Path) -> Path:
    """A byte-compiled copy of ``source/richchat`` under ``into`` (``source`` untouched)."""
    if not (source / "richchat" / "__init__.py").is_file():
        raise SystemExit(f"--against {source}: no richchat package there")
    shutil.copytree(source / "richchat", into / "richchat",
                    ignore=shutil.ignore_patterns("__pycache__"))
    compileall.compile_dir(into / "richchat", quiet=1)
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--write", type=Path, help="replace the send start-up section of FILE")
    parser.add_argument("--against", type=Path, metavar="DIR",
                        help="also run another tree's --version and send in each round "
                             "(paired A/B, alternating order)")
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 200))
    compileall.compile_dir(ROOT / "richchat", quiet=1)
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    env.pop("RICHCHAT_DEBUG", None)
    runs: dict[str, list[float]] = {"version": [], "send": [], "bare": [], "floor": [],
                                    "other version": [], "other send": []}
    split: list[list[tuple[str, float]]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as data, tempfile.TemporaryDirectory() as copy:
        other_env = None
        if args.against is not None:
            other_env = dict(env, PYTHONPATH=str(copy_tree(args.against.resolve(), Path(copy))))
        server = subprocess.Popen(
            [PY, "-m", "richchat", "server", "--host", "127.0.0.1", "--port", "0",
             "--no-beacon", "--no-mdns", "--data-dir", data, "--name", "bench"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            assert server.stdout is not None
            m = re.search(r"listening on (\S+):(\d+)", server.stdout.readline())
            if not m:
                raise SystemExit("server did not start")
            target = f"127.0.0.1:{m.group(2)}"
            for n in range(rounds):
                trees = [("", env, "bench")]
                if other_env is not None:
                    # alternate which tree goes first: neither always meets a warmer machine
                    trees.insert(n % 2, ("other ", other_env, "other"))
                for prefix, tree_env, nick in trees:
                    runs[prefix + "version"].append(timed(
                        [PY, "-m", "richchat", "--version"], tree_env, prefix + "version"))
                    runs[prefix + "send"].append(timed(
                        [PY, "-m", "richchat", "send", target, "--nick", f"{nick}{n}",
                         "--quiet", "benchmark line"], tree_env, prefix + "send"))
                runs["bare"].append(timed([PY, "-c", "pass"], env, "bare"))
                runs["floor"].append(timed([PY, "-c", FLOOR], env, "floor"))
                split.append(phases([target, "--nick", f"phase{n}", "--quiet",
                                     "benchmark line"], env))
        finally:
            server.terminate()
            server.wait(timeout=10)
    load_after = os.getloadavg()
    med = statistics.median
    ratios = [s / v for s, v in zip(runs["send"], runs["version"], strict=True)]
    floor_ratios = [f / v for f, v in zip(runs["floor"], runs["version"], strict=True)]
    ratio = med(ratios)
    cpu_ratios = [s / v for s, v in zip(cpu["send"], cpu["version"], strict=True)]
    cpu_floor_ratios = [f / v for f, v in zip(cpu["floor"], cpu["version"], strict=True)]
    verdict = "met" if ratio <= 2 else "not met"
    lines = [
        "## richchat send start-up",
        "",
        f"{rounds} paired rounds on loopback, each: `richchat --version`, a whole "
        "`richchat send` (connect, HELLO, register, send, wait for the echo, quit) to a real "
        "`richchat server --host 127.0.0.1 --no-beacon --no-mdns`, a bare interpreter, and "
        "the pydantic floor (below); wall time and CPU time of each process; median (min, max). "
        f"Load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}). The tree is "
        "byte-compiled first, as `pip install` does.",
        "",
        "| command | wall time | CPU time (user + system) |",
        "| --- | --- | --- |",
        f"| `python -c pass` (interpreter and `site`) | {ms(runs['bare'])} | "
        f"{ms(cpu['bare'])} |",
        f"| `richchat --version` (interpreter, typer, the CLI) | {ms(runs['version'])} | "
        f"{ms(cpu['version'])} |",
        f"| `richchat send 127.0.0.1:PORT --nick N --quiet 'benchmark line'` | "
        f"{ms(runs['send'])} | {ms(cpu['send'])} |",
        f"| floor: `richchat --version` after importing pydantic's models, TypeAdapter "
        f"(typer's option coercion) and plugin loader | {ms(runs['floor'])} | "
        f"{ms(cpu['floor'])} |",
        f"| send / --version (median of the rounds' ratios; goal <= 2) | {ratio:.2f} "
        f"(ratio of medians {med(runs['send']) / med(runs['version']):.2f}) | "
        f"{med(cpu_ratios):.2f} |",
        f"| floor / --version (median of the rounds' ratios) | {med(floor_ratios):.2f} | "
        f"{med(cpu_floor_ratios):.2f} |",
        "",
        f"Goal send <= 2x --version: {verdict} in this run.",
        "",
        "Where a send's time goes (the same rounds, one more send each with time marks; "
        "medians, so they do not add up exactly):",
        "",
        "| phase | wall time |",
        "| --- | --- |",
        *[f"| {name} | {ms([r[i][1] for r in split])} |"
          for i, (name, _) in enumerate(split[0])],
        f"| whole (this instrumented send) | {ms([sum(v for _, v in r) for r in split])} |",
        "",
        *(ab_table(runs, args.against) if args.against is not None else []),
        "Command:",
        "",
        "```",
        f"python benchmarks/send_startup.py --rounds {rounds}"
        + (f" --against {args.against}" if args.against is not None else "")
        + (f" --write {args.write}" if args.write else ""),
        "```",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, text)
    return 0


def ab_table(runs: dict[str, list[float]], against: Path) -> list[str]:
    """The paired A/B rows: this tree and ``against``, from the same rounds."""
    med = statistics.median

    def row(name: str, prefix: str) -> str:
        ratios = [s / v for s, v in zip(runs[prefix + "send"], runs[prefix + "version"],
                                        strict=True)]
        cpu_ratios = [s / v for s, v in zip(cpu[prefix + "send"], cpu[prefix + "version"],
                                            strict=True)]
        return (f"| {name} | {ms(runs[prefix + 'version'])} | {ms(runs[prefix + 'send'])} | "
                f"{med(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}) | "
                f"{med(cpu_ratios):.2f} |")

    diff = [a - b for a, b in zip(runs["send"], runs["other send"], strict=True)]
    cpu_diff = [a - b for a, b in zip(cpu["send"], cpu["other send"], strict=True)]
    faster = sum(d < 0 for d in diff)
    return [
        f"Paired A/B against {describe_tree(against)} (the same rounds and server; in each "
        "round both trees ran `--version` and `send`, in alternating order):",
        "",
        "| tree | `--version` | whole `send` | send / --version, wall (median of the rounds' "
        "ratios) | CPU ratio |",
        "| --- | --- | --- | --- | --- |",
        row(f"this tree ({describe_tree(ROOT)})", ""),
        row(f"`--against` ({describe_tree(against)})", "other "),
        "",
        f"Per-round difference, this tree's send minus the other's: wall {signed_ms(diff)}, "
        f"CPU {signed_ms(cpu_diff)}; this tree's send was faster in {faster} of "
        f"{len(diff)} rounds.",
        "",
    ]


def write_section(path: Path, section: str) -> None:
    """Replace the ``## richchat send start-up`` section of ``path`` up to its first
    ``### Where the time goes`` subsection (kept: it is written by hand), or add it."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n\n"
    pattern = re.compile(r"^## richchat send start-up\n.*?(?=^### |^## |\Z)", re.M | re.S)
    new = pattern.sub(lambda _m: section.rstrip("\n") + "\n\n", old) if pattern.search(old) else (
        old.rstrip("\n") + "\n\n" + section)
    path.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
