"""Schema migrations: apply `migrations/<dialect>/NNN_name.sql` once each, in order.

Applied migrations are recorded in TRACE_SCHEMA_MIGRATIONS, so `migrate` is idempotent.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def migration_files(dialect: str) -> list[Path]:
    return sorted((MIGRATIONS_DIR / dialect).glob("[0-9][0-9][0-9]_*.sql"))


def migrate_sqlite(conn: sqlite3.Connection, upto: str | None = None) -> list[str]:
    """Apply pending SQLite migrations (up to and including `upto`); return their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS TRACE_SCHEMA_MIGRATIONS "
        "(NAME TEXT PRIMARY KEY, APPLIED_AT REAL NOT NULL)"
    )
    done = {r[0] for r in conn.execute("SELECT NAME FROM TRACE_SCHEMA_MIGRATIONS")}
    applied = []
    for path in migration_files("sqlite"):
        if upto is not None and path.name > upto:
            break
        if path.name in done:
            continue
        conn.executescript(path.read_text("utf-8"))
        conn.execute("INSERT INTO TRACE_SCHEMA_MIGRATIONS VALUES (?, ?)", (path.name, time.time()))
        conn.commit()
        applied.append(path.name)
    return applied


def migrate(db_url: str) -> list[str]:
    if db_url.startswith("sqlite:///"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        try:
            return migrate_sqlite(conn)
        finally:
            conn.close()
    if db_url.startswith("oracle://"):
        from svc.sources.oracle import migrate_oracle

        return migrate_oracle(db_url)
    raise ValueError("TRACE_DB_URL must start with sqlite:/// or oracle://")
