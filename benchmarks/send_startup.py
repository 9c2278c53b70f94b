"""Whole-process wall time of ``richchat send`` on loopback against ``richchat --version``.

Starts a real ``richchat server`` on 127.0.0.1 (port 0, beacon and mDNS off), then runs
ROUNDS paired rounds: in each, ``richchat --version``, ``richchat send`` (connect, HELLO,
register, send, wait for the echo, quit), a bare ``python -c pass``, the *pydantic floor*
(``--version`` in a process that has also imported the parts of pydantic that ``send``
needs to validate frames and typer needs to coerce its options) and a send with time marks (where
its time goes), one after the other, so background load hits all of them alike. Reports medians, the median of the per-round ratios
send / --version (goal of issue #18: at most 2) and the load average.

    python benchmarks/send_startup.py [--rounds 21] [--write docs/performance.md]

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
import resource
import statistics
import subprocess
import sys
import tempfile
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
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, timeout=60)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu.setdefault(name, []).append(after.ru_utime - before.ru_utime
                                    + after.ru_stime - before.ru_stime)
    return wall


def phases(argv: list[str], env: dict[str, str]) -> list[tuple[str, float]]:
    """One send with time marks: (phase, seconds) from process start to process end."""
    start = time.perf_counter()
    proc = subprocess.run([PY, "-c", PHASES, *argv], env=env, check=True, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=60)
    end = time.perf_counter()
    line = next(x for x in proc.stderr.splitlines() if x.startswith("MARKS "))
    marks: list[tuple[str, float]] = ast.literal_eval(line.removeprefix("MARKS "))
    out = [("interpreter start-up and `site`", marks[0][1] - start)]
    out += [(b[0], b[1] - a[1]) for a, b in itertools.pairwise(marks)]
    out.append(("exit (module teardown; the heap is frozen)", end - marks[-1][1]))
    return out


def ms(values: list[float]) -> str:
    return (f"{statistics.median(values) * 1000:.0f} ms (min {min(values) * 1000:.0f}, "
            f"max {max(values) * 1000:.0f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--write", type=Path, help="replace the send start-up section of FILE")
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 200))
    compileall.compile_dir(ROOT / "richchat", quiet=1)
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    env.pop("RICHCHAT_DEBUG", None)
    runs: dict[str, list[float]] = {"version": [], "send": [], "bare": [], "floor": []}
    split: list[list[tuple[str, float]]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as data:
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
                runs["version"].append(timed([PY, "-m", "richchat", "--version"], env,
                                             "version"))
                runs["send"].append(timed([PY, "-m", "richchat", "send", target, "--nick",
                                           f"bench{n}", "--quiet", "benchmark line"], env, "send"))
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
        "Command:",
        "",
        "```",
        f"python benchmarks/send_startup.py --rounds {rounds}"
        + (f" --write {args.write}" if args.write else ""),
        "```",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, text)
    return 0


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
