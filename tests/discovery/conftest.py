"""Helpers for the discovery tests: free UDP ports and a raw datagram catcher on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from richchat.core.discovery.udp import udp_socket
from richchat.core.protocol.beacon import Announce, Query, decode_datagram

#: How long a discovery that must find something listens (discover() always listens for its
#: whole --timeout: a fixed window). The answers come within milliseconds; the window is
#: generous so that a busy machine that stalls for seconds still gets them in.
WINDOW = 4.0
#: How long to wait for one datagram that must come (a bound, not a window: returns at once).
DATAGRAM_WAIT = 15.0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def beacon_port() -> int:
    return free_udp_port()


class Catcher(asyncio.DatagramProtocol):
    """Collects decoded discovery datagrams with their source address."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[Announce | Query, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = decode_datagram(data)
        if message is not None:
            self.queue.put_nowait((message, addr))

    async def next(self, kind: type, timeout: float = DATAGRAM_WAIT) -> tuple[Announce | Query,
                                                                    tuple[str, int]]:
        async def wait() -> tuple[Announce | Query, tuple[str, int]]:
            while True:
                item = await self.queue.get()
                if isinstance(item[0], kind):
                    return item

        return await asyncio.wait_for(wait(), timeout)

    def send(self, message: Announce | Query, addr: tuple[str, int]) -> None:
        from richchat.core.protocol.beacon import encode_datagram

        assert self.transport is not None
        self.transport.sendto(encode_datagram(message), addr)


async def open_catcher(port: int) -> Catcher:
    loop = asyncio.get_running_loop()
    sock = udp_socket(port)
    _, proto = await loop.create_datagram_endpoint(Catcher, sock=sock)
    return proto


@pytest.fixture
async def catcher_factory() -> AsyncIterator[list[Catcher]]:
    made: list[Catcher] = []
    yield made
    for c in made:
        if c.transport is not None:
            c.transport.close()
