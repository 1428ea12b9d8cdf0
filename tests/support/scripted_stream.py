"""A scripted stream of two domains (a late total, a heartbeat), the server side of the
client's contract tests: the lines it sends from any `since`, and the records they carry."""

from __future__ import annotations

import json
from typing import Any

BASE = "http://trace.test"
JOB = "j1"
STREAM = f"{BASE}/api/trace/job/{JOB}/stream"
COLUMNS = ["CONTAINERID", "N"]
PLAN = {"history": 4, "materials": 3}  # batches per domain, two records each


def _records(domain: str, batch: int, arrays: bool) -> list[Any]:
    rows = [[f"{domain[0]}{batch}", i] for i in range(2)]
    return rows if arrays else [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def expected_records() -> list[tuple[str, dict[str, Any]]]:
    return [(d, r) for d, n in PLAN.items() for b in range(1, n + 1) for r in _records(d, b, False)]


def script(since: str | None, arrays: bool = False) -> list[dict[str, Any]]:
    """The server's lines from `since` (`history:2` = after history's batch 2)."""
    names = list(PLAN)
    start = (names[0], 0) if since is None else since.split(":")
    domain, done = start[0], int(start[1])
    lines: list[dict[str, Any]] = [
        {"type": "meta", "job_id": JOB, "domains": names, "cid_count": 2, "resumed": bool(since)}
    ]
    for name in names[names.index(domain) :]:
        first = done + 1 if name == domain else 1
        late = since is None and name == "history"  # counted only after the first batch
        start_line = {"type": "domain_start", "domain": name, "columns": COLUMNS}
        lines.append({**start_line, "total": None if late else 2 * PLAN[name],
                      "total_batches": None if late else PLAN[name]})  # fmt: skip
        for b in range(first, PLAN[name] + 1):
            data = _records(name, b, arrays)
            lines.append({"type": "records", "domain": name, "batch": b, "data": data,
                          "since": f"{name}:{b}"})  # fmt: skip
            if late and b == 1:
                lines.append({**start_line, "total": 8, "total_batches": 4})
                lines.append({"type": "heartbeat"})
        lines.append({"type": "domain_end", "domain": name, "total_records": 2 * PLAN[name]})
    lines.append({"type": "aggregation", "data": {"domains": {}}})
    lines.append({"type": "complete", "elapsed_seconds": 0.1, "total_records": 14})
    return lines


def body(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)
