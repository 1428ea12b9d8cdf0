"""The browser front end under test: Debian's Chromium through Playwright, the service on the
demo database, and what the front end's tests do with a page (tests/test_frontend_users.py,
tests/test_frontend_states.py).

Playwright is imported only when a browser starts: without it, `skip_without_browser()` skips
the test module (or fails it when TRACE_TEST_REQUIRE_BROWSER is set, as in CI)."""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.servers import ServerProcess, start_server
from tests.support.truth import DOMAINS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
MAX_CIDS = 1400  # the servers' TRACE_MAX_CIDS: under the demo's 1500 CIDs, so it can be passed


def skip_without_browser() -> None:
    """Skip the calling test module when Chromium, axe-core or Playwright is missing."""
    why = None
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} is absent (apt-get install chromium, or scripts/setup --dev)"
    elif not AXE.exists():
        why = f"{AXE} is absent (cd frontend && npm install)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            why = "the playwright package is not installed (pip install -e '.[dev]')"
    if why is None:
        return
    if os.environ.get("TRACE_TEST_REQUIRE_BROWSER"):
        raise RuntimeError(f"TRACE_TEST_REQUIRE_BROWSER is set but {why}")
    pytest.skip(f"browser tests skipped: {why}", allow_module_level=True)


def serve_demo(demo_db: Path, tmp: Path, env: dict[str, str]) -> ServerProcess:
    """The service on the demo database as its own (no TRACE_DB_URL): random picks work."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "demo.sqlite3").symlink_to(demo_db)
    return start_server(
        tmp, None, {"TRACE_STREAM_BATCH_SIZE": "200", "TRACE_MAX_CIDS": str(MAX_CIDS), **env}
    )


@contextmanager
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def new_page(browser: Browser, width: int = 1360, height: int = 900) -> Iterator[Page]:
    """A page in a fresh context; no uncaught error in it by the end."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_test_id("domain-history").wait_for()


def pick(page: Page, n: int) -> list[str]:
    """Random demo CIDs with the page's own control (Enter in the field picks, as the button)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=random-button]').disabled")
    page.get_by_test_id("random-n").fill(str(n))
    page.get_by_test_id("random-n").press("Enter")
    page.get_by_test_id("message").filter(has_text="Picked").wait_for()
    cids: list[str] = page.get_by_test_id("cid-input").input_value().split()
    return cids


def wait_done(page: Page, timeout: float = 90_000) -> None:
    page.wait_for_function("() => window.traceApp.state === 'done'", timeout=timeout)
    page.get_by_test_id("aggregations").wait_for()


def table_rows(page: Page, domain: str) -> list[tuple[Any, ...]]:
    """The rows the page holds for `domain`, as tuples in the domain's column order."""
    columns = list(DOMAINS[domain].columns)
    got: list[list[Any]] = page.evaluate(
        "([d, cols]) => cols.map((c) => window.traceApp.column(d, c))", [domain, columns]
    )
    return list(zip(*got, strict=True)) if got and got[0] else []


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's critical and serious violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const r = await window.axe.run(document, { resultTypes: ['violations'] });
            return r.violations
              .filter((v) => v.impact === 'critical' || v.impact === 'serious')
              .map((v) => ({ id: v.id, impact: v.impact, n: v.nodes.length,
                             nodes: v.nodes.slice(0, 4).map((n) => n.target.join(' ')) }));
        }"""
    )
    return found


class SlowAggregations:
    """A stream whose aggregations take until `release` is set: every record arrives, then
    (with `announce`) the `aggregating` line and heartbeats, then `aggregation` and `complete`.
    Served from its own port with CORS, as the page's worker fetches `links.stream` as given."""

    def __init__(self, announce: bool) -> None:
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _cors(self) -> None:
                self.send_header("access-control-allow-origin", "*")
                self.send_header("access-control-allow-headers", "*")

            def do_OPTIONS(self) -> None:  # noqa: N802 (the stdlib's name)
                self.send_response(204)
                self._cors()
                self.send_header("content-length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self._cors()
                self.send_header("content-type", "application/x-ndjson")
                self.send_header("connection", "close")
                self.end_headers()

                def send(line: dict[str, Any]) -> None:
                    self.wfile.write(json.dumps(line).encode() + b"\n")
                    self.wfile.flush()

                send({"type": "meta", "job_id": "slow", "domains": ["history"], "cid_count": 1})
                cols = ["CONTAINERID", "N"]
                send({"type": "domain_start", "domain": "history", "columns": cols, "total": 2})
                data = [["C1", 1], ["C1", 2]]
                send(
                    {
                        "type": "records",
                        "domain": "history",
                        "batch": 1,
                        "data": data,
                        "since": "t1",
                    }
                )
                send({"type": "domain_end", "domain": "history", "total_records": 2})
                if announce:
                    send({"type": "aggregating", "domains": ["history"]})
                while not outer.release.wait(0.3):
                    send({"type": "heartbeat"})
                agg = {"domains": {"history": {"records": 2, "containers": 1}}}
                send({"type": "aggregation", "data": agg})
                send({"type": "complete", "elapsed_seconds": 1.0, "total_records": 2})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
