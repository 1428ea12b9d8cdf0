"""Front-end benchmark: the whole 114,892-CID demo job (~1.7M records) through the page, in
Debian's headless Chromium driven by Playwright.

Starts the service on the demo database (as its own database, so that "random demo CIDs" works),
opens `/`, picks all the demo CIDs with the page's own control, presses Start, scrolls the
visible table now and then while data arrives (as a user would), and waits for `complete`.
Reports:

- the longest main-thread long task (PerformanceObserver 'longtask', installed before the page's
  scripts run) during the job, and over the whole visit; target: none over 200 ms;
- the longest gap between animation frames during the job (what a user sees as a stutter);
- Start → first rows visible (target <= 1 s), split into job creation, first stream line and
  first records;
- total time, records/s;
- the page's JS heap at the end, after a forced GC (CDP HeapProfiler.collectGarbage +
  Runtime.getHeapUsage), and before it (performance.memory).

    .venv/bin/python bench/frontend_bench.py [--cids 114892] [--db bench/out/demo114.sqlite3]

Writes bench/out/frontend.json and a screenshot, bench/out/frontend.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from playwright.sync_api import Page, sync_playwright  # noqa: E402
from stream_bench import demo_db  # noqa: E402

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.support.servers import start_server  # noqa: E402

OUT = ROOT / "bench/out"

# Before any of the page's scripts: long tasks, and gaps between animation frames once the
# job runs (window.__bench.frames = true).
INIT_SCRIPT = """
window.__bench = { longtasks: [], frames: false, gaps: [], last: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    window.__bench.longtasks.push({ start: e.startTime, duration: e.duration });
  }
}).observe({ type: 'longtask', buffered: true });
const tick = (t) => {
  const b = window.__bench;
  if (b.frames && b.last) b.gaps.push(t - b.last);
  b.last = t;
  requestAnimationFrame(tick);
};
requestAnimationFrame(tick);
"""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def drive(page: Page, base: str, cids: int, scroll: bool) -> dict[str, Any]:
    page.goto(base + "/")
    page.get_by_test_id("domain-history").wait_for()
    page.wait_for_function("() => !document.querySelector('[data-testid=random-button]').disabled")
    page.get_by_test_id("random-n").fill(str(cids))
    page.get_by_test_id("random-button").click()
    page.get_by_test_id("message").filter(has_text="Picked").wait_for(timeout=60_000)
    page.wait_for_function(
        f"() => /^{cids:,}$/.test(document.getElementById('cid-count').textContent)"
    )

    page.evaluate("window.__bench.frames = true")
    wall = time.perf_counter()
    page.get_by_test_id("start-button").click()
    page.wait_for_function("() => window.traceApp.metrics.firstRowsAt !== null", timeout=60_000)
    first_rows_wall = time.perf_counter() - wall

    grid = page.get_by_test_id("grid-history")
    box = grid.bounding_box()
    scrolls = 0
    drift: dict[str, int] | None = None
    first_row = "g => Number(g.querySelector('.vt-row[data-row]:not([hidden])')?.dataset.row)"
    while page.evaluate("window.traceApp.state") not in ("done", "failed", "aborted"):
        if scroll and drift is None and page.evaluate("traceApp.rowCount('history')") > 450_000:
            # Past 8M px of scroll range the table maps scrollTop proportionally: rows
            # arriving must not move the rows a user is looking at.
            grid.evaluate("g => { g.scrollTop = g.scrollHeight / 3; }")
            time.sleep(0.3)
            a, n0 = grid.evaluate(first_row), page.evaluate("traceApp.rowCount('history')")
            time.sleep(1.5)
            b, n1 = grid.evaluate(first_row), page.evaluate("traceApp.rowCount('history')")
            drift = {"first_row_before": a, "first_row_after": b, "rows_arrived": n1 - n0}
        elif scroll and box:
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.wheel(0, 4000 if scrolls % 4 != 3 else -9000)
            scrolls += 1
        time.sleep(1.0)
    total_wall = time.perf_counter() - wall
    page.evaluate("window.__bench.frames = false")

    data: dict[str, Any] = page.evaluate(
        """() => ({
            metrics: window.traceApp.metrics,
            state: window.traceApp.state,
            longtasks: window.__bench.longtasks,
            gaps: window.__bench.gaps,
            rows: Object.fromEntries(window.traceApp.job.domains.map(
                (d) => [d, window.traceApp.rowCount(d)])),
            heapBeforeGc: performance.memory ? performance.memory.usedJSHeapSize : null,
            connections: document.querySelector('[data-testid=connections]').textContent,
        })"""
    )
    data.update(
        first_rows_wall=first_rows_wall, total_wall=total_wall, scrolls=scrolls, drift=drift
    )
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cids", type=int, default=114_892)
    ap.add_argument("--db", type=Path, default=OUT / "demo114.sqlite3")
    ap.add_argument("--out", type=Path, default=OUT / "frontend.json")
    ap.add_argument("--screenshot", type=Path, default=OUT / "frontend.png")
    ap.add_argument("--no-scroll", action="store_true", help="do not scroll while streaming")
    args = ap.parse_args()

    db = demo_db(args.db, args.cids).resolve()
    data_dir = OUT / "data-frontend"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    (data_dir / "demo.sqlite3").symlink_to(db)  # the server's own demo database
    server = start_server(data_dir, None, {})
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, "--enable-precise-memory-info"]
            )
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            page = context.new_page()
            page.add_init_script(INIT_SCRIPT)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            run = drive(page, server.url, args.cids, not args.no_scroll)

            cdp = context.new_cdp_session(page)
            cdp.send("HeapProfiler.enable")
            cdp.send("HeapProfiler.collectGarbage")
            heap = cdp.send("Runtime.getHeapUsage")
            page.evaluate(
                """() => { const g = document.querySelector('[data-testid=grid-history]');
                           g.scrollTop = g.scrollHeight / 2; }"""
            )
            page.wait_for_timeout(300)
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.screenshot, full_page=True)
            browser.close()
    finally:
        server.stop()
    if errors:
        raise SystemExit(f"errors in the page: {errors}")

    m = run["metrics"]
    records = sum(run["rows"].values())
    during = [t for t in run["longtasks"] if m["clickedAt"] <= t["start"] <= (m["doneAt"] or 1e18)]
    gaps = run["gaps"]
    stream_s = (m["doneAt"] - m["startedAt"]) / 1000
    result: dict[str, Any] = {
        "records": records,
        "rows": run["rows"],
        "state": run["state"],
        "connections": run["connections"],
        "longest_task_ms_during_job": max((t["duration"] for t in during), default=0.0),
        "long_tasks_during_job": len(during),
        "long_tasks_over_200ms": sum(t["duration"] > 200 for t in run["longtasks"]),
        "longest_task_ms_whole_visit": max((t["duration"] for t in run["longtasks"]), default=0.0),
        "frame_gap_max_ms": max(gaps, default=0.0),
        "frame_gap_p99_ms": percentile(gaps, 0.99),
        "frames": len(gaps),
        "click_to_job_created_ms": m["startedAt"] - m["clickedAt"],
        "click_to_first_line_ms": m["firstLineAt"] - m["clickedAt"],
        "click_to_first_records_ms": m["firstRecordsAt"] - m["clickedAt"],
        "click_to_first_rows_ms": m["firstRowsAt"] - m["clickedAt"],
        "first_rows_wall_s": run["first_rows_wall"],
        "total_s": (m["doneAt"] - m["clickedAt"]) / 1000,
        "records_per_s": records / stream_s,
        "heap_used_mb_after_gc": heap["usedSize"] / 2**20,
        "heap_total_mb_after_gc": heap["totalSize"] / 2**20,
        "heap_used_mb_before_gc": (run["heapBeforeGc"] or 0) / 2**20,
        "scrolls": run["scrolls"],
        "visible_rows_while_streaming": run["drift"],
        "chromium": str(CHROMIUM),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    rows = [
        ("records", f"{records:,}", "", None),
        (
            "longest long task, during the job",
            f"{result['longest_task_ms_during_job']:.0f} ms",
            "<= 200 ms",
            result["longest_task_ms_during_job"] <= 200,
        ),
        ("long tasks (>50 ms) during the job", str(result["long_tasks_during_job"]), "", None),
        (
            "longest long task, whole visit",
            f"{result['longest_task_ms_whole_visit']:.0f} ms",
            "",
            None,
        ),
        (
            "longest frame gap / p99",
            f"{result['frame_gap_max_ms']:.0f} / {result['frame_gap_p99_ms']:.0f} ms",
            "",
            None,
        ),
        ("Start -> job created", f"{result['click_to_job_created_ms']:.0f} ms", "", None),
        ("Start -> first stream line", f"{result['click_to_first_line_ms']:.0f} ms", "", None),
        ("Start -> first records", f"{result['click_to_first_records_ms']:.0f} ms", "", None),
        (
            "Start -> first rows visible",
            f"{result['click_to_first_rows_ms']:.0f} ms",
            "<= 1000 ms",
            result["click_to_first_rows_ms"] <= 1000,
        ),
        ("total (Start -> complete)", f"{result['total_s']:.1f} s", "", None),
        ("records/s (stream)", f"{result['records_per_s']:,.0f}", "", None),
        ("JS heap after GC (main thread)", f"{result['heap_used_mb_after_gc']:.1f} MB", "", None),
        ("JS heap before GC", f"{result['heap_used_mb_before_gc']:.1f} MB", "", None),
    ]
    if run["drift"]:
        dr = run["drift"]
        moved = dr["first_row_after"] - dr["first_row_before"]
        rows.append(
            (
                f"rows on screen moved ({dr['rows_arrived']:,} arrived)",
                f"{moved} rows",
                "0",
                moved == 0 and dr["rows_arrived"] > 0,
            )
        )
    print(f"\n{'metric':<38} {'value':>14}  {'target':<10}")
    for name, value, target, ok in rows:
        flag = "" if ok is None else ("ok" if ok else "MISSED")
        print(f"{name:<38} {value:>14}  {target:<10} {flag}")
    print(f"\nwrote {args.out} and {args.screenshot}")


if __name__ == "__main__":
    main()
