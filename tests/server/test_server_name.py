"""A server name with control characters (``--name $'x\\x1b[31m red'``) reaches no client as
an escape sequence, whatever its dialect (real sockets)."""

from __future__ import annotations

from tests.linechat import LineClient
from tests.server.conftest import ServerFactory


async def test_server_name_is_neutralised_in_every_dialect(make_server: ServerFactory) -> None:
    server = await make_server(name="x\x1b[31m red\x07")
    raw = await LineClient.connect(server.port)  # netcat
    raw.send("")  # Enter at the nickname prompt: the guest name
    await raw.expect(lambda l: l.startswith("*** You are guest-"))
    seed = await LineClient.connect(server.port)
    seed.send("CMD_USER|seedy")
    await seed.expect(lambda l: l.startswith("ULIST|"))
    hello = await LineClient.connect(server.port, hello="t", nick="hi")
    assert raw.lines[0].startswith("*** Welcome to x\u241b[31m red\u2407 (richchat ")
    assert any(l.startswith("SRV|Welcome to x\u241b[31m red\u2407 (richchat ") for l in seed.lines)
    assert any("name=x\u241b[31m red\u2407" in l for l in hello.lines if l.startswith("HELLO|"))
    for client in (raw, seed, hello):
        assert not any("\x1b" in l or "\x07" in l for l in client.lines)
        await client.close()
