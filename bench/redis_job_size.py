"""What a full-size job costs in Redis: MEMORY USAGE, create time, load time.

The job: 114,892 CIDs of 16 hex digits, generated as svc/sources/demo.py does (seed 42), two
domains. Measured, each over `--repeat` runs (median and worst):

- the codec alone: blob size, bytes per CID, dumps and loads;
- `RedisJobStore`: `create` (encode + one SET), `MEMORY USAGE` of the job key, `get` by a
  store that has never seen the job (uncached: GET + decode), and a cached `get`;
- over HTTP, two replicas sharing the Redis: `POST /api/trace/job` with the 114,892 CIDs
  on A (client JSON encoding and upload included), then, once A has computed the job's
  totals, `GET /api/trace/job/{id}` on B, first (B loads the spec) and again (cached).

    .venv/bin/python bench/redis_job_size.py [--redis-url URL] [--cids 114892] [--no-http]

Without --redis-url (or TRACE_REDIS_URL) a private redis-server is started on a free port.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from svc.store import codec, new_spec  # noqa: E402
from svc.store.redis import RedisJobStore  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.servers import build_demo_db, start_server  # noqa: E402

DOMAINS = ["history", "materials"]


def demo_cids(n: int, seed: int = 42) -> list[str]:
    """The demo database's CIDs: random 64-bit values as 16 lower-case hex digits."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < n:
        seen.add(f"{rng.getrandbits(64):016x}")
    return list(seen)


def ms(samples: list[float]) -> str:
    each = ", ".join(f"{s * 1000:.0f}" for s in samples)
    median, worst = statistics.median(samples) * 1000, max(samples) * 1000
    return f"median {median:6.1f} ms, worst {worst:6.1f} ms ({each})"


async def timed(repeat: int, work: Callable[[], Awaitable[Any]]) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        await work()
        out.append(time.perf_counter() - t)
    return out


async def measure_store(url: str, cids: list[str], repeat: int) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    spec = new_spec(cids, DOMAINS, 3600, None, None)

    blob = codec.dumps(spec)
    dumps = [0.0] * repeat
    loads = [0.0] * repeat
    for i in range(repeat):
        t = time.perf_counter()
        codec.dumps(spec)
        dumps[i] = time.perf_counter() - t
        t = time.perf_counter()
        codec.loads(blob)
        loads[i] = time.perf_counter() - t
    print(f"CIDs                     {len(spec.cids):,}")
    print(f"codec blob               {len(blob):,} bytes ({len(blob) / len(spec.cids):.2f} a CID)")
    print(f"codec dumps              {ms(dumps)}")
    print(f"codec loads              {ms(loads)}")

    raw = aioredis.Redis.from_url(url)
    store = RedisJobStore(url, prefix=prefix, ttl=3600)
    try:
        specs = [new_spec(cids, DOMAINS, 3600, None, None) for _ in range(repeat)]
        it = iter(specs)
        create = await timed(repeat, lambda: store.create(next(it)))
        usage = await raw.memory_usage(f"{prefix}job:{specs[0].job_id}")
        assert usage is not None, "the job key is missing"
        print(f"store create             {ms(create)}")
        print(f"MEMORY USAGE             {usage:,} bytes ({usage / 2**20:.3f} MiB)")

        async def uncached() -> None:
            fresh = RedisJobStore(url, prefix=prefix, ttl=3600)
            await fresh.ping()  # connect first: measure the load, not the TCP handshake
            t = time.perf_counter()
            got = await fresh.get(specs[0].job_id)
            samples.append(time.perf_counter() - t)
            assert got == specs[0]
            await fresh.close()

        samples: list[float] = []
        for _ in range(repeat):
            await uncached()
        print(f"store get, uncached      {ms(samples)}")
        cached = await timed(repeat, lambda: store.get(specs[-1].job_id))
        print(f"store get, cached        {ms(cached)}")
        for s in specs:
            await raw.delete(f"{prefix}job:{s.job_id}", f"{prefix}totals:{s.job_id}")
    finally:
        await store.close()
        await raw.aclose()


def measure_http(url: str, cids: list[str], repeat: int, work: Path) -> None:
    db = build_demo_db(work / "demo.sqlite3", 1000)
    env = {"TRACE_REDIS_URL": url, "TRACE_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}:"}
    a = start_server(work / "a", db, env)
    b = start_server(work / "b", db, env)
    try:
        create: list[float] = []
        first: list[float] = []
        again: list[float] = []
        with httpx.Client(timeout=30) as client:
            client.get(f"{a.url}/healthz")
            client.get(f"{b.url}/healthz")
            for _ in range(repeat):
                t = time.perf_counter()
                r = client.post(f"{a.url}/api/trace/job", json={"container_ids": cids})
                create.append(time.perf_counter() - t)
                assert r.status_code == 201, r.text
                job = r.json()["job_id"]
                # let A finish the totals it computes after a creation, so that each
                # measurement sees an idle service (as a single creation would)
                while len(client.get(f"{a.url}/api/trace/job/{job}").json()["totals"]) < 2:
                    time.sleep(0.05)
                for samples in (first, again):
                    t = time.perf_counter()
                    r = client.get(f"{b.url}/api/trace/job/{job}")
                    samples.append(time.perf_counter() - t)
                    assert r.status_code == 200 and r.json()["cid_count"] == len(cids)
        print(f"HTTP POST job on A       {ms(create)}")
        print(f"HTTP GET job on B, first {ms(first)}")
        print(f"HTTP GET job on B, again {ms(again)}")
    finally:
        a.stop()
        b.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default=os.environ.get("TRACE_REDIS_URL"))
    parser.add_argument("--cids", type=int, default=114_892)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args()
    cids = demo_cids(args.cids)
    with tempfile.TemporaryDirectory(prefix="redis-bench-") as tmp:
        server = None
        url = args.redis_url
        if url is None:
            server = RedisServer(Path(tmp) / "redis")
            server.start()
            url = server.url
        try:
            version = asyncio.run(_server_version(url))
            print(f"redis-server {version}, Python {sys.version.split()[0]}")
            asyncio.run(measure_store(url, cids, args.repeat))
            if not args.no_http:
                measure_http(url, cids, args.repeat, Path(tmp))
        finally:
            if server is not None:
                server.stop()


async def _server_version(url: str) -> str:
    client = aioredis.Redis.from_url(url)
    try:
        info = await client.info("server")
        return str(info.get("redis_version"))
    finally:
        await client.aclose()


if __name__ == "__main__":
    main()
