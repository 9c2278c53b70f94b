"""The server's HELLO says ``role=server``; a client's HELLO (or its echo) never does."""

from __future__ import annotations

from richchat.core.protocol import decode_client_line, decode_server_line, encode
from richchat.core.protocol import frames as f


def test_server_hello_round_trip() -> None:
    hello = f.Hello(version=1, agent="richchat-server/0.1.0", role="server", name="Office",
                    users=2, tls=False, features=("rooms",))
    line = encode(hello).decode()
    assert line == (
        "HELLO|1|richchat-server/0.1.0|role=server|name=Office|users=2|tls=0|features=rooms\n"
    )
    back = decode_server_line(line.rstrip("\n"))
    assert back == hello and isinstance(back, f.Hello) and back.from_server


def test_client_hello_and_its_echo_are_not_from_a_server() -> None:
    line = encode(f.Hello(version=1, agent="richchat-scan/0.1.0")).decode().rstrip("\n")
    assert line == "HELLO|1|richchat-scan/0.1.0"
    echoed = decode_server_line(line)
    assert isinstance(echoed, f.Hello) and not echoed.from_server
    client_side = decode_client_line(line)
    assert isinstance(client_side, f.Hello) and client_side.role is None


def test_unknown_roles_are_ignored() -> None:
    frame = decode_server_line("HELLO|1|x/1|role=client|name=a")
    assert isinstance(frame, f.Hello) and frame.role is None and not frame.from_server
