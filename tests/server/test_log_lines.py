"""The server's log when stderr is not a terminal (a file, a pipe, journald): one line per
record, never wrapped, control characters escaped; through a real server process too."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from richchat.core.logging import OneLineFormatter
from tests.linechat import LineClient
from tests.serverproc import ServerProc, internal_errors


def test_a_record_is_one_line_with_its_controls_escaped() -> None:
    record = logging.LogRecord("richchat.server", logging.WARNING, __file__, 1,
                               "refused %r from %s", ("x", "evil\nFAKE INFO admin logged in\x1b[2J"),
                               None)
    line = OneLineFormatter().format(record)
    assert "\n" not in line and "\x1b" not in line
    assert line.endswith(" WARNING refused 'x' from evil\\nFAKE INFO admin logged in\\x1b[2J")
    try:
        raise ValueError("ours")
    except ValueError:
        record = logging.LogRecord("richchat.server", logging.ERROR, __file__, 1, "boom", (),
                                   sys.exc_info())
    text = OneLineFormatter().format(record)
    assert text.splitlines()[0].endswith(" ERROR boom")  # a traceback keeps its lines
    assert "Traceback" in text and "ValueError: ours" in text


async def test_a_server_log_file_has_one_line_per_record(tmp_path: Path) -> None:
    """Every line of the log file is a record of its own, with its date and time (rich's
    handler, used for files too before, left the time out of records of the same second and
    wrapped long records at 80 columns, splitting paths across lines)."""
    data = tmp_path / "data"
    server = ServerProc(data, log_dir=tmp_path)
    alice = await LineClient.connect(server.port, hello="t", nick="alice")
    await alice.close()
    assert server.stop() == 0
    log = server.log()
    assert internal_errors(log) == []
    lines = log.splitlines()
    assert any(line.endswith(" INFO register 127.0.0.1:" + line.split(":")[-1].split()[0]
                             + " as alice") for line in lines), log
    for line in lines:
        assert line[:4].isdigit() and line[10] == " " and line[19] == " ", line


def test_the_terminal_handler_escapes_controls_too() -> None:
    """On a terminal (rich's handler) a newline in a message is shown escaped as well."""
    from richchat.core.logging import EscapeControls

    record = logging.LogRecord("richchat.server", logging.INFO, __file__, 1, "nick %s",
                               ("a\nb\x1b[2J",), None)
    assert EscapeControls().filter(record)
    assert record.getMessage() == "nick a\\nb\\x1b[2J"
