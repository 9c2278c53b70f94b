"""Helpers for the tests of ``send --file`` and ``get`` interrupted in the middle of a
transfer (the server stopped, frozen): a file shared beforehand, and a command started and
followed until its bytes are moving."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from tests.client.servers import cli_env
from tests.commands.test_files_cli import CLI
from tests.conditions import wait_until
from tests.serverproc import ServerProc


def shared_file(data_dir: Path, src: Path) -> str:
    """Share ``src`` on a server over ``data_dir`` (started and stopped here): its file id."""
    server = ServerProc(data_dir)
    try:
        shared = subprocess.run(
            [*CLI, "send", f"127.0.0.1:{server.port}", "--nick", "ci", "--file", str(src),
             "--json"], stdin=subprocess.DEVNULL, capture_output=True, env=cli_env(),
            timeout=60, check=True)
    finally:
        server.stop()
    return str(json.loads(shared.stdout)["id"])


async def under_way(args: list[str], grows: Path) -> asyncio.subprocess.Process:
    """``richchat ARGS`` started, once a file in the directory ``grows`` holds bytes."""
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=cli_env())
    await wait_until(lambda: grows.is_dir() and any(
        p.stat().st_size > 0 for p in grows.iterdir()), "the transfer under way")
    return proc
