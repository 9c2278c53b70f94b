"""The chat UI's session (connect, register, reconnect, rejoin, de-duplicate) against a real
server on loopback, without Textual: the events it reports are recorded and checked."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from richchat.core.client import Address
from richchat.core.errors import ConnectionRefusedRichchatError, ProtocolError
from richchat.core.protocol import frames as f
from richchat.core.tui import session as se
from tests.client.servers import free_port, next_frame, registered, start_server


class Recorder:
    """The session's listener: keeps every event, wakes whoever waits for one."""

    def __init__(self) -> None:
        self.events: list[se.SessionEvent] = []
        self._arrived = asyncio.Event()

    def __call__(self, event: se.SessionEvent) -> None:
        self.events.append(event)
        self._arrived.set()

    async def until(self, cond: Callable[[], bool], what: str, timeout: float = 15) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not cond():
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; events: {self.events[-8:]}")
            self._arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    def frames(self, kind: type[f.Frame] = f.Frame) -> list[f.Frame]:
        return [e.frame for e in self.events
                if isinstance(e, se.FrameReceived) and isinstance(e.frame, kind)]

    def of(self, kind: type[object]) -> list[object]:
        return [e for e in self.events if isinstance(e, kind)]


def make(port: int, nick: str | None, rec: Recorder, **kw: object) -> se.ChatSession:
    options: dict[str, object] = {"reconnect_base": 0.1, "reconnect_cap": 0.3}
    options.update(kw)
    return se.ChatSession(Address("127.0.0.1", port), nick, rec, **options)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(session: se.ChatSession) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(session.run())
    try:
        yield task
    finally:
        await session.quit()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_registers_and_reports_in_order(chat_server: object) -> None:
    rec = Recorder()
    session = make(chat_server.port, "alice", rec)  # type: ignore[attr-defined]
    async with running(session):
        await rec.until(lambda: session.registered, "registration")
        statuses = [e.status for e in rec.of(se.StatusChanged)]  # type: ignore[attr-defined]
        assert [(s.state, s.detail) for s in statuses] == [
            ("connecting", ""), ("connected", "choosing a nickname"), ("connected", ""),
        ]
        kinds = [type(e) for e in rec.events]
        assert kinds.index(se.Connected) < kinds.index(se.FrameReceived)
        assert rec.frames(f.You) == [f.You(name="alice")]
        assert session.nick == "alice" and session.sessions == 1


