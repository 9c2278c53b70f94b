"""A connection cut in the middle of a line (a proxy, a NAT or a Wi-Fi drop between the chat
UI and the server): the unterminated end is not a frame (eighth exploratory pass). It was
decoded as one, so the UI showed a message cut short, and after the reconnect dropped the
whole message from the history as already shown (same id and timestamp)."""

from __future__ import annotations

import asyncio
import contextlib

from richchat.core.client import Address
from richchat.core.tui import ChatApp
from tests.client.servers import registered
from tests.tui.test_app import SIZE, plain, until

MARK = b"cut-here"


class CuttingRelay:
    """A loopback TCP relay to ``port`` that, once armed, forwards the server's bytes up to a
    few bytes after :data:`MARK` and then cuts both connections (the line left unterminated);
    the next connections pass everything."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.armed = False
        self.cuts = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        sr, sw = await asyncio.open_connection("127.0.0.1", self.target)

        async def up() -> None:
            while data := await cr.read(65536):
                sw.write(data)
                await sw.drain()
            sw.close()

        async def down() -> None:
            while data := await sr.read(65536):
                at = data.find(MARK)
                if self.armed and at >= 0:
                    self.armed = False
                    self.cuts += 1
                    cw.write(data[:at + len(MARK) + 3])
                    await cw.drain()
                    cw.transport.abort()
                    sw.transport.abort()
                    return
                cw.write(data)
                await cw.drain()
            cw.close()

        with contextlib.suppress(OSError):
            await asyncio.gather(up(), down())


async def test_a_line_cut_by_the_network_is_not_shown_short(chat_server: object) -> None:
    port = chat_server.port  # type: ignore[attr-defined]
    relay = CuttingRelay(port)
    await relay.start()
    bob = await registered(port, "bob")
    try:
        app = ChatApp(Address("127.0.0.1", relay.port), "alice", reconnect_base=0.1,
                      reconnect_cap=0.5)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.chat.nick == "alice", "registration")
            relay.armed = True
            text = f"before {MARK.decode()} and the end of the message"
            await bob.say(text)
            await until(pilot, lambda: relay.cuts == 1, "the cut")
            await until(pilot, lambda: app.session.sessions == 2, "the reconnection")
            await bob.say("after the reconnection")
            await until(pilot, lambda: any("after the reconnection" in line
                                           for line in plain(app, "lobby")), "the next message")
            shown = [line for line in plain(app, "lobby") if MARK.decode() in line]
            assert len(shown) == 1 and shown[0].endswith(text), shown
    finally:
        await bob.close()
        await relay.stop()
