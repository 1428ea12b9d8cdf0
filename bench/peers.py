"""The peer a user would pick instead: Datasette's CSV stream of the same SQLite file.

Datasette runs from its own venv (`bench/out/datasette-venv`, made on first use) so that its
pins never meet the service's. It streams each table as CSV sorted by CONTAINERID
(`_stream=on&_size=max&_sort=CONTAINERID`), which it pages by keyset on (CONTAINERID, rowid):
the same records, in the same order, as the service's job of every demo CID.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "bench/out/datasette-venv"
DATASETTE = "datasette>=0.65,<1"
TABLES = ("MES_CONTAINER_HISTORY", "MES_CONTAINER_MATERIALS")


def datasette_bin() -> Path:
    exe = VENV / "bin/datasette"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin/pip"), "install", "-q", DATASETTE], check=True)
    return exe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def datasette_csv(db: Path) -> dict[str, float]:
    """Every row of both demo tables as Datasette's streamed CSV: rows, bytes, seconds."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(datasette_bin()),
            "serve",
            "-i",
            str(db),
            "-p",
            str(port),
            "--setting",
            "max_csv_mb",
            "0",  # no size cap on a streamed CSV
            "--setting",
            "sql_time_limit_ms",
            "60000",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/{db.stem}"
    try:
        for _ in range(200):
            try:
                httpx.get(base + ".json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        rows = size = 0
        started = time.perf_counter()
        with httpx.Client(timeout=600) as client:
            for table in TABLES:
                url = f"{base}/{table}.csv?_stream=on&_size=max&_sort=CONTAINERID"
                with client.stream("GET", url) as r:
                    r.raise_for_status()
                    for chunk in r.iter_raw(1 << 20):
                        size += len(chunk)
                        rows += chunk.count(b"\n")
                rows -= 1  # the header row
        return {"records": rows, "bytes": size, "seconds": time.perf_counter() - started}
    finally:
        proc.terminate()
        proc.wait(10)
