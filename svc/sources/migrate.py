"""Schema migrations: apply `migrations/<dialect>/NNN_name.sql` once each, in order.

Applied migrations are recorded in TRACE_SCHEMA_MIGRATIONS, so `migrate` is idempotent.
Oracle scripts are SQL*Plus-style (`split_statements`); the driver is imported only when
an Oracle database is migrated, so this module imports nothing of the service's sources.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

from svc import resource_dir

MIGRATIONS_DIR = resource_dir("migrations")


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


_PLSQL = re.compile(
    r"\s*(DECLARE|BEGIN|CREATE\s+(OR\s+REPLACE\s+)?((NON)?EDITIONABLE\s+)?"
    r"(PROCEDURE|FUNCTION|PACKAGE|TRIGGER|TYPE|LIBRARY))\b",
    re.IGNORECASE,
)
_Q_CLOSE = {"[": "]", "{": "}", "(": ")", "<": ">"}


def _quoted_end(script: str, start: int) -> int:
    """The index just past the quoted literal or identifier that opens at `start`."""
    if script[start] in "qQ":  # q'[...]' alternative quoting
        close = _Q_CLOSE.get(script[start + 2], script[start + 2]) + "'"
        end = script.find(close, start + 3)
        if end < 0:
            raise ValueError("unterminated q-quoted string in migration")
        return end + 2
    quote, i = script[start], start + 1
    while True:
        i = script.find(quote, i)
        if i < 0:
            raise ValueError("unterminated quote in migration")
        if script.startswith(quote * 2, i):  # '' or "" inside: an escaped quote
            i += 2
            continue
        return i + 1


def split_statements(script: str) -> list[str]:
    """The statements of a SQL*Plus-style script, comments removed.

    A SQL statement ends at ``;`` (dropped: the driver wants none). A PL/SQL unit (BEGIN,
    DECLARE, CREATE PROCEDURE...) keeps its semicolons and ends at a line holding only
    ``/``. Quotes (including q'[...]') and comments are honoured when looking for either.
    """
    statements: list[str] = []
    buf: list[str] = []
    i, n, line_start = 0, len(script), True

    def flush() -> None:
        text = "".join(buf).strip()
        buf.clear()
        if text:
            statements.append(text)

    while i < n:
        if line_start:
            eol = script.find("\n", i)
            eol = n if eol < 0 else eol
            if script[i:eol].strip() == "/":
                flush()
                i = eol + 1
                continue
        line_start = False
        ch, two = script[i], script[i : i + 2]
        if two == "--":
            eol = script.find("\n", i)
            i = n if eol < 0 else eol  # the newline itself is kept
        elif two == "/*":
            end = script.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated comment in migration")
            buf.append(" ")
            i = end + 2
        elif ch in "'\"" or (
            ch in "qQ"
            and script[i + 1 : i + 2] == "'"
            and i + 2 < n
            and not (i > 0 and (script[i - 1].isalnum() or script[i - 1] in "_$#"))
        ):
            end = _quoted_end(script, i)
            buf.append(script[i:end])
            i = end
        elif ch == ";" and not _PLSQL.match("".join(buf)):
            flush()
            i += 1
        else:
            buf.append(ch)
            line_start = ch == "\n"
            i += 1
    flush()
    return statements


_MIGRATIONS_TABLE = (
    "CREATE TABLE TRACE_SCHEMA_MIGRATIONS ("
    "NAME VARCHAR2(200) NOT NULL PRIMARY KEY, APPLIED_AT NUMBER NOT NULL)"
)


def migrate_oracle(db_url: str) -> list[str]:
    """Apply pending ``migrations/oracle`` scripts in order; return their names.

    Each applied script is recorded in TRACE_SCHEMA_MIGRATIONS. Oracle commits DDL as it
    runs, so a script that fails midway is not rolled back: fix it and rerun from there.
    """
    import oracledb

    from svc.sources.oracle import connect
    from svc.sources.oracle_errors import driver_codes

    applied: list[str] = []
    with connect(db_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM USER_TABLES WHERE TABLE_NAME = 'TRACE_SCHEMA_MIGRATIONS'")
        row = cur.fetchone()
        if row is not None and row[0] == 0:
            try:
                cur.execute(_MIGRATIONS_TABLE)
            except oracledb.DatabaseError as exc:
                if 955 not in driver_codes(exc)[1]:  # ORA-00955: another migrate made it
                    raise
        cur.execute("SELECT NAME FROM TRACE_SCHEMA_MIGRATIONS")
        done = {r[0] for r in cur.fetchall()}
        for path in migration_files("oracle"):
            if path.name in done:
                continue
            for statement in split_statements(path.read_text("utf-8")):
                try:
                    cur.execute(statement)
                except oracledb.Error as exc:
                    raise RuntimeError(f"migration {path.name} failed: {exc}") from exc
            cur.execute(
                "INSERT INTO TRACE_SCHEMA_MIGRATIONS (NAME, APPLIED_AT) VALUES (:name, :at)",
                {"name": path.name, "at": time.time()},
            )
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
        return migrate_oracle(db_url)
    raise ValueError("TRACE_DB_URL must start with sqlite:/// or oracle://")
