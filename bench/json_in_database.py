"""Should SQLite build the JSON? Fetch-and-encode paths for one domain, in one run.

With the system's SQLite (the sqlite3 module), over the same history pages of the demo job
(IN lists of 1000 CIDs, keyset pages of 5000), one thread:

- `fetch_only`: tuples fetched, nothing else (the floor of the rows path);
- `tuples`: the rows path (fetch, shape as msgspec Structs, encode the line);
- `json_object`: SQLite's json_object per row, joined into the line by Python;
- `json_object_exact`: the same with REAL columns guarded so that they round-trip (SQLite
  3.40 writes REALs with 15 significant digits: 0.30000000000000004 comes back as 0.3);

and which values the system SQLite's JSON changes, and APSW's bundled SQLite's (none): why
the service builds JSON in the database with APSW's engine only (`svc.engine.json_batches`, whose
whole stream `bench/stream_bench.py` measures: ranges of CIDs, two threads).

Then, with APSW, the service's own page query (`svc.core.sql.pages.json_page_sql`, ranges of
600 CIDs) and its parts, best of 9 interleaved rounds in CPU time: the same rows read without JSON
(one value; every value taken out of the row); arrays with the guards per value (an
infinity to null, a BLOB or -0.0 to an error) none (wrong for those values), `typeof` (a
function call and its text compared), comparisons of `+col` testing for a BLOB first (four
tests before a text), and the service's (two); objects without and with guards, and with
the keys concatenated instead of by `json_object`. Each on
the demo's tables (time order, as a plant writes them) and on a copy of them in CID order
(built beside the demo file).

    .venv/bin/python bench/json_in_database.py [--db bench/out/demo114.sqlite3]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path

import apsw
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from svc import protocol as p  # noqa: E402
from svc.core.domains import load_domains  # noqa: E402
from svc.core.sql import pages  # noqa: E402
from svc.core.sql.dialects import SQLITE  # noqa: E402
from svc.core.sql.pages import page_sql  # noqa: E402
from svc.core.sql.plan import Key, Plan  # noqa: E402

DOMAIN = load_domains()["history"]
REAL_COLUMNS = {"QTY", "QTY2"}  # declared REAL in the demo schema
PAGE = 5000
CHUNKS = 40  # the first 40 chunks (~400k records): enough for a stable rate


def _exact_real(col: str) -> str:
    text15 = f"printf('%!.15g', {col})"
    return (
        f"CASE typeof({col}) WHEN 'real' THEN json(CASE WHEN CAST({text15} AS REAL) = {col}"
        f" THEN {text15} ELSE printf('%!.17g', {col}) END) ELSE {col} END"
    )


def json_page_sql(plan: Plan, exact: bool) -> str:
    pairs = ", ".join(
        f"'{c}', {_exact_real(c) if exact and c in REAL_COLUMNS else c}" for c in DOMAIN.columns
    )
    slots = ", ".join(f":c{i}" for i in range(plan.slots))
    return (
        f"SELECT json_object({pairs}), CONTAINERID, rowid FROM {DOMAIN.table}"
        f" WHERE CONTAINERID IN ({slots})"
        " AND (:after_rid IS NULL OR CONTAINERID > :after_cid OR rowid > :after_rid)"
        " ORDER BY CONTAINERID, rowid LIMIT :limit"
    )


def run(conn: sqlite3.Connection, plan: Plan, mode: str) -> float:
    tuple_sql = page_sql(DOMAIN, SQLITE, slots=plan.slots)
    sql = {
        "json_object": json_page_sql(plan, exact=False),
        "json_object_exact": json_page_sql(plan, exact=True),
    }.get(mode, tuple_sql)
    key: Callable[[tuple[object, ...]], Key] = (
        (lambda r: Key(str(r[1]), int(str(r[2]))))
        if mode.startswith("json")
        else (lambda r: Key(str(r[0]), int(str(r[-1]))))
    )
    records = 0
    started = time.perf_counter()
    for chunk in range(min(CHUNKS, plan.chunk_count)):
        after = None
        while True:
            rows = conn.execute(sql, plan.page_binds(chunk, after, PAGE)).fetchall()
            if not rows:
                break
            if mode == "tuples":
                data = p.shape_records(rows, DOMAIN.columns, False)
                p.encode_line(p.Records("history", 1, data, "t" * 120))
            elif mode.startswith("json"):
                raw = msgspec.Raw(("[" + ",".join(map(itemgetter(0), rows)) + "]").encode())
                p.encode_line(p.Records("history", 1, raw, "t" * 120))
            records += len(rows)
            after = key(rows[-1])
            if len(rows) < PAGE:
                break
    return records / (time.perf_counter() - started)


GUARDS: dict[str, Callable[[str], str]] = {
    "none": lambda c: c,
    "typeof": lambda c: (
        f"CASE typeof({c}) WHEN 'real' THEN CASE WHEN abs({c}) < 9e999 THEN {c} END"
        f" WHEN 'blob' THEN json('{{' || hex({c})) ELSE {c} END"
    ),
    "blob first": lambda c: (  # the service's until 2026-12-06: four tests before a text
        f"CASE WHEN +{c} >= x'' THEN json('{{' || hex({c}))"
        f" WHEN +{c} IN (9e999, -9e999) THEN NULL"
        f" WHEN +{c} = 0 AND atan2(+{c}, -1) < 0 THEN json('{{-0') ELSE {c} END"
    ),
    "comparisons": pages.json_value_guard,
}


def cid_ordered_copy(db: Path) -> Path:
    """The same rows stored in CID order (the demo's tables are in time order, as a plant
    writes them): what reading a row costs once it is no longer a random table access."""
    copy = db.with_name(f"{db.stem}-by-cid{db.suffix}")
    if copy.exists():
        return copy
    conn = sqlite3.connect(db)
    conn.execute("ATTACH ? AS copy", (str(copy),))
    objects = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"
        " AND name NOT LIKE 'sqlite_%' ORDER BY type = 'index'"
    ).fetchall()
    for kind, name, sql in objects:
        conn.execute(
            sql.replace(f"CREATE {kind.upper()} {name}", f"CREATE {kind.upper()} copy.{name}")
        )
        if kind == "table":
            order = " ORDER BY CONTAINERID, rowid" if name.startswith("MES_") else ""
            conn.execute(f"INSERT INTO copy.{name} SELECT * FROM main.{name}{order}")
    conn.commit()
    conn.execute("ANALYZE copy")
    conn.close()
    return copy


def page_queries(plan: Plan) -> dict[str, str]:
    """The service's page query (`svc.core.sql.pages.json_page_sql`) and its parts: the
    same rows read with no JSON (one value, then every value taken out of the row), arrays
    under each guard, objects without and with the guards."""
    arrays = pages.json_page_sql(DOMAIN, SQLITE, arrays=True, slots=plan.slots)
    objects = pages.json_page_sql(DOMAIN, SQLITE, arrays=False, slots=plan.slots)

    def guarded(sql: str, guard: Callable[[str], str]) -> str:
        for col in DOMAIN.select:
            sql = sql.replace(pages.json_value_guard(col), guard(col))
        return sql

    bare = guarded(arrays, GUARDS["none"])
    rows = bare[bare.index(" FROM (SELECT ") :]
    last = f"max(TRACE_V{len(DOMAIN.select) - 1})"
    every = " || ".join(f"max(TRACE_V{i})" for i in range(len(DOMAIN.select)))
    sqls = {
        "rows: one value, no JSON": f"SELECT {last}, 0, count(*){rows}",
        "rows: every value, no JSON": f"SELECT {every}, 0, count(*){rows}",
    }
    sqls |= {f"arrays, guards {name}": guarded(arrays, g) for name, g in GUARDS.items()}
    sqls["objects, guards none"] = guarded(objects, GUARDS["none"])
    sqls["objects, guards comparisons"] = objects
    # The same text with the keys written once in the SQL, not escaped at every row.
    record = objects[objects.index("json_object(") : objects.index(", ','), '')")]
    concatenated = " || ".join(
        ("'{" if i == 0 else "',") + f'"{name}":\' || json_quote(TRACE_V{i})'
        for i, name in enumerate(DOMAIN.columns)
    )
    sqls["objects, concatenated"] = objects.replace(record, f"{concatenated} || '}}'")
    assert sqls["arrays, guards comparisons"] == arrays != sqls["arrays, guards none"]
    return sqls


def _page_connection(db: Path) -> apsw.Connection:
    """One thread's connection, with the service's 8 MB page cache."""
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    conn.execute("PRAGMA cache_size=-8192").fetchall()
    return conn


def _read_ranges(conn: apsw.Connection, sql: str, plan: Plan, ranges: int, width: int = 600) -> int:
    """The rows of the first `ranges` ranges of `width` CIDs, read by one page query each."""
    rows = 0
    for start in range(0, ranges * width, width):
        binds = plan.range_binds(start, start + width, None, 10**6)
        rows += sum(row[2] for row in conn.execute(sql, binds))
    return rows


def page_parts(db: Path, plan: Plan, rounds: int = 9) -> dict[str, float]:
    """Rows/s of each of `page_queries` over the same 20 ranges of CIDs, one thread, best
    of `rounds` interleaved. Timed in the thread's CPU time: this VM's wall clock drifts
    with its neighbours more than the CPU time does."""
    conn = _page_connection(db)
    sqls = page_queries(plan)
    best = dict.fromkeys(sqls, 0.0)
    for _ in range(rounds):
        for name, sql in sqls.items():
            started = time.thread_time()
            rows = _read_ranges(conn, sql, plan, 20)
            best[name] = max(best[name], rows / (time.thread_time() - started))
    return best


def paired(db: Path, plan: Plan, before: str, after: str, rounds: int = 21) -> float:
    """Median over `rounds` of before's CPU time over after's, the two run back to back in
    each round (alternating which goes first) over the same 8 ranges of 600 CIDs: a small
    difference that the best-of rounds of `page_parts` lose in this VM's drift."""
    conn = _page_connection(db)
    sqls = page_queries(plan)
    ratios = []
    for n in range(rounds):
        spent = {}
        for name in (before, after) if n % 2 else (after, before):
            started = time.thread_time()
            _read_ranges(conn, sqls[name], plan, 8)
            spent[name] = time.thread_time() - started
        ratios.append(spent[before] / spent[after])
    return statistics.median(ratios)


