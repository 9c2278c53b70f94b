"""``richchat send --room ""`` is a usage error, as ``get --room ""`` is.

Found by the tenth exploratory pass: a script's ``--room "$ROOM"`` with ``ROOM`` unset sent
its message to the lobby, for everyone to read, and exited 0 ("sent 1 message to lobby"):
an empty ``--room`` was taken for no ``--room`` at all."""

from __future__ import annotations

import json
from pathlib import Path

from richchat.core.exit_codes import ExitStatus
from richchat.core.protocol import frames as f
from tests.client.servers import chat_server, registered
from tests.commands.test_send import addr, run_send

__all__ = ["chat_server"]


async def test_an_empty_room_is_a_usage_error_and_nothing_reaches_the_lobby(
    chat_server: object, tmp_path: Path
) -> None:
    watcher = await registered(chat_server.port, "watcher")  # type: ignore[attr-defined]
    code, out, err = await run_send(addr(chat_server), "--nick", "bot", "--room", "",
                                    "--json", "secret")
    assert code == ExitStatus.USAGE, err
    result = json.loads(out)
    assert (result["delivered"], result["exit_code"]) == (0, ExitStatus.USAGE)
    assert "room" in result["error"] and err.count("\n") == 1
    code, _, err = await run_send(addr(chat_server), "--nick", "bot", "--room", "", "-",
                                  stdin="secret\n")
    assert code == ExitStatus.USAGE, err
    shared = tmp_path / "notes.txt"
    shared.write_text("secret\n")
    code, _, err = await run_send(addr(chat_server), "--nick", "bot", "--room", "",
                                  "--file", str(shared))
    assert code == ExitStatus.USAGE, err
    # the watcher in the lobby saw none of it (its own PING answered after whatever came)
    await watcher.send(f.Ping(token="end"))
    while (frame := await watcher.recv()) is not None:
        assert not isinstance(frame, (f.RoomMessage, f.FileOffer)), frame
        if isinstance(frame, f.Pong):
            break
    await watcher.close()
