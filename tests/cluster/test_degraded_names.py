"""A node that lost its Redis takes no nickname (a claim needs the cluster's word): a protocol
client is told ``ERR|degraded`` at once, ``richchat send`` exits 24, a netcat user is asked
again; once Redis is back, the same requests succeed."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from tests.cluster.conftest import NodeFactory
from tests.conditions import wait_until
from tests.linechat import LineClient
from tests.redis_server import RedisServer


async def test_no_nickname_while_redis_is_away(
    make_node: NodeFactory, redis_server: RedisServer, cli_env: dict[str, str]
) -> None:
    node = await make_node()
    watcher = await LineClient.connect(node.port, hello="t", nick="watcher")
    redis_server.stop()
    await wait_until(lambda: node.backend is not None and node.backend.degraded, "degraded")

    hello = await LineClient.connect(node.port, hello="t")
    hello.send("CMD_USER|alice")
    answer = await hello.expect(lambda l: l.startswith(("YOU|", "ERR|")), timeout=15)
    assert answer.startswith("ERR|degraded|"), answer

    netcat = await LineClient.connect(node.port)
    await netcat.expect(lambda l: "nickname" in l.lower(), timeout=15)  # the prompt
    netcat.send("carol")
    said = await netcat.expect(lambda l: "degraded" in l, timeout=15)
    assert "nicknames cannot be taken" in said
    await netcat.expect(lambda l: "nickname" in l.lower(), timeout=15)  # asked again

    send = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "richchat", "send", f"127.0.0.1:{node.port}", "--nick", "bob",
        "--timeout", "15", "hello", stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env,
    )
    _out, err = await asyncio.wait_for(send.communicate(), 60)
    assert send.returncode == 24, err.decode()
    assert err.decode().count("\n") <= 2 and "cannot take nicknames now" in err.decode()

    redis_server.start()
    await wait_until(lambda: node.backend is not None and not node.backend.degraded, "back", 60)
    hello.send("CMD_USER|alice")
    answer = await hello.expect(lambda l: l.startswith(("YOU|", "ERR|")), timeout=15)
    assert answer == "YOU|alice"
    for client in (watcher, hello, netcat):
        await client.close()


async def test_the_chat_ui_asks_again_until_the_node_takes_its_nickname(
    make_node: NodeFactory, redis_server: RedisServer
) -> None:
    from richchat.core.tui import session as se
    from tests.tui.test_session import Recorder, make, running

    node = await make_node()
    redis_server.stop()
    await wait_until(lambda: node.backend is not None and node.backend.degraded, "degraded")
    rec = Recorder()
    session = make(node.port, "dora", rec)
    async with running(session):
        await rec.until(lambda: any("cannot take nicknames now" in e.text  # type: ignore[attr-defined]
                                    for e in rec.of(se.Note)), "the note")
        assert not session.registered and not rec.of(se.NickNeeded)
        redis_server.start()
        await rec.until(lambda: session.registered, "registered once Redis is back", 90)
        assert session.nick == "dora"
        await session.quit()
