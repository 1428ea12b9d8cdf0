"""Settings reach the sources they configure; reading them writes nothing, starting makes
the generated token secret once."""

from __future__ import annotations

import asyncio
import stat
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import oracledb
import pytest

from svc.cli import _parser, _settings
from svc.config import SETTINGS, Settings
from svc.config.declare import declared, setting
from svc.config.parsers import positive
from svc.core.tokens import Cursor
from svc.run.server import build_service
from svc.run.workers import _prepare_shared_state
from svc.sources import oracle as ora
from tests.support.oracle_fakes import oracle_source


def test_options_and_settings_reach_the_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        oracle_source("oracle://a:b@h/s", pool_min=4, pool_max=2)
    with pytest.raises(ValueError):
        oracle_source("oracle://a:b@h/s", snapshot="timestamp")
    settings = Settings.from_env(
        {
            "TRACE_DB_URL": "oracle://trace:pw@db:1521/FREEPDB1",
            "TRACE_DATA_DIR": str(tmp_path),
            "TRACE_SECRET": "s" * 32,
            "TRACE_ORACLE_POOL_MIN": "3",
            "TRACE_ORACLE_POOL_MAX": "6",
            "TRACE_ORACLE_POOL_INCREMENT": "2",
            "TRACE_ORACLE_POOL_WAIT_MS": "750",
            "TRACE_ORACLE_CALL_TIMEOUT_MS": "9000",
            "TRACE_ORACLE_SNAPSHOT": "scn",
        }
    )
    with pytest.raises(ValueError):
        Settings.from_env({"TRACE_ORACLE_SNAPSHOT": "flashback"})
    assert Settings.from_env({"TRACE_ORACLE_SNAPSHOT": "off"}).oracle_snapshot is None

    async def run() -> dict[str, Any]:
        service = await build_service(settings)
        try:
            source = service.source
            assert isinstance(source, ora.OracleSource) and source.snapshot == "scn"
            return source.pool_params()
        finally:
            await service.close()  # never connected: nothing to close but the store

    params = asyncio.run(run())
    assert {k: params[k] for k in ("min", "max", "increment", "wait_timeout")} == {
        "min": 3,
        "max": 6,
        "increment": 2,
        "wait_timeout": 750,
    }
    assert params["getmode"] == oracledb.POOL_GETMODE_TIMEDWAIT
    assert params["service_name"] == "FREEPDB1" and params["password"] == "pw"


def test_reading_settings_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings.from_env({"TRACE_DATA_DIR": str(data)})
    assert settings.secrets == [] and settings.secret_path == data / "secret"
    assert settings.exports_path == data / "exports" and settings.resolved_db_url()
    flags = _settings(_parser().parse_args(["serve", "--data-dir", str(data), "--workers", "2"]))
    assert flags.data_dir == data and flags.workers == 2
    assert not data.exists()  # no secret, no directory: that is start-up's work


def test_starting_makes_the_secret_once_and_restarts_reuse_it(
    demo_db: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    settings = Settings(db_url=f"sqlite:///{demo_db}", data_dir=data)
    cursor = Cursor("job", "history", 1, "CID-1", 7)

    async def start_sign_stop() -> str:
        service = await build_service(settings)
        try:
            return service.tokens.sign(cursor)
        finally:
            await service.close()

    token = asyncio.run(start_sign_stop())
    secret = settings.secret_path
    made = secret.stat()
    assert stat.S_IMODE(made.st_mode) == 0o600 and len(secret.read_text()) >= 32
    assert asyncio.run(start_sign_stop()) == token  # a restart signs with the same secret
    again = secret.stat()
    assert (again.st_ino, again.st_mtime_ns) == (made.st_ino, made.st_mtime_ns)  # not rewritten
    # Several workers: the parent makes it once and hands it to all of them.
    assert _prepare_shared_state(settings).secrets == [secret.read_text().strip()]


def test_redis_without_a_shared_secret_refuses_to_start(tmp_path: Path) -> None:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", data_dir=tmp_path / "data")
    with pytest.raises(ValueError, match="TRACE_SECRET is required when TRACE_REDIS_URL"):
        asyncio.run(build_service(settings))
    with pytest.raises(ValueError, match="TRACE_SECRET is required when TRACE_REDIS_URL"):
        _prepare_shared_state(settings)
    assert not (tmp_path / "data").exists()


def test_each_field_is_one_declared_setting() -> None:
    assert [s.attr for s in SETTINGS] == [f.name for f in fields(Settings)]
    assert len({s.env for s in SETTINGS}) == len({s.flag for s in SETTINGS}) == len(SETTINGS)
    assert Settings().api_keys == [] and Settings().api_keys is not Settings().api_keys

    @dataclass(frozen=True)
    class Declared:
        size: int = setting("X_SIZE", positive, 3, "size", flag="sz")

    (size,) = declared(Declared)
    assert (size.env, size.flag, size.default, size.doc) == (
        "X_SIZE",
        "--sz",
        3,
        "size (default 3)",
    )
    with pytest.raises(ValueError, match="X_SIZE: must be a positive integer"):
        size.read("0", "X_SIZE")

    @dataclass(frozen=True)
    class Undeclared:
        size: int = 3

    with pytest.raises(TypeError, match="size: declare it with setting"):
        declared(Undeclared)
