"""docs/security.md, "use the server to reflect traffic": the real ChatServer's discovery
listener answers each query (from whatever source it shows) with exactly one unicast datagram
of at most MAX_DATAGRAM bytes. On loopback only: queries to 127.0.0.1, answers to our socket."""

from __future__ import annotations

import asyncio
from pathlib import Path

from richchat.core.protocol.beacon import (
    MAX_DATAGRAM,
    Announce,
    Query,
    decode_datagram,
    encode_datagram,
)
from richchat.core.server import ChatServer, ServerConfig
from tests.conditions import wait_until

LOOP = "127.255.255.255"


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.append(data)


async def test_each_query_gets_one_small_unicast_answer(tmp_path: Path, beacon_port: int) -> None:
    server = ChatServer(ServerConfig(
        host="127.0.0.1", port=0, data_dir=tmp_path, name="n" * 64, beacon=True,
        beacon_port=beacon_port, beacon_addrs=(LOOP,), beacon_interval=3600, mdns=False,
    ))
    await server.start()
    loop = asyncio.get_running_loop()
    transport, asker = await loop.create_datagram_endpoint(Collector, local_addr=("127.0.0.1", 0))
    try:
        queries = [encode_datagram(Query(nonce=f"q{i}")) for i in range(20)]
        for data in queries:
            transport.sendto(data, ("127.0.0.1", beacon_port))
        await wait_until(lambda: len(asker.received) >= len(queries), "the answers")
        # one more query, answered last: anything extra for the first 20 came before it
        transport.sendto(encode_datagram(Query(nonce="last")), ("127.0.0.1", beacon_port))
        await wait_until(lambda: any(b'"last"' in d for d in asker.received), "the last answer")
        answers = [decode_datagram(d) for d in asker.received]
        assert all(isinstance(a, Announce) and a.reason == "reply" for a in answers)
        nonces = [a.nonce or "" for a in answers if isinstance(a, Announce)]
        assert sorted(nonces) == sorted([f"q{i}" for i in range(20)] + ["last"])
        assert max(len(d) for d in asker.received) <= MAX_DATAGRAM == 1200
        assert max(len(q) for q in queries) < 100  # a query of under 100 bytes
    finally:
        transport.close()
        await server.stop()
