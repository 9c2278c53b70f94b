"""``richchat send -`` through a node that loses its Redis mid-stream: the line the node
refuses (``ERR|degraded``) ends the send with exit 24 ("try again shortly", as for a nickname
the node cannot take) and says how many lines were delivered before it.

Found by the fifth exploratory pass: ``tail -f log | richchat send NODE --nick alerts -``,
Redis stopped after 3 lines: ``error: the server refused the message (degraded): your
message was not delivered: ...``, exit 1 (the README's "send exits 24" for a degraded
chat, and no word of the 3 lines delivered)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from tests.cluster.conftest import NodeFactory
from tests.conditions import wait_until
from tests.linechat import LineClient
from tests.redis_server import RedisServer


async def test_send_stream_refused_by_a_degraded_node_exits_24(
    make_node: NodeFactory, redis_server: RedisServer, cli_env: dict[str, str]
) -> None:
    node = await make_node()
    watcher = await LineClient.connect(node.port, hello="t", nick="watcher")
    send = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "richchat", "send", f"127.0.0.1:{node.port}", "--nick", "alerts",
        "--timeout", "15", "--json", "-",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env,
    )  # fmt: skip
    assert send.stdin is not None
    for i in range(3):
        send.stdin.write(f"line {i}\n".encode())
    await send.stdin.drain()
    await watcher.expect(lambda l: l.endswith("|alerts|line 2"), timeout=30)
    redis_server.stop()
    await wait_until(lambda: node.backend is not None and node.backend.degraded, "degraded")
    send.stdin.write(b"line 3\n")
    await send.stdin.drain()
    out, err = await asyncio.wait_for(send.communicate(), 60)
    text = err.decode()
    assert send.returncode == 24, text
    assert "degraded" in text and "3 delivered" in text, text
    # the refused line was not delivered: not "sent but not confirmed" (explore10)
    result = json.loads(out)
    assert (result["delivered"], result["unconfirmed"], result["exit_code"]) == (3, 0, 24)
    await watcher.close()
