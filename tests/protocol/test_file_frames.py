"""File sharing frames, both directions (bytes <-> frames), and the transfer connection's lines.
No network."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from richchat.core.protocol import frames as f
from richchat.core.protocol import transfer as t
from richchat.core.protocol.codec import (
    InvalidFrame,
    decode_client_line,
    decode_server_line,
    encode,
)
from richchat.core.protocol.slash import SlashError, parse_slash

SHA = "3f2a9c0d1e2f" + "0" * 52

CLIENT_TABLE: list[tuple[str, f.Frame]] = [
    (f"CMD_SHARE|dev|1234|{SHA}|report.pdf",
     f.ShareFile(target="dev", size=1234, sha256=SHA, name="report.pdf")),
    (f"CMD_SHARE|@bob|0|{SHA}|a | b.txt",  # the name is the last field: it may hold '|'
     f.ShareFile(target="@bob", size=0, sha256=SHA, name="a | b.txt")),
    ("CMD_GET|k3x9q2wz4m1p", f.GetFile(id="k3x9q2wz4m1p")),
    ("CMD_FILES|lobby", f.ListFiles(target="lobby")),
    ("CMD_FILES|@alice", f.ListFiles(target="@alice")),
]

SERVER_TABLE: list[tuple[str, f.Frame]] = [
    (f"FILE|k3x9q2wz4m1p|1700000000000|dev|alice|1234|{SHA}|report.pdf",
     f.FileOffer(id="k3x9q2wz4m1p", ts=1700000000000, target="dev", sender="alice", size=1234,
                 sha256=SHA, name="report.pdf")),
    (f"FILEINFO|k3x9q2wz4m1p|1|@bob|alice|5|{SHA}|x",
     f.FileInfo(id="k3x9q2wz4m1p", ts=1, target="@bob", sender="alice", size=5, sha256=SHA,
                name="x")),
    ("FILES|dev|2", f.FileList(target="dev", count=2)),
    (f"UPLOAD|{SHA}|{'A' * 32}", f.UploadReady(sha256=SHA, token="A" * 32)),
    (f"DOWNLOAD|k3x9q2wz4m1p|{'b-_' * 8}|1234|{SHA}|report.pdf",
     f.DownloadReady(id="k3x9q2wz4m1p", token="b-_" * 8, size=1234, sha256=SHA,
                     name="report.pdf")),
]


@pytest.mark.parametrize(("line", "frame"), CLIENT_TABLE)
def test_client_frames_both_ways(line: str, frame: f.Frame) -> None:
    assert decode_client_line(line) == frame
    assert encode(frame) == (line + "\n").encode()


@pytest.mark.parametrize(("line", "frame"), SERVER_TABLE)
def test_server_frames_both_ways(line: str, frame: f.Frame) -> None:
    assert decode_server_line(line) == frame
    assert encode(frame) == (line + "\n").encode()


@pytest.mark.parametrize(
    "line",
    [
        f"CMD_SHARE|dev|12|{SHA[:-1]}|x",  # not a SHA-256
        f"CMD_SHARE|dev|12|{SHA.upper()}|x",  # upper case hex is not the wire form
        f"CMD_SHARE|dev|-1|{SHA}|x",
        f"CMD_SHARE|dev|12|{SHA}|",  # no name
        f"CMD_SHARE|dev|12|{SHA}|" + "n" * 1025,  # a name longer than 1024 characters
        f"CMD_SHARE|@bad name|12|{SHA}|x",
        f"CMD_SHARE|not a room|12|{SHA}|x",
        "CMD_GET|K3X",  # too short, upper case
        "CMD_GET|../../etc",
    ],
)
def test_bad_file_requests_are_invalid_frames(line: str) -> None:
    assert isinstance(decode_client_line(line), InvalidFrame)


def test_file_names_arrive_with_control_characters_neutralised() -> None:
    frame = decode_server_line(f"FILE|k3x9q2wz4m1p|1|dev|alice|5|{SHA}|a\x1b[2Jb\u202e.txt")
    assert isinstance(frame, f.FileOffer)
    assert "\x1b" not in frame.name and "\u202e" not in frame.name
    assert frame.name == "a\u241b[2Jb\ufffd.txt"


def test_hello_advertises_the_largest_file() -> None:
    hello = f.Hello(version=1, agent="richchat-server/0.1.0", role="server", file_max=104857600)
    line = encode(hello).decode()
    assert line == "HELLO|1|richchat-server/0.1.0|role=server|files=104857600\n"
    assert decode_server_line(line.rstrip("\n")) == hello
    # a malformed value, or no key at all: the server takes no files
    for bad in ("files=", "files=-1", "files=1e9", "files=lots"):
        got = decode_server_line(f"HELLO|1|x/1|role=server|{bad}")
        assert isinstance(got, f.Hello) and got.file_max is None


def test_hello_advertises_the_speed_limit_of_transfers() -> None:
    hello = f.Hello(version=1, agent="s/1", role="server", file_max=1000, file_rate=200000)
    line = encode(hello).decode()
    assert line == "HELLO|1|s/1|role=server|files=1000|filerate=200000\n"
    assert decode_server_line(line.rstrip("\n")) == hello
    for bad in ("filerate=", "filerate=0", "filerate=-1", "filerate=1e9", "filerate=fast"):
        got = decode_server_line(f"HELLO|1|x/1|role=server|files=9|{bad}")
        assert isinstance(got, f.Hello) and got.file_rate is None and got.file_max == 9


def test_slash_commands_of_netcat_users() -> None:
    assert parse_slash("/files") == f.ListFiles(target="lobby")
    assert parse_slash("/files", "dev") == f.ListFiles(target="dev")
    assert parse_slash("/files @bob") == f.ListFiles(target="@bob")
    assert parse_slash("/get K3X9Q2WZ4M1P") == f.GetFile(id="k3x9q2wz4m1p")
    for bad in ("/get", "/get ../../x", "/get a b"):
        assert isinstance(parse_slash(bad), SlashError)


# ----------------------------------------------------------------------------- transfer lines

TOKEN = "tok-" + "x" * 20


@pytest.mark.parametrize(
    ("line", "req"),
    [
        (f"XFER|1|PUT|{TOKEN}", t.TransferRequest(op="PUT", token=TOKEN)),
        (f"XFER|1|GET|{TOKEN}|0", t.TransferRequest(op="GET", token=TOKEN)),
        (f"XFER|1|GET|{TOKEN}|52428800", t.TransferRequest(op="GET", token=TOKEN,
                                                           offset=52428800)),
        (f"XFER|1|GET|{TOKEN}|0|k3x9q2wz4m1p",
         t.TransferRequest(op="GET", token=TOKEN, file_id="k3x9q2wz4m1p")),
        (f"XFER|1|GET|{TOKEN}|5|k3x9q2wz4m1p|{'ab' * 32}",
         t.TransferRequest(op="GET", token=TOKEN, offset=5, file_id="k3x9q2wz4m1p",
                           prefix="ab" * 32)),
    ],
)
def test_transfer_requests_both_ways(line: str, req: t.TransferRequest) -> None:
    assert t.decode_request(line.encode()) == req
    assert req.line() == line


@pytest.mark.parametrize(
    "line",
    [
        b"XFER|2|PUT|" + TOKEN.encode(),  # another version
        b"XFER|1|DEL|" + TOKEN.encode(),
        b"XFER|1|PUT|short",
        b"XFER|1|PUT|" + TOKEN.encode() + b"|5",  # PUT takes no offset: the server says
        b"XFER|1|GET|" + TOKEN.encode(),  # GET needs one
        b"XFER|1|GET|" + TOKEN.encode() + b"|-5",
        b"XFER|1|GET|" + TOKEN.encode() + b"|\xff",
        b"XFER|1|GET|" + TOKEN.encode() + b"|0|Not-An-Id",
        b"XFER|1|GET|" + TOKEN.encode() + b"|0|",
        b"XFER|1|GET|" + TOKEN.encode() + b"|5|k3x9q2wz4m1p|short",  # not a SHA-256
        b"XFER|1|GET|" + TOKEN.encode() + b"|5|k3x9q2wz4m1p|" + b"ab" * 32 + b"|x",
        b"HELLO|1|x",
    ],
)
def test_bad_transfer_requests(line: bytes) -> None:
    with pytest.raises(t.TransferLineError):
        t.decode_request(line)


@pytest.mark.parametrize(
    ("line", "frame"),
    [
        (f"XOK|0|1234|{SHA}|report.pdf",
         t.TransferAccepted(offset=0, size=1234, sha256=SHA, name="report.pdf")),
        (f"XDONE|{SHA}|1234", t.TransferDone(sha256=SHA, size=1234)),
        ("XERR|hash_mismatch|the bytes hash to something else",
         t.TransferError(code="hash_mismatch", text="the bytes hash to something else")),
    ],
)
def test_transfer_replies_both_ways(line: str, frame: t.ServerTransferFrame) -> None:
    assert t.decode_reply(line.encode()) == frame
    assert frame.line() == line


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_cleanly(data: bytes) -> None:
    for decode in (t.decode_request, t.decode_reply):
        with contextlib.suppress(t.TransferLineError):
            decode(data)
