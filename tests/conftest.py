from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from svc.sources.demo import build_demo_database
from tests.support import all_cids
from tests.support.servers import ServerProcess, start_server

pytest_plugins = [
    "tests.support.redis_server",  # redis_url, private_redis, redis_prefix
    "tests.support.redis_cluster",  # redis_cluster: 3 masters
]

DEMO_CIDS = 1500


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real SQLite demo database of 1500 CIDs (~15,000 history, ~7,500 material rows)."""
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    build_demo_database(path, cids=DEMO_CIDS, seed=7)
    return path


@pytest.fixture(scope="session")
def small_demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 500-CID demo database (~5,000 history and ~2,500 material rows), built once."""
    path = tmp_path_factory.mktemp("small-demo") / "demo.sqlite3"
    build_demo_database(path, cids=500, seed=42)
    return path


@pytest.fixture(scope="session")
def medium_demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8,000 CIDs (~80,000 history, ~40,000 material rows): a stream of ~25 MB that lasts
    several heartbeat intervals and outruns no socket buffer."""
    path = tmp_path_factory.mktemp("medium-demo") / "demo.sqlite3"
    build_demo_database(path, cids=8000, seed=3)
    return path


@pytest.fixture(scope="session")
def demo_cids(demo_db: Path) -> list[str]:
    return all_cids(demo_db)


@pytest.fixture(scope="module")
def server_db(demo_db: Path) -> Path | None:
    """The SQLite file the `server` fixture serves (tests/oracle: none, the live Oracle)."""
    return demo_db


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """The `server` fixture's environment. A module (or conftest) that needs another server
    overrides this fixture, asking for it by name to extend it."""
    return {
        "TRACE_STREAM_BATCH_SIZE": "700",
        # shared by many tests' jobs; the job quotas are tested in test_limits.py
        "TRACE_JOB_CREATE_RATE": "0",
        "TRACE_MAX_JOBS_PER_KEY": "0",
    }


@pytest.fixture(scope="module")
def server(
    server_db: Path | None, server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The service on loopback, one per module: over the demo database, 700 records a line,
    unless the module overrides server_db or server_env."""
    srv = start_server(tmp_path_factory.mktemp("data"), server_db, server_env)
    yield srv
    srv.stop()
