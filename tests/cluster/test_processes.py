"""Nodes as real `richchat server --redis` processes: a node killed with kill -9 (its users
leave every list, their names are free), `send` through another node, the CLI's errors."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.linechat import LineClient
from tests.redis_server import RedisServer
from tests.server.test_process import ServerProcess

#: the specification: a crashed node's users are gone and their names free within 30 s
CRASH_BOUND_S = 30


def node(cli: list[str], env: dict[str, str], path: Path, url: str, name: str) -> ServerProcess:
    return ServerProcess(cli, env, path, "--redis", url, "--cluster", "proc", "--name", name)


async def test_kill_9_of_a_node_frees_its_users_everywhere(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path, redis_server: RedisServer
) -> None:
    nodes = [
        node(cli, cli_env, tmp_path / f"n{i}", redis_server.url, f"n{i}") for i in range(3)
    ]
    try:
        alice = await LineClient.connect(nodes[0].port, hello="t", nick="alice")
        bob = await LineClient.connect(nodes[1].port, hello="t", nick="bob")
        carol = await LineClient.connect(nodes[2].port, hello="t", nick="carol")
        bob.send("CMD_JOIN|dev")
        carol.send("CMD_JOIN|dev")
        await carol.expect(lambda l: l.startswith("JOIN|dev|bob(") or "bob(" in l)
        alice.send("CMD_WHO|lobby")
        assert "bob(" in await alice.expect(lambda l: l.startswith("RLIST|lobby|"))

        nodes[1].proc.kill()  # SIGKILL: no goodbye, no LEAVE; the others must notice
        nodes[1].proc.wait()
        # as if bob had lost his connection: he leaves his rooms, then the chat
        await carol.expect("PART|dev|bob|connection lost", timeout=CRASH_BOUND_S)
        await carol.expect("PART|lobby|bob|connection lost")
        await alice.expect("PART|lobby|bob|connection lost", timeout=CRASH_BOUND_S)
        for client in (alice, carol):
            client.send("CMD_WHO|lobby")
            who = await client.expect(lambda l: l.startswith("RLIST|lobby|"))
            assert "bob(" not in who and "alice(" in who and "carol(" in who
        carol.send("CMD_WHO|dev")
        who = await carol.expect(lambda l: l.startswith("RLIST|dev|"))
        assert "bob(" not in who and "carol(" in who
        again = await LineClient.connect(nodes[0].port, hello="t", nick="bob")  # free
        assert again.lines[-1] == "YOU|bob"
        for c in (alice, carol, again):
            await c.close()
    finally:
        for n in nodes:
            if n.proc.poll() is None:
                assert n.stop() == 0, n.log()[-2000:]


async def test_send_through_another_node(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path, redis_server: RedisServer
) -> None:
    a = node(cli, cli_env, tmp_path / "a", redis_server.url, "a")
    b = node(cli, cli_env, tmp_path / "b", redis_server.url, "b")
    try:
        alice = await LineClient.connect(a.port, hello="t", nick="alice")
        done = subprocess.run(
            [*cli, "send", f"127.0.0.1:{b.port}", "--nick", "robot", "deployed v2"],
            env=cli_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        line = await alice.expect(lambda l: l.startswith("RMSG|lobby|"))
        assert line.endswith("|robot|deployed v2")
        await alice.close()
    finally:
        for n in (a, b):
            assert n.stop() == 0, n.log()[-2000:]


def test_redis_unreachable_at_start_is_one_line_and_exit_23(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(cli_env, RICHCHAT_REDIS=f"redis://:s3cret@127.0.0.1:{port}/0")
    done = subprocess.run(
        [*cli, "server", "--host", "127.0.0.1", "--port", "0", "--no-beacon", "--no-mdns",
         "--data-dir", str(tmp_path / "d")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 23, done.stderr
    lines = [l for l in done.stderr.splitlines() if l.strip()]
    assert lines[0].startswith(f"error: cannot use Redis at redis://:***@127.0.0.1:{port}/0:")
    assert "s3cret" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--redis", "http://127.0.0.1:1"], "not a redis://"),
        (["--cluster", "x"], "--cluster needs --redis"),
    ],
)
def test_bad_cluster_options_are_usage_errors(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path, args: list[str], words: str
) -> None:
    done = subprocess.run(
        [*cli, "server", "--host", "127.0.0.1", "--port", "0", "--no-beacon", "--no-mdns",
         "--data-dir", str(tmp_path / "d"), *args],
        env=cli_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert words in done.stderr


async def test_password_from_the_environment(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "r").mkdir()
    redis = RedisServer(tmp_path / "r", password="pw-9z").start()
    try:
        wrong = subprocess.run(
            [*cli, "server", "--host", "127.0.0.1", "--port", "0", "--no-beacon", "--no-mdns",
             "--data-dir", str(tmp_path / "w"), "--redis", redis.url],
            env=dict(cli_env, RICHCHAT_REDIS_PASSWORD="nope"),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert wrong.returncode == 23 and "nope" not in wrong.stderr, wrong.stderr
        env = dict(cli_env, RICHCHAT_REDIS=redis.url, RICHCHAT_REDIS_PASSWORD="pw-9z")
        srv = ServerProcess(cli, env, tmp_path / "ok")
        try:
            alice = await LineClient.connect(srv.port, hello="t", nick="alice")
            alice.send("MSG|through an authenticated Redis")
            await alice.expect(lambda l: l.endswith("|alice|through an authenticated Redis"))
            await alice.close()
        finally:
            assert srv.stop() == 0, srv.log()[-2000:]
    finally:
        redis.close()


async def test_history_survives_every_node_restarting(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path, redis_server: RedisServer
) -> None:
    a = node(cli, cli_env, tmp_path / "a", redis_server.url, "a")
    alice = await LineClient.connect(a.port, hello="t", nick="alice")
    alice.send("MSG|kept in Redis")
    await alice.expect(lambda l: l.endswith("|alice|kept in Redis"))
    await alice.close()
    assert a.stop() == 0
    b = node(cli, cli_env, tmp_path / "b", redis_server.url, "b")
    try:
        bob = await LineClient.connect(b.port, hello="t", nick="bob")
        assert any(l.endswith("|alice|kept in Redis") for l in bob.lines)
        await bob.close()
    finally:
        assert b.stop() == 0


def test_the_embedded_server_never_imports_redis(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    code = (
        "import asyncio, sys\n"
        "from richchat.core.server import ChatServer, ServerConfig\n"
        "async def main():\n"
        "    s = ChatServer(ServerConfig(host='127.0.0.1', port=0, data_dir=sys.argv[1],\n"
        "                                beacon=False, mdns=False))\n"
        "    await s.start()\n"
        "    await s.stop()\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "d")],
        env=cli_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
