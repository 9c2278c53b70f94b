"""``HELLO|...|flood=RATE/BURST``: the server's flood limit, both ways through the codec."""

from __future__ import annotations

import pytest

from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import decode_server_line, encode


@pytest.mark.parametrize(
    ("line", "rate", "burst"),
    [
        ("HELLO|1|richchat-server/0.1.0|name=Lab|flood=10/30", 10.0, 30),
        ("HELLO|1|s/1|flood=0.5/3", 0.5, 3),
        ("HELLO|1|s/1|flood=0/30", 0.0, 30),  # flood control off
        ("HELLO|1|s/1|flood=0.0000001/1", 1e-7, 1),
    ],
)
def test_flood_key_round_trip(line: str, rate: float, burst: int) -> None:
    frame = decode_server_line(line)
    assert isinstance(frame, f.Hello)
    assert (frame.flood_rate, frame.flood_burst) == (rate, burst)
    assert encode(frame) == (line + "\n").encode()


@pytest.mark.parametrize("value", ["10", "x/3", "10/", "-1/3", "1e5/3", "10/0", "nan/3"])
def test_a_malformed_flood_value_is_ignored(value: str) -> None:
    # forward compatibility: an unexpected value never costs the connection
    frame = decode_server_line(f"HELLO|1|s/1|flood={value}")
    assert isinstance(frame, f.Hello)
    assert (frame.flood_rate, frame.flood_burst) == (None, None)


def test_no_flood_key_without_a_limit_given() -> None:
    assert encode(f.Hello(version=1, agent="richchat/1")) == b"HELLO|1|richchat/1\n"
