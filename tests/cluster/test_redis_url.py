"""``server --redis``: mistakes in the URL and a Redis that wants a password, each said in one
line that names the mistake. Found by the fifth exploratory pass:

* a port that is no port (``redis://127.0.0.1:99999/0``, ``:abc``) exited 23 ("Redis cannot be
  reached") with "start Redis" as the advice, and a database that is no number
  (``redis://127.0.0.1:6379/x``) was silently database 0, another chat's perhaps; a bad
  scheme is a usage error (exit 2), and so are these;
* a Redis with ``requirepass`` and no password given said "HELLO must be called with the client
  already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used..." and
  advised to start Redis; it now says Redis asks for a password and where to give it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.redis_server import RedisServer


def run_server(cli: list[str], env: dict[str, str], path: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cli, "server", "--host", "127.0.0.1", "--port", "0", "--no-beacon", "--no-mdns",
         "--data-dir", str(path), "--redis", url],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis://127.0.0.1:99999/0", "port"),
        ("redis://127.0.0.1:abc/0", "port"),
        ("redis://127.0.0.1:{port}/x", "database"),
        ("redis://:pw@127.0.0.1:0/0", "port"),
        # options in the query go to redis-py's connection as they are: redis-py's TypeError
        # or ValueError was "cannot use Redis ... (start Redis ...)", exit 23
        ("redis://:pw@127.0.0.1:{port}/0?x=1", "unknown option 'x'"),
        ("redis://127.0.0.1:{port}/0?socket_timeout=abc", "socket_timeout"),
    ],
)
def test_a_bad_port_or_database_is_a_usage_error(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path, redis_server: RedisServer,
    url: str, words: str,
) -> None:  # fmt: skip
    done = run_server(cli, cli_env, tmp_path / "d", url.format(port=redis_server.port))
    lines = [l for l in done.stderr.splitlines() if l.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: --redis ") and words in lines[0], lines
    assert "pw" not in lines[0].replace("password", "")


def test_a_redis_that_wants_a_password_is_said_so(
    cli: list[str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "r").mkdir()
    redis = RedisServer(tmp_path / "r", password="pw-9z").start()
    try:
        done = run_server(cli, cli_env, tmp_path / "d", redis.url)
        assert done.returncode == 23, done.stderr
        text = done.stderr
        assert "asks for a password" in text and "RICHCHAT_REDIS_PASSWORD" in text, text
        assert "HELLO" not in text and "start Redis" not in text, text
        wrong = run_server(cli, dict(cli_env, RICHCHAT_REDIS_PASSWORD="nope"), tmp_path / "w",
                           redis.url)  # fmt: skip
        assert wrong.returncode == 23, wrong.stderr
        assert "password" in wrong.stderr and "refused" in wrong.stderr, wrong.stderr
        assert "RICHCHAT_REDIS_PASSWORD" in wrong.stderr and "nope" not in wrong.stderr
        assert "start Redis" not in wrong.stderr, wrong.stderr
    finally:
        redis.close()
