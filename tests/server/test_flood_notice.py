"""The flood notice is sent once per flood: again only after the client paused long enough
for its bucket to refill (a netcat paste throttled in several rounds gets one notice)."""

from __future__ import annotations

import asyncio

from tests.linechat import LineClient
from tests.server.conftest import ServerFactory


def notices(client: LineClient) -> int:
    return sum(1 for l in client.lines if l.startswith("*** Error: slow down"))


async def test_one_notice_per_flood(make_server: ServerFactory) -> None:
    server = await make_server(flood_rate=50.0, flood_burst=5)
    raw = await LineClient.connect(server.port)
    raw.send("")  # Enter at the nickname prompt: the guest name
    you = await raw.expect(lambda l: l.startswith("*** You are guest-"))
    guest = you.split()[3].rstrip(".")
    raw.send("".join(f"a{i}\n" for i in range(20)))
    await raw.expect(f"{guest}: a19")
    assert notices(raw) == 1
    # more of the same paste right after the first part drained: the bucket is still empty
    raw.send("".join(f"b{i}\n" for i in range(20)))
    await raw.expect(f"{guest}: b19")
    assert notices(raw) == 1
    # a pause ten times longer than the bucket needs to refill (5 lines at 50/s): a new flood
    await asyncio.sleep(1.0)
    raw.send("".join(f"c{i}\n" for i in range(20)))
    await raw.expect(f"{guest}: c19")
    assert notices(raw) == 2
    await raw.close()
