"""Settings reach the sources they configure."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import oracledb
import pytest

from svc.config import Settings
from svc.run.server import build_service
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