async def test_reconnect_rejoins_without_repeating_history(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = await start_server(data)
    port = server.port  # type: ignore[attr-defined]
    rec = Recorder()
    session = make(port, "alice", rec)
    async with running(session):
        await rec.until(lambda: session.registered, "registration")
        session.send(f.JoinRoom(room="dev"))
        await rec.until(lambda: session.rooms == ["dev"], "in dev")
        session.send(f.SayRoom(room="dev", text="before restart"))
        await rec.until(lambda: len(rec.frames(f.RoomMessage)) == 1, "the echo")
        await server.stop()  # type: ignore[attr-defined]
        await rec.until(lambda: session.status.state == "disconnected", "the loss")
        assert any(isinstance(e, se.Note) and e.text.startswith("Connection lost; reconnecting in")
                   for e in rec.events)
        assert session.status.retry_at is not None  # the header counts down to it
        assert rec.of(se.Disconnected)
        server = await start_server(data, port=port)
        try:
            await rec.until(lambda: session.sessions == 2, "re-registration", timeout=30)
            # rejoined on its own: the server sends dev's history again, which is dropped
            await rec.until(lambda: len(rec.frames(f.RoomUsers)) >= 2, "dev's member list again")
            session.send(f.SayRoom(room="dev", text="after restart"))
            await rec.until(lambda: len(rec.frames(f.RoomMessage)) == 2, "the new echo")
            texts = [fr.text for fr in rec.frames(f.RoomMessage)]  # type: ignore[attr-defined]
            assert texts == ["before restart", "after restart"]
            assert session.nick == "alice" and session.status.state == "connected"
            assert session.status.retry_at is None
        finally:
            await server.stop()  # type: ignore[attr-defined]


async def test_a_left_room_shows_its_history_again_when_rejoined(chat_server: object) -> None:
    rec = Recorder()
    session = make(chat_server.port, "alice", rec)  # type: ignore[attr-defined]
    async with running(session):
        await rec.until(lambda: session.registered, "registration")
        session.send(f.JoinRoom(room="dev"))
        await rec.until(lambda: session.rooms == ["dev"], "in dev")
        session.send(f.SayRoom(room="dev", text="note to self"))
        await rec.until(lambda: len(rec.frames(f.RoomMessage)) == 1, "the echo")
        session.send(f.PartRoom(room="dev"))
        await rec.until(lambda: session.rooms == [], "left dev")
        session.send(f.JoinRoom(room="dev"))
        await rec.until(lambda: len(rec.frames(f.RoomMessage)) == 2, "the history again")


async def test_shutdown_is_a_bye_frame(chat_server: object) -> None:
    rec = Recorder()
    session = make(chat_server.port, "alice", rec)  # type: ignore[attr-defined]
    async with running(session):
        await rec.until(lambda: session.registered, "registration")
        await chat_server.stop()  # type: ignore[attr-defined]
        await rec.until(lambda: bool(rec.of(se.Disconnected)), "the end of the connection")
        assert rec.frames(f.Bye) == [f.Bye(code="shutdown", text="Server is shutting down")]


async def test_first_failure_with_fail_fast_gives_up() -> None:
    rec = Recorder()
    session = make(free_port(), "alice", rec, fail_fast=True)
    await asyncio.wait_for(session.run(), 15)
    failed = rec.of(se.Failed)
    assert len(failed) == 1
    assert isinstance(failed[0].error, ConnectionRefusedRichchatError)  # type: ignore[attr-defined]


async def test_without_fail_fast_a_refused_connection_is_retried() -> None:
    rec = Recorder()
    session = make(free_port(), "alice", rec)
    async with running(session):
        await rec.until(lambda: session.status.detail.startswith("connection refused"),
                        "a refused attempt")
        assert session.status.state == "disconnected" and session.status.retry_at is not None
        await rec.until(lambda: session.status.detail == "attempt 2", "the next attempt")
        assert not rec.of(se.Failed)


async def test_not_a_richchat_server_gives_up() -> None:
    async def speak_ssh(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await w.drain()

    other = await asyncio.start_server(speak_ssh, "127.0.0.1", 0)
    port = other.sockets[0].getsockname()[1]
    rec = Recorder()
    session = make(port, "alice", rec)
    try:
        await asyncio.wait_for(session.run(), 15)
    finally:
        other.close()
    assert session.status.state == "failed"
    assert isinstance(rec.of(se.Failed)[0].error, ProtocolError)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("nick", "reason"), [
    (None, None),
    ("no spaces", "Nickname 'no spaces' refused: a nickname cannot contain space"),
])
async def test_no_usable_nickname_asks_for_one(chat_server: object, nick: str | None,
                                               reason: str | None) -> None:
    rec = Recorder()
    session = make(chat_server.port, nick, rec)  # type: ignore[attr-defined]
    async with running(session):
        await rec.until(lambda: bool(rec.of(se.NickNeeded)), "the question")
        assert rec.of(se.NickNeeded) == [se.NickNeeded(reason)]
        session.choose_nick("dora")
        await rec.until(lambda: session.registered, "registration")
        assert session.nick == session.wanted_nick == "dora"


async def test_a_taken_name_on_first_connect_is_asked_again(chat_server: object) -> None:
    bob = await registered(chat_server.port, "bob")  # type: ignore[attr-defined]
    rec = Recorder()
    session = make(chat_server.port, "Bob", rec)  # type: ignore[attr-defined]
    async with running(session):
        await rec.until(lambda: bool(rec.of(se.NickNeeded)), "the question")
        needed = rec.of(se.NickNeeded)[0]
        assert needed.reason.startswith("Nickname 'Bob' refused: ")  # type: ignore[attr-defined]
        assert not rec.of(se.Note)  # no retries: nobody held it for us
    await bob.close()


async def test_quit_says_goodbye_and_stops(chat_server: object) -> None:
    watcher = await registered(chat_server.port, "watcher")  # type: ignore[attr-defined]
    rec = Recorder()
    session = make(chat_server.port, "alice", rec)  # type: ignore[attr-defined]
    task = asyncio.create_task(session.run())
    await rec.until(lambda: session.registered, "registration")
    await session.quit("see you")
    await asyncio.wait_for(task, 10)  # run() returns: no reconnection
    left = await next_frame(watcher, f.UserLeft)
    assert isinstance(left, f.UserLeft) and left.name == "alice" and "see you" in left.reason
    assert not session.connected
    await watcher.close()


def test_status_puts_the_countdown_first() -> None:
    assert se.Status("connected").describe(5.0) == ""
    assert se.Status("disconnected", "", retry_at=7.14).describe(5.0) == "reconnecting in 2.1 s"
    waiting = se.Status("disconnected", "connection refused by 127.0.0.1:5050", retry_at=6.0)
    assert waiting.describe(5.0) == "reconnecting in 1.0 s; connection refused by 127.0.0.1:5050"
    assert waiting.describe(9.0).startswith("reconnecting in 0.0 s")  # never negative
