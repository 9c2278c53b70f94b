"""A tiny line-oriented test client over a real socket (no richchat client code involved)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class LineClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.lines: list[str] = []  # every line received so far

    @classmethod
    async def connect(
        cls,
        port: int,
        host: str = "127.0.0.1",
        *,
        hello: str | None = None,
        nick: str | None = None,
        **kw: object,
    ) -> LineClient:
        reader, writer = await asyncio.open_connection(host, port, limit=2**22, **kw)  # type: ignore[arg-type]
        client = cls(reader, writer)
        if hello is not None:
            client.send(f"HELLO|1|{hello}")
        if nick is not None:
            client.send(f"CMD_USER|{nick}")
            await client.expect(lambda l: l.startswith(("YOU|", "ERR|")) or f"{nick} joined" in l)
        return client

    def send(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else (line + "\n").encode()
        self.writer.write(data)

    async def send_numbered(self, count: int, payload: str) -> None:
        """Send ``MSG|0 payload`` .. ``MSG|count-1 payload``, draining every 100 lines (the
        flood of the slow-reader tests)."""
        for i in range(count):
            self.send(f"MSG|{i} {payload}")
            if i % 100 == 0:
                await self.writer.drain()
        await self.writer.drain()

    async def readline(self, timeout: float = 5.0) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), timeout)
        if not raw:
            raise EOFError("connection closed")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        self.lines.append(line)
        return line

    async def expect(self, pred: Callable[[str], bool] | str, timeout: float = 5.0) -> str:
        """Read until a line matches (a predicate, or a string the line must equal)."""
        check = (lambda l: l == pred) if isinstance(pred, str) else pred
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no matching line within {timeout}s; got {self._tail()}")
            try:
                line = await self.readline(remaining)
            except asyncio.TimeoutError:
                raise AssertionError(
                    f"no matching line within {timeout}s; got {self._tail()}"
                ) from None
            if check(line):
                return line

    def _tail(self) -> list[str]:
        return [l if len(l) < 120 else l[:120] + "..." for l in self.lines[-10:]]

    async def read_all(self, timeout: float = 5.0) -> list[str]:
        """Read until the server closes the connection."""
        out = []
        while True:
            try:
                out.append(await self.readline(timeout))
            except EOFError:
                return out

    async def closed(self, timeout: float = 5.0) -> bool:
        try:
            await self.read_all(timeout)
        except (ConnectionResetError, asyncio.TimeoutError):
            return False
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


class HeldUpload:
    """An upload by another client (``nick``) that is under way and held there (a slow link):
    its first 1,000 bytes sent, the rest when :meth:`finish` is called. While it is held, the
    server answers another upload of the same bytes ``XERR|busy``."""

    def __init__(self, client: LineClient, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, data: bytes) -> None:
        self.client, self.reader, self.writer, self.data = client, reader, writer, data

    @classmethod
    async def start(cls, port: int, data: bytes, sha256: str, name: str,
                    nick: str = "ci1") -> HeldUpload:
        client = await LineClient.connect(port, hello="test/1", nick=nick)
        client.send(f"CMD_SHARE|lobby|{len(data)}|{sha256}|{name}")
        answer = await client.expect(lambda line: line.startswith(("UPLOAD|", "ERR|", "FILE|")))
        assert answer.startswith("UPLOAD|"), answer
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"XFER|1|PUT|{answer.split('|')[2]}\n".encode())
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"XOK|0|")
        writer.write(data[:1000])
        await writer.drain()
        return cls(client, reader, writer, data)

    async def finish(self) -> None:
        """Send the rest; the server has stored the file when this returns."""
        self.writer.write(self.data[1000:])
        await self.writer.drain()
        assert (await asyncio.wait_for(self.reader.readline(), 30)).startswith(b"XDONE|")

    async def close(self) -> None:
        self.writer.close()
        await self.client.close()
