"""The demo database: shape, ordering, and the natural key the browser tests rely on."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path


def test_row_ids_are_in_time_order_not_cid_order(demo_db: Path) -> None:
    with sqlite3.connect(demo_db) as conn:
        for table in ("MES_CONTAINER_HISTORY", "MES_CONTAINER_MATERIALS"):
            by_rowid = [
                r[0] for r in conn.execute(f"SELECT CONTAINERID FROM {table} ORDER BY rowid")
            ]
            assert by_rowid != sorted(by_rowid)
            times = [r[0] for r in conn.execute(f"SELECT TXNDATE FROM {table} ORDER BY rowid")]
            assert times == sorted(times)


def test_about_ten_history_and_five_material_rows_per_cid(demo_db: Path) -> None:
    with sqlite3.connect(demo_db) as conn:
        cids = conn.execute("SELECT COUNT(*) FROM TRACE_DEMO_CONTAINERS").fetchone()[0]
        history = conn.execute("SELECT COUNT(*) FROM MES_CONTAINER_HISTORY").fetchone()[0]
        materials = conn.execute("SELECT COUNT(*) FROM MES_CONTAINER_MATERIALS").fetchone()[0]
    assert 9 <= history / cids <= 11 and 4 <= materials / cids <= 6


def test_cid_and_time_are_a_unique_key_of_each_domain(demo_db: Path) -> None:
    """Times strictly increase within a container, so (CONTAINERID, TXNDATE) names a row."""
    with sqlite3.connect(demo_db) as conn:
        for table in ("MES_CONTAINER_HISTORY", "MES_CONTAINER_MATERIALS"):
            dupes = conn.execute(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM {table}"
                " GROUP BY CONTAINERID, TXNDATE HAVING COUNT(*) > 1)"
            ).fetchone()[0]
            assert dupes == 0


def test_cids_are_16_hex_digits(demo_db: Path) -> None:
    with sqlite3.connect(demo_db) as conn:
        cids = [r[0] for r in conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS")]
    assert all(re.fullmatch("[0-9a-f]{16}", c) for c in cids)