def changed_values(conn: sqlite3.Connection | apsw.Connection) -> list[str]:
    """REAL values whose JSON from SQLite decodes to another number."""
    probes = [0.1 + 0.2, 1 / 3, 5e-324, 1.7976931348623157e308, 2.5, -0.0]
    out = []
    for v in probes:
        text = conn.execute("SELECT json_array(?)", (v,)).fetchall()[0][0]
        back = json.loads(text)[0]
        if back != v or str(back) != str(v):
            out.append(f"{v!r} -> {text}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, default=ROOT / "bench/out/demo114.sqlite3")
    args = ap.parse_args()
    conn = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    cids = sorted(r[0] for r in conn.execute("SELECT CONTAINERID FROM TRACE_DEMO_CONTAINERS"))
    plan = Plan(cids)
    modes = ["fetch_only", "tuples", "json_object", "json_object_exact"]
    rates: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(3):  # interleaved rounds, medians
        for mode in modes:
            rates[mode].append(run(conn, plan, mode))
    base = statistics.median(rates["tuples"])
    print(f"SQLite {sqlite3.sqlite_version}")
    for mode in modes:
        r = statistics.median(rates[mode])
        print(f"{mode:<18} {r:>10,.0f} records/s  {r / base:.2f}x tuples")
    print("REALs SQLite's JSON changes:", "; ".join(changed_values(conn)) or "none")
    engine = apsw.Connection(":memory:")
    print(
        f"REALs APSW's SQLite {apsw.sqlite_lib_version()} changes:",
        "; ".join(changed_values(engine)) or "none",
    )
    layouts = {"time order (the demo)": args.db, "CID order (a copy)": cid_ordered_copy(args.db)}
    parts = {layout: page_parts(db, plan) for layout, db in layouts.items()}
    print(
        f"{'the page query, ranges of 600 CIDs, us a row':<32}"
        + "".join(f"{k:>24}" for k in layouts)
    )
    for name in next(iter(parts.values())):
        print(f"{name:<32}" + "".join(f"{1e6 / rate[name]:>24.2f}" for rate in parts.values()))
    pairs = {
        "objects / arrays (the service's)": (
            "objects, guards comparisons",
            "arrays, guards comparisons",
        ),
        "arrays: guards / none": ("arrays, guards comparisons", "arrays, guards none"),
        "arrays: guards blob first / the service's": (
            "arrays, guards blob first",
            "arrays, guards comparisons",
        ),
        "objects: concatenated / json_object (the service's)": (
            "objects, concatenated",
            "objects, guards comparisons",
        ),
    }
    print("time over time, paired (median of 21 rounds)" + "".join(f"{k:>24}" for k in layouts))
    for label, (before, after) in pairs.items():
        ratios = (paired(db, plan, before, after) for db in layouts.values())
        print(f"{label:<52}" + "".join(f"{r:>24.3f}" for r in ratios))


if __name__ == "__main__":
    main()
