"""What one Redis costs a richchat cluster per message: the backend's own Lua script (a message
appended to the chat's log and its room's history, with its id) in the batches a node sends,
read back by R nodes (``XREAD BLOCK``, as nodes read the log), against a real redis-server
started here (loopback, a temporary directory, stopped by PID).

Reported per configuration: Redis CPU per message (utime+stime of redis-server / messages;
what bounds one chat: one Redis core takes 1e6 / that many messages per second), and the
messages per second this one Python writer got through (bounded by the writer, not Redis).

    python benchmarks/cluster_redis.py                  # about a minute
    python benchmarks/cluster_redis.py --messages 50000 --readers 0,2,8
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from richchat.core.server.backends import redis_scripts as lua  # noqa: E402
from richchat.core.server.backends.redis import LOG_MAXLEN, key_prefix  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

P = key_prefix("bench")
TEXT = "x" * 100


async def one(fsync: str, chunk: int, readers: int, total: int) -> tuple[float, float]:
    srv = RedisServer(appendfsync=fsync).start()
    r = Redis.from_url(srv.url)
    try:
        sha = await r.script_load(lua.APPLY)
        await r.eval(lua.HEARTBEAT, 0, P, "n1", 600_000, "1")
        got = [0] * readers
        stop = asyncio.Event()

        async def reader(i: int) -> None:
            rr = Redis.from_url(srv.url)
            last = "0-0"
            while not stop.is_set():
                reply = await rr.xread({P + "log": last}, count=2048, block=200)
                for _key, entries in reply or ():
                    got[i] += len(entries)
                    last = entries[-1][0]
            await rr.aclose()

        tasks = [asyncio.create_task(reader(i)) for i in range(readers)]
        await asyncio.sleep(0.2)
        cpu0, t0, seq = srv.cpu_seconds(), time.perf_counter(), 0
        deadline = t0 + 120
        while seq < total and time.perf_counter() < deadline:
            pipe = r.pipeline(transaction=False)
            for _ in range(max(1, 512 // chunk)):
                args: list[object] = []
                for _ in range(chunk):
                    seq += 1
                    args += ["m", seq, 5, "lobby", "1700000000000", "bench1", "msg", TEXT]
                pipe.execute_command("EVALSHA", sha, 0, P, "n1", seq, LOG_MAXLEN, 10_000, *args)
            await pipe.execute()
        while min(got, default=seq) < seq and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        seconds = time.perf_counter() - t0
        cpu = srv.cpu_seconds() - cpu0
        stop.set()
        await asyncio.gather(*tasks)
        return cpu / seq * 1e6, seq / seconds
    finally:
        await r.aclose()
        srv.close()


async def main_async(args: argparse.Namespace) -> None:
    print("| appendfsync | events per script call | readers (nodes) | Redis CPU µs/message "
          "| Redis-bound messages/s (1 core) | measured messages/s (one Python writer) |")
    print("|---|---|---|---|---|---|")
    for fsync in args.fsync.split(","):
        for chunk in (int(x) for x in args.chunks.split(",")):
            for readers in (int(x) for x in args.readers.split(",")):
                us, rate = await one(fsync, chunk, readers, args.messages)
                print(f"| {fsync} | {chunk} | {readers} | {us:.1f} | {1e6 / us:,.0f} "
                      f"| {rate:,.0f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=30_000)
    ap.add_argument("--fsync", default="always,everysec")
    ap.add_argument("--chunks", default="1,16,128", help="events per script call")
    ap.add_argument("--readers", default="0,2,8", help="nodes reading the log")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
