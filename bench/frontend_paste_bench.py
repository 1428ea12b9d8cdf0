"""A long paste into the page's CID list, in Debian's headless Chromium driven by Playwright.

Two ways in, each `--runs` times, one after the other in the same browser:

- `paste`: a real `paste` event carrying the text, as a user's Ctrl+V: the page hands text
  over 100,000 characters to its worker (`PASTE_MAX_CHARS` in frontend/query-panel.js), which
  parses, checks and keeps the list; the textarea shows a summary;
- `textarea`: the same text set as the textarea's value plus an `input` event, which is what a
  paste did before: Chromium lays the text out and the page counts it on the main thread.

Reports the time from the paste to the count shown, and the main thread's long tasks
(PerformanceObserver 'longtask', over 50 ms) meanwhile.

    .venv/bin/python bench/frontend_paste_bench.py [--lines 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, sync_playwright  # noqa: E402

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.support.servers import build_demo_db, start_server  # noqa: E402

LONG_TASKS = """window.__long = [];
new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); })
  .observe({ type: 'longtask' });"""
PASTE = """() => {
  const dt = new DataTransfer();
  dt.setData('text/plain', window.__text);
  const ta = document.querySelector('[data-testid=cid-input]');
  ta.focus();
  const init = { clipboardData: dt, bubbles: true, cancelable: true };
  ta.dispatchEvent(new ClipboardEvent('paste', init));
}"""
SET_VALUE = """() => {
  const ta = document.querySelector('[data-testid=cid-input]');
  ta.value = window.__text;
  ta.dispatchEvent(new Event('input', { bubbles: true }));
}"""


def one(browser: Browser, url: str, how: str, lines: int) -> tuple[float, list[float]]:
    page = browser.new_page()
    page.goto(url)
    page.get_by_test_id("domain-history").wait_for()
    page.evaluate(LONG_TASKS)
    page.evaluate("(n) => { window.__text = Array.from({length: n}, (_, i) => "
                  "'C' + String(i).padStart(7, '0')).join('\\n'); }", lines)  # fmt: skip
    t0 = time.perf_counter()
    page.evaluate(PASTE if how == "paste" else SET_VALUE)
    page.get_by_test_id("cid-count").filter(has_text=f"{lines:,}").wait_for(timeout=120_000)
    took = time.perf_counter() - t0
    page.wait_for_timeout(300)  # a long task still running is reported when it ends
    long: list[float] = page.evaluate("window.__long")
    page.close()
    return took, long


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    build_demo_db(tmp / "demo.sqlite3", 200)
    server = start_server(tmp, None, {})
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for how in ("paste", "textarea"):
                for _ in range(args.runs):
                    took, long = one(browser, server.url + "/", how, args.lines)
                    print(
                        f"{how:8} {args.lines:,} lines: count shown after {took * 1000:,.0f} ms;"
                        f" long tasks {len(long)}, longest {max(long, default=0):.0f} ms"
                    )
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
