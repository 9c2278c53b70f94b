"""`richchat server` without --port on a terminal asks for the port on that terminal (stdin's),
not on stdout: with stdout closed (`richchat server --host ... | true`) the server exited 1
with nothing said, and with stdout piped (`... | grep listening`) the question went into the
pipe while the terminal stayed blank. Found by an exploratory pass; failed on a7b4a8f."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

from tests.commands.test_server import wait_for_log


def test_the_port_prompt_is_on_the_terminal_when_stdout_is_closed(
        tmp_path: Path, cli: list[str], cli_env: dict[str, str]) -> None:
    master, slave = pty.openpty()
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| true`: nobody reads stdout
    log = tmp_path / "log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [*cli, "server", "--host", "127.0.0.1", "--no-beacon", "--no-mdns",
             "--data-dir", str(tmp_path / "data")],
            stdin=slave, stdout=write_end, stderr=err, env=cli_env)
    os.close(write_end)
    os.close(slave)
    try:
        seen = b""
        deadline = time.monotonic() + 30
        while b"Port" not in seen:
            assert proc.poll() is None, (proc.returncode, log.read_text(), seen)
            assert time.monotonic() < deadline, (log.read_text(), seen)
            if select.select([master], [], [], 0.1)[0]:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # the terminal's other side closed: the server is gone
                    raise AssertionError((proc.wait(timeout=30), log.read_text(), seen)) from None
        os.write(master, b"0\n")
        wait_for_log(log.read_text, "listening on", proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
