"""`serve --workers 2`: two worker processes on one port. Streams held open on both workers
(their clients stop reading), /metrics summing both, SIGTERM to the parent draining every
stream with a `reconnect` line, and each resumed exactly once elsewhere.
Also several processes purging one embedded job store at once."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from svc.exports.files import worker_identity
from svc.sources.demo import build_demo_database
from svc.store import new_spec
from svc.store.embedded import EmbeddedJobStore
from tests.support import DOMAINS, all_cids, create_job, iter_lines, records_union, sql_truth
from tests.support.servers import ROOT, free_port, start_server


def worker_pids(parent: int) -> set[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return {
        int(pid)
        for pid in children
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()  # not the tracker
    }


def connection_owner(server_port: int, client_port: int, pids: set[int]) -> int:
    """The worker holding the server end of the loopback connection from `client_port`."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            inode = fields[9]
    assert inode is not None, "no such connection"
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if fd.readlink().name == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no worker holds socket {inode}")


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match is not None, name
    return float(match.group(1))


def test_two_workers_drain_every_stream_on_sigterm_and_sum_their_metrics(
    tmp_path: Path,
) -> None:
    # 6000 CIDs: ~20 MB of JSON a stream, far more than the socket buffers hold, so a stream
    # whose client stops reading stays open until it is drained.
    db = build_demo_database_file(tmp_path / "demo.sqlite3", cids=6000)
    cids = all_cids(db)
    metrics_dir = tmp_path / "metrics"
    env = {"TRACE_STREAM_BATCH_SIZE": "200", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    srv = start_server(tmp_path / "data", db, env, args=("--workers", "2"))
    port = int(srv.url.rsplit(":", 1)[1])
    streams: list[tuple[httpx.Client, Any, Any, list[dict[str, Any]]]] = []
    try:
        workers = worker_pids(srv.proc.pid)
        assert len(workers) == 2
        job = create_job(srv.url, cids)
        owners: dict[int, int] = {}
        url = f"{srv.url}/api/trace/job/{job['job_id']}/stream"
        for _ in range(16):  # a new connection each; the kernel picks the worker
            client = httpx.Client(timeout=30, headers={"Accept-Encoding": "identity"})
            response = client.send(client.build_request("GET", url), stream=True)
            lines_iter = response.iter_lines()
            head = [json.loads(next(lines_iter)) for _ in range(3)]
            assert [x["type"] for x in head] == ["meta", "domain_start", "records"]
            sock = response.extensions["network_stream"].get_extra_info("socket")
            owner = connection_owner(port, sock.getsockname()[1], workers)
            owners[owner] = owners.get(owner, 0) + 1
            streams.append((client, response, lines_iter, head))
            if len(streams) >= 4 and len(owners) == 2:
                break
        assert set(owners) == workers, owners  # streams on both workers
        for _ in range(4):  # whichever worker answers, it reports both workers' streams
            scrape = httpx.get(f"{srv.url}/metrics", headers={"Connection": "close"}).text
            assert _metric(scrape, "trace_active_streams") == len(streams)
        srv.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the workers turn unready
            try:
                if httpx.get(srv.url + "/readyz", timeout=1).status_code == 503:
                    break
            except httpx.TransportError:
                break
            time.sleep(0.02)
        for client, response, lines_iter, lines in streams:  # read on: each ends drained
            lines.extend(json.loads(x) for x in lines_iter if x)
            response.close()
            client.close()
        assert srv.proc.wait(30) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        for client, response, *_ in streams:
            response.close()
            client.close()
        srv.stop()

    truth = sql_truth(db, cids, DOMAINS)
    second = start_server(tmp_path / "data", db)  # one process, the same job store
    try:
        for *_, lines in streams:
            last = lines[-1]
            assert last["type"] == "reconnect" and last["reason"] == "draining", lines[-2:]
            assert last["since"] == [x for x in lines if x["type"] == "records"][-1]["since"]
            rest = list(iter_lines(second.url, job["job_id"], last["since"]))
            assert rest[-1]["type"] == "complete"
            assert records_union(lines, rest) == truth  # exactly once, each stream
    finally:
        second.stop()


def build_demo_database_file(path: Path, cids: int) -> Path:
    build_demo_database(path, cids=cids, seed=11)
    return path


def _purge(path: str) -> int:
    async def run() -> int:
        store = EmbeddedJobStore(path, ttl=60)
        try:
            return await store.purge_expired()
        finally:
            await store.close()

    return asyncio.run(run())


def _create_live(path: str, n: int) -> int:
    async def run() -> int:
        store = EmbeddedJobStore(path, ttl=60)
        try:
            for i in range(n):
                await store.create(new_spec([f"live-{i}"], ["history"], 60, None, None))
            return n
        finally:
            await store.close()

    return asyncio.run(run())


def test_several_processes_purge_and_create_in_one_store_at_once(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"

    async def fill() -> None:
        store = EmbeddedJobStore(path, ttl=0.2)
        try:
            for i in range(0, 900, 50):
                await asyncio.gather(
                    *(
                        store.create(new_spec([f"c{i + k}"] * 3, ["history"], 0.2, None, None))
                        for k in range(50)
                    )
                )
        finally:
            await store.close()

    asyncio.run(fill())
    time.sleep(0.3)  # all 900 expired
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        purges = [pool.apply_async(_purge, (str(path),)) for _ in range(3)]
        created = pool.apply_async(_create_live, (str(path), 40))
        purged = [p.get(60) for p in purges]
        assert created.get(60) == 40
    assert sum(purged) + _purge(str(path)) == 900  # each expired job deleted once, no error
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM trace_jobs").fetchone() == (40,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_worker_that_cannot_start_stops_the_service(small_demo_db: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACE_")}
    env.update(
        TRACE_DATA_DIR=str(tmp_path),
        TRACE_DB_URL=f"sqlite:///{small_demo_db}",
        TRACE_DOMAINS=str(tmp_path / "missing.toml"),  # every worker fails at start-up
        TRACE_LOG_FORMAT="text",
    )
    command = [sys.executable, "-m", "svc", "serve", "--port", str(free_port()), "--workers", "2"]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "could not start; stopping" in done.stderr
    assert "cannot read domain file" in done.stderr


def test_sibling_workers_write_exports_under_their_own_names(tmp_path: Path) -> None:
    """Export leases name their writer: a worker's slot keeps siblings apart, and a
    replaced worker (same slot) reclaims what its predecessor left."""
    names = {worker_identity(tmp_path, slot) for slot in (None, 0, 1)}
    assert len(names) == 3
    assert worker_identity(tmp_path, 1) == worker_identity(tmp_path, 1)
