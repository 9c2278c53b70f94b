"""Idle memory housekeeping: validators built at start-up, freed heap given back when quiet."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

import pytest

from richchat.core.server import ChatServer
from richchat.core.server.memory import HeapTrimmer, libc_malloc_trim
from tests.conditions import wait_until
from tests.linechat import LineClient
from tests.server.conftest import ServerFactory


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_trimmer(
    busy_interval: float = 60.0,
) -> tuple[HeapTrimmer, list[int], list[int], list[int]]:
    counter = [0]
    population = [100]
    trims: list[int] = []
    clock = Clock()
    trimmer = HeapTrimmer(
        lambda: counter[0], lambda: trims.append(1), quiet=1.0,
        busy_interval=busy_interval, clock=clock, collect=lambda: None,
        population=lambda: population[0], collect_interval=60.0,
    )  # fmt: skip
    return trimmer, counter, trims, population


def test_tidies_once_after_start_up_then_only_after_activity() -> None:
    trimmer, counter, trims, population = make_trimmer()
    assert trimmer.tick() is True  # start-up garbage: collect and trim
    assert trimmer.collections == 1
    assert trimmer.tick() is False and trimmer.tick() is False  # idle: nothing to give back
    counter[0] += 5  # a burst
    population[0] += 60  # that brought 60 clients
    assert trimmer.tick() is False  # still busy during this interval
    assert trimmer.tick() is True  # quiet for a whole interval after it: collect and trim
    assert trimmer.tick() is False
    assert len(trims) == 2 and trimmer.trims == 2 and trimmer.collections == 2


def test_a_trickle_of_messages_trims_but_does_not_collect_every_time() -> None:
    trimmer, counter, _trims, population = make_trimmer()
    clock = trimmer.clock
    assert isinstance(clock, Clock)
    trimmer.tick()
    for _ in range(5):  # a message, then quiet: same clients
        counter[0] += 1
        clock.now += 1.0
        trimmer.tick()
        clock.now += 1.0
        assert trimmer.tick() is True
    assert trimmer.trims == 6 and trimmer.collections == 1  # the population did not change
    population[0] -= 49  # not enough to matter
    counter[0] += 1
    trimmer.tick()
    trimmer.tick()
    assert trimmer.collections == 1
    clock.now += 60.0  # but a minute later, it is due anyway
    counter[0] += 1
    trimmer.tick()
    trimmer.tick()
    assert trimmer.collections == 2


def test_quiet_collection_freezes_the_survivors_and_finds_frozen_garbage() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a reference cycle: only the cyclic collector frees it

    trimmer = HeapTrimmer(lambda: 0, None, quiet=1.0, collect_interval=0.0)
    try:
        kept = Node()
        assert trimmer.tick() is True  # start-up: full collection, then freeze
        assert gc.get_freeze_count() > 0
        gc.collect()  # an ordinary full collection does not look at frozen objects...
        import weakref

        ref = weakref.ref(kept)
        del kept
        gc.collect()
        assert ref() is not None  # ...so the frozen cycle is still there
        trimmer._pending = True  # next quiet tidy: unfreeze, collect, freeze
        assert trimmer.tick() is True
        assert ref() is None
    finally:
        gc.unfreeze()


def test_never_stopping_activity_still_trims_every_busy_interval() -> None:
    trimmer, counter, trims, _population = make_trimmer(busy_interval=10.0)
    clock = trimmer.clock
    assert isinstance(clock, Clock)
    trimmer.tick()
    trims.clear()
    collections = trimmer.collections
    for _ in range(25):  # busy at every tick, 1 s apart, for 25 s
        counter[0] += 1
        clock.now += 1.0
        trimmer.tick()
    assert len(trims) == 2  # at 10 s and 20 s, not at every tick
    assert trimmer.collections == collections  # no full collection while busy


def test_without_malloc_trim_it_only_collects() -> None:
    trimmer = HeapTrimmer(lambda: 0, None, collect=lambda: None)
    assert trimmer.tick() is True
    assert trimmer.collections == 1 and trimmer.trims == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_glibc_malloc_trim_is_found_and_callable() -> None:
    trim = libc_malloc_trim()
    assert trim is not None
    assert trim() in (0, 1)  # 1: memory was released, 0: there was none to release


WARM_UP_PROBE = """
import json
from pydantic import ValidationError
from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import warm_up
models = [*f.CLIENT_FRAMES.values(), *f.SERVER_FRAMES.values(), f.UserEntry, f.RoomInfo]
built_before = [m.__name__ for m in models if m.__pydantic_complete__]
warm_up()
unbuilt_after = [m.__name__ for m in models if not m.__pydantic_complete__]
try:
    f.SetNick(name="not|valid")
    rejects = False
except ValidationError:
    rejects = True
print(json.dumps({"models": len(models), "built_before": built_before,
                  "unbuilt_after": unbuilt_after, "rejects": rejects}))
"""


def test_warm_up_builds_every_frame_validator(cli_env: dict[str, str]) -> None:
    # A fresh process: in this one, earlier tests have built most validators long ago.
    proc = subprocess.run([sys.executable, "-c", WARM_UP_PROBE], capture_output=True, text=True,
                          env=cli_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["models"] > 20
    assert result["built_before"] == []  # defer_build: nothing is built at import...
    assert result["unbuilt_after"] == []  # ...and warm_up() built every one
    assert result["rejects"]  # the validators built ahead of time still validate


async def test_server_trims_after_a_burst_and_keeps_serving(make_server: ServerFactory) -> None:
    if libc_malloc_trim() is None:
        pytest.skip("no glibc malloc_trim here")
    server: ChatServer = await make_server(heap_trim_quiet=0.05)
    assert server.trimmer is not None
    trimmer = server.trimmer
    await wait_until(lambda: trimmer.trims >= 1, "the start-up trim")
    first = trimmer.trims
    clients = [await LineClient.connect(server.port, hello="t", nick=f"u{i}") for i in range(20)]
    clients[0].send("MSG|hello after the burst")
    for c in clients:
        await c.expect(lambda line: line.endswith("|u0|hello after the burst"))
    await wait_until(lambda: trimmer.trims > first, "a trim after the burst")
    clients[1].send("MSG|still here")  # trimming changed nothing for the clients
    for c in clients:
        await c.expect(lambda line: line.endswith("|u1|still here"))
    for c in clients:
        await c.close()
