"""``server --redis`` at start, two more mistakes each said truthfully in one line, exit 23
(from an exploratory pass; both said "start Redis", which was no help):

* an address that accepts the connection and never answers (``ncat -l``, a port forwarded
  to nothing): ``Timeout reading from ...`` after about ten seconds;
* a database the Redis does not have (``redis://HOST:PORT/99``; 16 by default):
  ``DB index is out of range``.

Real processes on loopback: a real redis-server, and a silent listener of this test.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.cluster.test_redis_url import run_server
from tests.redis_server import RedisServer


def _one_line(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, lines
    return lines[0]


async def test_an_address_that_never_answers_is_said_so(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepts, reads, says nothing
        while await reader.read(4096):
            pass

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        done = await asyncio.to_thread(run_server, cli, cli_env, tmp_path / "d",
                                       f"redis://:pw-3k@127.0.0.1:{port}/0")
    finally:
        listener.close()
        for writer in held:
            writer.close()
        await listener.wait_closed()
    line = _one_line(done.stderr)
    assert done.returncode == 23, done.stderr
    assert held, "the node never connected"
    assert line.startswith(f"error: cannot use Redis at redis://:***@127.0.0.1:{port}/0: the "
                           "address accepted the connection but did not answer in 10 s: "
                           "no Redis listens there, or a Redis that is blocked or paused"), line
    assert "start Redis" not in line and "pw-3k" not in line and "Timeout" not in line, line


def test_a_database_redis_does_not_have_is_said_so(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path, redis_server: RedisServer
) -> None:
    url = f"redis://127.0.0.1:{redis_server.port}/99"
    done = run_server(cli, cli_env, tmp_path / "d", url)
    line = _one_line(done.stderr)
    assert done.returncode == 23, done.stderr
    assert line.startswith(f"error: cannot use Redis at {url}: Redis refused database 99: it "
                           "has 16 databases (0 to 15; databases in redis.conf)"), line
    assert "start Redis" not in line and "out of range" not in line, line
