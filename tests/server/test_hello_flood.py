"""The server's HELLO advertises its flood limit (``flood=RATE/BURST``), real socket."""

from __future__ import annotations

import pytest

from tests.linechat import LineClient
from tests.server.conftest import ServerFactory


@pytest.mark.parametrize(
    ("options", "advertised"),
    [({}, "flood=10/30"), ({"flood_rate": 2.5, "flood_burst": 4}, "flood=2.5/4"),
     ({"flood_rate": 0}, "flood=0/30")],
)
async def test_hello_carries_the_flood_limit(
    make_server: ServerFactory, options: dict[str, float], advertised: str
) -> None:
    server = await make_server(**options)
    client = await LineClient.connect(server.port, hello="t")
    hello = await client.expect(lambda l: l.startswith("HELLO|"))
    assert advertised in hello.split("|")[2:]
    await client.close()
