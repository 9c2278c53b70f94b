"""A lean chat client for cluster load tests: registers, sends numbered lobby messages one at
a time (the next once the previous one's echo confirmed it; again after ``ERR|degraded``),
and records every message it receives in order."""

from __future__ import annotations

import asyncio
import contextlib


class LoadClient(asyncio.Protocol):
    def __init__(self, nick: str, count: int) -> None:
        self.nick = nick
        self.count = count
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        #: every lobby message received: (id, sender, text), in arrival order
        self.received: list[tuple[int, str, str]] = []
        self.registered = asyncio.Event()
        self.refused = 0  # ERR|degraded answers (the message was sent again)
        self.errors: list[str] = []
        self.notices: list[str] = []
        self.next = 0  # the number of the message waiting for its echo
        self.done = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._echo = f"|{nick}|{nick}-".encode()

    @classmethod
    async def open(cls, port: int, nick: str, count: int) -> LoadClient:
        loop = asyncio.get_running_loop()
        _t, client = await loop.create_connection(lambda: cls(nick, count), "127.0.0.1", port)
        await asyncio.wait_for(client.registered.wait(), 20)
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(f"HELLO|1|load/1\nCMD_USER|{self.nick}\n".encode())

    def start(self) -> None:
        if self.count == 0:
            self.done.set()
        else:
            self._send()

    def _send(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(f"MSG|{self.nick}-{self.next}\n".encode())

    def data_received(self, data: bytes) -> None:
        lines = (self.buf + data).split(b"\n")
        self.buf = lines.pop()
        for line in lines:
            if line.startswith(b"RMSG|lobby|"):
                _tag, _room, mid, _ts, name, text = line.decode().split("|", 5)
                self.received.append((int(mid), name, text))
                if name == self.nick and text == f"{self.nick}-{self.next}":
                    self.next += 1
                    if self.next < self.count:
                        self._send()
                    else:
                        self.done.set()
            elif line.startswith(b"YOU|"):
                self.registered.set()
            elif line.startswith(b"ERR|degraded|"):
                self.refused += 1
                self._loop.call_later(0.05, self._send)  # the same message again, shortly
            elif line.startswith(b"ERR|"):
                self.errors.append(line.decode())
            elif line.startswith(b"SRV|"):
                self.notices.append(line.decode())

    def close(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.close()
