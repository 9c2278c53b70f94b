"""A hostile "richchat server" for the client-side tests (issue #17): ``python -m
tests.client.hostile SCENARIO`` listens on 127.0.0.1 (port 0), prints ``port N``, and treats
every connection according to SCENARIO until it is killed.

It is a separate process on purpose: the memory a client uses is measured without the
server's, the client under test can be a process or the test itself (Textual's Pilot, the
wizard), and a server that floods is never slowed by the client sharing its event loop.
It imports nothing from richchat: it writes bytes a real server never would.

Scenarios (what the server sends):

* ``huge_line``: a 10 MB line before its HELLO and another after the nickname; otherwise a
  working server (it confirms the nickname and echoes messages).
* ``bad_utf8``: a working server whose every line carries invalid UTF-8.
* ``markup``: a working server with escape sequences (C0, C1, OSC) and Textual/Rich markup in
  every text field: its name, notices, topics (setter too), messages, errors, part reasons,
  BYE, and lines no client knows.
* ``big_userlist``: a user list of 100,000 names (one ``ULIST`` line over the client's line
  limit, then 100,000 ``JOIN`` frames), then works.
* ``hello_silence``: a HELLO, then nothing.
* ``endless``: a line that never ends (no HELLO).
* ``endless_after_hello``: a HELLO, then a line that never ends.
* ``wrong_order``: a chat message and a nickname confirmation before any HELLO.
* ``disorder``: a HELLO, then frames that make no sense yet (someone else's nickname
  confirmation, departures of unknown users, renames of nobody, messages and member lists of
  rooms the client is not in, a private message between others, BYE) and works after that.
* ``flood``: confirms the nickname, then sends 100,000 chat messages as fast as the client
  takes them, then echoes.
* ``tls_silent``: accepts and never says anything (a TLS handshake that never finishes).
"""

from __future__ import annotations

import asyncio
import sys
import time

HELLO = (b"HELLO|1|richchat-server/0.1.0|role=server|name=hostile|users=1|tls=0"
         b"|features=rooms,priv,incremental|flood=0/30\n")
ESC = "\x1b[2J\x1b[31m\x1b]0;pwned\x07\u009b5m[bold red]MARKUP[/bold red][link=x]y[/link]"
BIG = 10 * 1024 * 1024
USERS = 100_000
FLOOD = 100_000


def _ts() -> int:
    return int(time.time() * 1000)


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.nick = "alice"
        self.ids = iter(range(1, 10**9))

    async def send(self, data: bytes | str) -> None:
        self.writer.write(data.encode("utf-8", "surrogateescape") if isinstance(data, str)
                          else data)
        await self.writer.drain()

    async def greet(self, hello: bytes = HELLO) -> None:
        """Answer the client's first line (its HELLO) with ours, as a richchat server does."""
        await self.next_line()
        await self.send(hello)

    async def junk_line(self, size: int = BIG, end: bool = True) -> None:
        chunk = b"J" * 65536
        sent = 0
        while sent < size:
            await self.send(chunk)
            sent += len(chunk)
        if end:
            await self.send(b"\n")

    async def next_line(self) -> str | None:
        try:
            raw = await self.reader.readline()
        except (ValueError, ConnectionError):
            return None
        return raw.decode("utf-8", "replace").rstrip("\r\n") if raw else None

    async def work(self, extra: str = "", before_you: bytes = b"", after_you: bytes = b"",
                   echo_text: str = "") -> None:
        """A working server from here on: confirm the nickname, echo every message."""
        while (line := await self.next_line()) is not None:
            tag, _, rest = line.partition("|")
            if tag == "CMD_USER":
                self.nick = rest or "alice"
                await self.send(before_you)
                await self.send(f"ULIST|\nYOU|{self.nick}\nJOIN|lobby|{self.nick}(127.0.0.1:1)"
                                f"\n{extra}")
                await self.send(after_you)
            elif tag in ("MSG", "RMSG"):
                room, text = ("lobby", rest) if tag == "MSG" else rest.split("|", 1)
                await self.send(f"RMSG|{room}|{next(self.ids)}|{_ts()}|{self.nick}|"
                                f"{text}{echo_text}\n")
            elif tag == "CMD_MSG":
                to, text = rest.split("|", 1)
                await self.send(f"PRIV|{_ts()}|{self.nick}|{to}|{text}\n")
            elif tag == "CMD_JOIN":
                await self.send(f"JOIN|{rest}|{self.nick}(127.0.0.1:1)\nRLIST|{rest}|"
                                f"{self.nick}(127.0.0.1:1)\n")
            elif tag == "PING":
                await self.send(f"PONG|{rest}\n")
            elif tag == "CMD_QUIT":
                return


