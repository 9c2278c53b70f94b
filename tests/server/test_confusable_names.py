"""Issue #19: names that look alike are the same name, in every dialect, through a real server.

Each case: a user is online as ``online`` (a HELLO client); another client claims ``claimed``
as a HELLO client (``CMD_USER``), a seed-protocol client (``CMD_USER`` without HELLO) and a
netcat user (at the nickname prompt). ``same`` says whether the server must refuse it as the same name.
"""

from __future__ import annotations

import pytest

from richchat.core.server import ChatServer
from tests.linechat import LineClient

CASES = [
    # (online name, claimed name, same?)
    ("admin", "admin", True),
    ("admin", "ADMIN", True),
    ("admin", "\u0430dmin", True),  # Cyrillic а
    ("admin", "adm\u0456n", True),  # Ukrainian і
    ("admin", "ＡＤＭＩＮ", True),  # fullwidth
    ("admin", "\u0391DMIN", True),  # Greek Α
    ("mike", "rnike", True),  # r + n looks like m
    ("paypal", "p\u0430yp\u0430l", True),
    ("Jos\u00e9", "Jose\u0301", True),  # NFC vs NFD
    ("Алиса", "\u0041лиса", True),  # Latin A in a Cyrillic name
    ("李雷", "李雷", True),
    ("admin", "admins", False),
    ("admin", "adm1n", False),
    ("alice", "Алиса", False),
    ("Zoë", "Zoe", False),
    ("José", "Jose", False),
]

#: names in other scripts (or mixing scripts the way real names do) that must be accepted
ACCEPTED = ["Алиса", "李雷", "Zoë", "José", "δημήτρης", "山田たろう", "김철수", "Алиса_2", "Jürgen-2.0",
            "عمر", "Mei李"]
#: names mixing scripts the way no real name does: refused even when nobody is online
MIXED = [("\u03a9mega", "Greek"), ("\u0430dmin", "Cyrillic"), ("Ωмега", "Cyrillic")]


async def _claim_hello(port: int, name: str) -> tuple[bool, str]:
    c = await LineClient.connect(port, hello="t")
    c.send(f"CMD_USER|{name}")
    line = await c.expect(lambda l: l.startswith(("YOU|", "ERR|")))
    await c.close()
    return line.startswith("YOU|"), line


async def _claim_seed(port: int, name: str) -> tuple[bool, str]:
    c = await LineClient.connect(port)
    c.send(f"CMD_USER|{name}")
    line = await c.expect(lambda l: l.startswith("ERR|") or l == f"SRV|{name} joined")
    await c.close()
    return not line.startswith("ERR|"), line


async def _claim_netcat(port: int, name: str) -> tuple[bool, str]:
    c = await LineClient.connect(port)
    await c.expect(lambda l: l.startswith("*** Type a nickname"))
    c.send(name)  # the answer to the nickname prompt
    line = await c.expect(lambda l: l.startswith(("*** Error:", f"*** You are {name}.")))
    await c.close()
    return not line.startswith("*** Error:"), line


CLAIMS = {"hello": _claim_hello, "seed": _claim_seed, "netcat": _claim_netcat}


@pytest.mark.parametrize("dialect", list(CLAIMS))
async def test_look_alike_names_are_the_same_name(server: ChatServer, dialect: str) -> None:
    claim = CLAIMS[dialect]
    for online, claimed, same in CASES:
        holder = await LineClient.connect(server.port, hello="t", nick=online)
        assert f"YOU|{online}" in holder.lines, (online, holder.lines)
        accepted, line = await claim(server.port, claimed)
        assert accepted is not same, (dialect, online, claimed, line)
        if same:
            assert "name_taken" in line or "in use" in line or "looks like" in line, line
            # the refusal names the online user it is confused with
            assert online in line, (claimed, line)
        await holder.close()
        await holder.closed()


@pytest.mark.parametrize("dialect", list(CLAIMS))
async def test_real_names_in_any_script_are_accepted(server: ChatServer, dialect: str) -> None:
    for name in ACCEPTED:
        accepted, line = await CLAIMS[dialect](server.port, name)
        assert accepted, (dialect, name, line)


@pytest.mark.parametrize("dialect", list(CLAIMS))
async def test_mixed_script_names_are_refused_with_the_reason(
    server: ChatServer, dialect: str
) -> None:
    for name, script in MIXED:
        accepted, line = await CLAIMS[dialect](server.port, name)
        assert not accepted, (dialect, name, line)
        assert "mix" in line and script in line, line
        if dialect != "netcat":
            assert line.startswith("ERR|name_invalid|"), line


async def test_rename_to_own_look_alike_is_allowed(server: ChatServer) -> None:
    c = await LineClient.connect(server.port, hello="t", nick="admin")
    c.send("CMD_USER|ADMIN")
    await c.expect("YOU|ADMIN")
    await c.close()


async def test_private_message_finds_the_holder_by_any_look_alike(server: ChatServer) -> None:
    admin = await LineClient.connect(server.port, hello="t", nick="admin")
    bob = await LineClient.connect(server.port, hello="t", nick="bob")
    bob.send("CMD_MSG|ＡＤＭＩＮ|hi")
    await admin.expect(lambda l: l.startswith("PRIV|") and l.endswith("|bob|admin|hi"))
    await admin.close()
    await bob.close()


async def test_room_names_follow_the_same_rule(server: ChatServer) -> None:
    c = await LineClient.connect(server.port, hello="t", nick="roomer")
    raw = await LineClient.connect(server.port)
    raw.send("")  # Enter at the nickname prompt: the guest name
    await raw.expect(lambda l: l.startswith("*** You are guest-"))
    # a look-alike of an open room is refused and points to the real one
    c.send("CMD_JOIN|l\u043ebby")  # Cyrillic о
    err = await c.expect(lambda l: l.startswith("ERR|"))
    assert err.startswith("ERR|room_invalid|") and "#lobby" in err, err
    c.send("CMD_JOIN|dev")
    await c.expect(lambda l: l.startswith("RLIST|dev|"))
    raw.send("/join d\u0435v")  # Cyrillic е
    err = await raw.expect(lambda l: l.startswith("*** Error:"))
    assert "looks like #dev" in err, err
    raw.send("/join \u03a9mega")
    err = await raw.expect(lambda l: l.startswith("*** Error:"))
    assert "mix" in err and "Greek" in err, err
    # rooms in one non-Latin script are fine
    raw.send("/join 日本語")
    await raw.expect(lambda l: l.startswith("*** You are in #日本語"))
    await c.close()
    await raw.close()


async def test_a_look_alike_of_a_room_joined_a_line_before_is_refused(server: ChatServer) -> None:
    """Found with #15's lazy waits: two joins in one packet (the first one not applied to the
    fan-out's view yet when the second is handled) opened ``ldev7`` and ``1dev7`` both, two
    rooms that look alike. A room the user has just joined counts as open."""
    c = await LineClient.connect(server.port, hello="t", nick="quick")
    c.send("CMD_JOIN|ldev7\nCMD_JOIN|1dev7")
    await c.expect(lambda l: l.startswith("RLIST|ldev7|"))
    err = await c.expect(lambda l: l.startswith(("ERR|", "RLIST|")))
    assert err.startswith("ERR|room_invalid|") and "#ldev7" in err, err
    await c.close()
