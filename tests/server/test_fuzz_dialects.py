"""10,000 random lines in each dialect leave the server serving everyone correctly (#17).

A real ``richchat server`` process (flood control off, so the lines arrive as fast as they can
be sent) gets, from a client of each dialect in turn, 10,000 random lines of up to 8 KiB:
binary junk, UTF-8 of every kind, escape sequences (C0 and C1, as text and as raw bytes),
frames of every tag with random fields, huge field counts (``|`` storms), slash commands, and
every line ending. Lines that quit (``CMD_QUIT``, ``/quit``) end the connection: the fuzzer
connects again and goes on. A witness of each dialect sits in the lobby throughout and must
receive only well-formed lines (hello: every line a known frame; none with a control
character). Afterwards the server must still serve new clients of every dialect: register,
chat, rooms, private messages; and its log shows no internal error.

``RICHCHAT_FUZZ_SEED`` replays a run (the seed is in the failure message);
``RICHCHAT_FUZZ_LINES`` changes the count.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import CLIENT_FRAMES, SERVER_FRAMES, decode_server_line
from tests.linechat import LineClient
from tests.serverproc import ServerProc, internal_errors

LINES = int(os.environ.get("RICHCHAT_FUZZ_LINES", "10000"))
SEED = int(os.environ.get("RICHCHAT_FUZZ_SEED", str(random.randrange(1 << 30))))
MAX_LINE = 8192

_TAGS = sorted({*CLIENT_FRAMES, *SERVER_FRAMES, "NOPE", "msg", "CMD_"})
_ESCAPES = ["\x1b[2J", "\x1b]0;pwned\x07", "\x1b[31m", "\u009b31m", "\x07", "\x08\x08",
            "\u202e", "\u200d", "\x00", "\r", "\t", "\x7f", "[bold red]x[/]", "%s%n", "\\"]
_SLASH = ["/nick", "/join", "/leave", "/part", "/msg", "/me", "/topic", "/who", "/users",
          "/rooms", "/help", "/quit", "//", "/", "/NICK", "/x" * 50]
_ENDINGS = [b"\n", b"\r\n", b"\r"]


def _text(rnd: random.Random, size: int) -> str:
    pools = [
        lambda: chr(rnd.randrange(0x20, 0x7F)),
        lambda: chr(rnd.randrange(0, 0x20)),
        lambda: chr(rnd.randrange(0x80, 0x3000)),
        lambda: chr(rnd.randrange(0x1F300, 0x1F6FF)),
        lambda: rnd.choice(_ESCAPES),
        lambda: "|",
    ]
    return "".join(rnd.choice(pools)() for _ in range(size))


def _size(rnd: random.Random) -> int:
    roll = rnd.random()
    if roll < 0.7:
        return rnd.randrange(0, 200)
    if roll < 0.9:
        return rnd.randrange(200, 2048)
    return rnd.randrange(2048, MAX_LINE)


def fuzz_line(rnd: random.Random) -> bytes:
    """One random line (without its ending), at most MAX_LINE bytes."""
    kind = rnd.randrange(8)
    size = _size(rnd)
    if kind == 0:  # binary junk (its own \n and \r split it into more lines)
        data = rnd.randbytes(size)
    elif kind == 1:  # text of every kind
        data = _text(rnd, size // 2).encode("utf-8", "surrogatepass")
    elif kind == 2:  # a frame with random fields
        fields = [_text(rnd, rnd.randrange(0, 30)) for _ in range(rnd.randrange(0, 6))]
        data = "|".join([rnd.choice(_TAGS), *fields]).encode("utf-8", "surrogatepass")
    elif kind == 3:  # huge field counts: a '|' storm, or thousands of list entries
        n = rnd.randrange(100, 3000)
        sep = rnd.choice(["|", "|", ",", "a(1.2.3.4:5),"])
        data = (rnd.choice(_TAGS) + "|" + sep * n).encode()
    elif kind == 4:  # a slash command with random arguments
        data = f"{rnd.choice(_SLASH)} {_text(rnd, rnd.randrange(0, 60))}".encode(
            "utf-8", "surrogatepass")
    elif kind == 5:  # escape sequences as raw bytes (C1 CSI 0x9b is not UTF-8)
        data = b"".join(rnd.choice([b"\x1b[2J", b"\x9b31m", b"\x1b]0;x\x07", b"\xc2\x9b",
                                    b"\xff\xfe", b"\xed\xa0\x80"]) for _ in range(size // 4 + 1))
    elif kind == 6:  # valid-looking frames that change state
        room = rnd.choice(["dev", "fuzz", "lobby", "Ωmega", "x" * 40, ""])
        data = rnd.choice([
            f"CMD_JOIN|{room}", f"CMD_PART|{room}", f"CMD_TOPIC|{room}|{_text(rnd, 20)}",
            f"RMSG|{room}|{_text(rnd, 30)}", f"CMD_ME|{room}|x", f"CMD_MSG|witness-h|{_text(rnd, 9)}",
            f"CMD_USER|{_text(rnd, rnd.randrange(1, 30))}", "CMD_ROOMS|", "CMD_WHO|lobby",
            f"PING|{_text(rnd, 5)}", "PONG|x", "HELLO|1|again", "HELLO|999999|x|flood=1e9/0",
            "CMD_QUIT|fuzzed", "/quit fuzzed",
        ]).encode("utf-8", "surrogatepass")
    else:  # a plain chat line
        data = _text(rnd, min(size, 900)).encode("utf-8", "surrogatepass")
    return data[:MAX_LINE]


def fuzz_blob(rnd: random.Random, count: int) -> Iterator[bytes]:
    for _ in range(count):
        yield fuzz_line(rnd) + rnd.choice(_ENDINGS)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    server = ServerProc(tmp_path_factory.mktemp("fuzz") / "data", "--flood-rate", "0",
                        name="fuzz")
    try:
        yield server
    finally:
        assert server.stop() == 0


async def _connect(port: int, dialect: str, name: str) -> LineClient:
    client = await LineClient.connect(port)
    if dialect == "hello":
        client.send("HELLO|1|fuzz")
        client.send(f"CMD_USER|{name}")
        await client.expect(f"YOU|{name}")
    elif dialect == "seed":
        client.send(f"CMD_USER|{name}")
        await client.expect(lambda line: line.startswith("ULIST|"))
    else:
        client.send(name)
        await client.expect(lambda line: line.startswith(f"*** You are {name}."))
    return client


class Witness:
    """A registered client that reads everything, and checks every line it gets."""

    def __init__(self, client: LineClient, dialect: str) -> None:
        self.client = client
        self.dialect = dialect
        self.count = 0
        self.bad: list[str] = []
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        reader = self.client.reader
        while raw := await reader.readline():
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.count += 1
            controls = any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in line)
            unknown = self.dialect != "raw" and isinstance(decode_server_line(line), f.Unknown)
            if controls or unknown:
                self.bad.append(line)
            if line.startswith("PONG|"):
                self.client.lines.append(line)

    async def barrier(self, token: str) -> None:
        self.client.send(f"PING|{token}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while f"PONG|{token}" not in self.client.lines:
            assert loop.time() < deadline, "witness barrier"
            await asyncio.sleep(0.01)


async def _fuzz(port: int, dialect: str, rnd: random.Random, count: int) -> int:
    """Send ``count`` random lines as a client of ``dialect``; returns how many times the
    server closed the connection (a quit among the lines) and the fuzzer came back."""
    reconnects = 0
    client = await _connect(port, dialect, f"fuzzer-{dialect[0]}")
    drain = asyncio.ensure_future(client.read_all(timeout=120))
    batch: list[bytes] = []
    for line in fuzz_blob(rnd, count):
        batch.append(line)
        if len(batch) < 50:
            continue
        try:
            client.writer.write(b"".join(batch))
            await client.writer.drain()
        except (ConnectionError, OSError):
            drain.cancel()
            reconnects += 1
            client = await _connect(port, dialect, f"fuzzer-{dialect[0]}{reconnects}")
            drain = asyncio.ensure_future(client.read_all(timeout=120))
        batch = []
    with contextlib.suppress(ConnectionError, OSError):
        client.writer.write(b"".join(batch) + b"PING|fuzz-end\n")
        await client.writer.drain()
    await client.close()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError, EOFError,
                             asyncio.TimeoutError):
        await drain
    return reconnects


async def _still_serves(port: int) -> None:
    """New clients of every dialect: register, chat in the lobby and a room, privately."""
    hello = await _connect(port, "hello", "probe-h")
    seed = await _connect(port, "seed", "probe-s")
    raw = await _connect(port, "raw", "probe-r")
    hello.send("MSG|hello from the probe")
    for c, want in ((hello, "RMSG|lobby|"), (seed, "MSG|probe-h: "), (raw, "probe-h: ")):
        await c.expect(lambda line, w=want: line.startswith(w) and line.endswith(
            "hello from the probe"), timeout=30)
    raw.send("/join probes")
    await raw.expect(lambda line: line.startswith("*** You are in #probes"), timeout=30)
    hello.send("CMD_JOIN|probes")
    await hello.expect(lambda line: line.startswith("RLIST|probes|"), timeout=30)
    raw.send("in the room")
    await hello.expect(lambda line: line.startswith("RMSG|probes|") and line.endswith(
        "|probe-r|in the room"), timeout=30)
    seed.send("CMD_MSG|probe-r|psst")
    await raw.expect("*probe-s* (private): psst", timeout=30)
    for c in (hello, seed, raw):
        await c.close()


@pytest.mark.timeout(600)
async def test_random_lines_in_every_dialect_leave_the_server_serving(
    fuzz_server: ServerProc, tmp_path: Path
) -> None:
    port = fuzz_server.port
    rnd = random.Random(SEED)
    witnesses = [Witness(await _connect(port, d, f"witness-{d[0]}"), d)
                 for d in ("hello", "seed", "raw")]
    reconnects = {}
    for dialect in ("hello", "seed", "raw"):
        reconnects[dialect] = await _fuzz(port, dialect, rnd, LINES)
        assert fuzz_server.alive, f"seed {SEED}: the server died\n{fuzz_server.log()[-3000:]}"
    for n, w in enumerate(witnesses):
        await w.barrier(f"w{n}")
    await _still_serves(port)
    for w in witnesses:
        assert not w.bad, f"seed {SEED}: {w.dialect} witness got {w.bad[:5]!r}"
        assert w.count > 0
        await w.client.close()
    errors = internal_errors(fuzz_server.log())
    assert not errors, f"seed {SEED}: {errors[:10]}"
    print(f"fuzz seed {SEED}: {LINES} lines per dialect, reconnects {reconnects}, "
          f"witness lines {[w.count for w in witnesses]}")
