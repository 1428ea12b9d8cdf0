"""What the limits shared through Redis cost a request: the creation-rate bucket, a stream
slot (hold + release) and the /readyz probe, each one round trip to Redis.

Each operation runs `--n` times in a row on one `RedisJobStore` (one connection, loopback);
the figure is the mean per operation. Compare them with each other, in one run: other load
on the machine moves all of them.

    .venv/bin/python bench/redis_limits_bench.py [--redis-url URL] [--n 2000]

Without --redis-url (or TRACE_REDIS_URL) a private redis-server is started on a free port.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from svc.store.redis import RedisJobStore  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402


async def _per_op(n: int, op: Callable[[int], Awaitable[object]]) -> float:
    started = time.perf_counter()
    for i in range(n):
        await op(i)
    return (time.perf_counter() - started) / n * 1000


async def measure(url: str, n: int) -> None:
    store = RedisJobStore(url, prefix="bench-limits:", ttl=60)
    try:
        await store.ping()  # connect first

        async def slot(i: int) -> None:
            held = await store.hold_client_slot(f"c{i % 50}", 10**6, 60)
            assert held is not None
            await store.release_client_slot(f"c{i % 50}", held)

        figures = {
            "take_token (creation rate)": await _per_op(
                n, lambda i: store.take_token(f"c{i % 50}", 1e9, 10**9)
            ),
            "hold + release a stream slot": await _per_op(n, slot),
            "/readyz probe (scripted SET + DEL)": await _per_op(n, lambda i: store.ping()),
            "HGET (one plain command), for scale": await _per_op(
                n, lambda i: store.get_aggregations("none", "history")
            ),
        }
        for name, ms in figures.items():
            print(f"{name:42} {ms:.3f} ms")
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=os.environ.get("TRACE_REDIS_URL"))
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="redis-limits-") as tmp:
        server = None
        url = args.redis_url
        if url is None:
            server = RedisServer(Path(tmp) / "redis")
            server.start()
            url = server.url
        try:
            asyncio.run(measure(url, args.n))
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