async def huge_line(c: Conn) -> None:
    await c.junk_line()
    await c.send(HELLO)
    await c.work(after_you=b"J" * BIG + b"\nSRV|after the big line\n")


async def bad_utf8(c: Conn) -> None:
    bad = b"\xff\xfe\xc3(\xed\xa0\x80"
    await c.greet(HELLO.replace(b"name=hostile", b"name=host" + bad))
    await c.send(b"SRV|bad " + bad + b" bytes\n")
    await c.work(extra=f"TOPIC|lobby|s|topic {bad.decode('utf-8', 'surrogateescape')}\n",
                 echo_text=" \udcff\udcfe")


def _markup_lines(nick: str) -> str:
    e = ESC
    return "".join(f"{line}\n" for line in [
        f"SRV|{e}",
        f"TOPIC|lobby|{e[:40]}|{e}",
        f"RMSG|lobby|900|{_ts()}|mallory|{e}",
        f"ACTION|lobby|901|{_ts()}|mallory|{e}",
        f"PRIV|{_ts()}|mallory|{nick}|{e}",
        f"ERR|not_in_room|{e}",
        "JOIN|lobby|mallory(127.0.0.1:2)",
        f"PART|lobby|mallory|{e}",
        f"UNKNOWN_FRAME|{e}",
        f"{e} no tag at all",
        f"BYE|shutdown|{e}",
    ])


async def markup(c: Conn) -> None:
    name = "\x1b[2J\x1b]0;x\x07[bold]evil[/bold]"  # 64 characters at most, after neutralising
    await c.greet(HELLO.replace(b"name=hostile", f"name={name}".encode()))
    await c.send(f"SRV|Welcome {ESC}\n")
    await c.work(extra=_markup_lines(c.nick), echo_text=ESC)


async def big_userlist(c: Conn) -> None:
    await c.greet()
    entries = ",".join(f"u{i}(10.0.{i // 256 % 256}.{i % 256}:{i % 60000})"
                       for i in range(USERS))
    joins = "".join(f"JOIN|lobby|u{i}(10.0.{i // 256 % 256}.{i % 256}:1)\n"
                    for i in range(USERS))
    await c.work(before_you=f"ULIST|{entries}\n".encode(), after_you=joins.encode())


async def hello_silence(c: Conn) -> None:
    await c.greet()
    while await c.reader.read(65536):
        pass


async def endless(c: Conn) -> None:
    await c.junk_line(size=1 << 40, end=False)


async def endless_after_hello(c: Conn) -> None:
    await c.greet()
    await c.junk_line(size=1 << 40, end=False)


async def wrong_order(c: Conn) -> None:
    await c.send(f"RMSG|lobby|1|{_ts()}|eve|too early\nYOU|alice\n")
    await c.send(HELLO)
    await c.work()


async def disorder(c: Conn) -> None:
    await c.greet()
    await c.send(
        "YOU|mallory\nPART|lobby|nobody|gone\nNICK|ghost|ghost2\nRLIST|secret|eve(1.2.3.4:5)\n"
        f"TOPIC|secret|eve|not yours\nRMSG|secret|7|{_ts()}|eve|leaked?\n"
        f"PRIV|{_ts()}|eve|zed|not for you\nJOIN|secret|eve(1.2.3.4:5)\n"
        "BYE|shutdown|not really\nPONG|unasked\nROOMS|a:1,b:x\n"
    )
    await c.work(extra="YOU|alice\nYOU|alice\nNICK|alice|alice\n")


async def flood(c: Conn) -> None:
    await c.greet()
    ts = _ts()
    lines = [f"RMSG|lobby|{i}|{ts}|mallory|flood {i}\n" for i in range(1, FLOOD + 1)]
    blob = "".join(lines).encode()
    await c.work(after_you=blob)


async def tls_silent(c: Conn) -> None:
    while await c.reader.read(65536):
        pass


SCENARIOS = {f.__name__: f for f in (huge_line, bad_utf8, markup, big_userlist, hello_silence,
                                       endless, endless_after_hello, wrong_order, disorder, flood,
                                       tls_silent)}


async def main(scenario: str) -> None:
    handler = SCENARIOS[scenario]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(Conn(reader, writer))
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, limit=1 << 16)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
