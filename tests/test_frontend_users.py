"""The front end as its users meet it (issue 26), in Debian's headless Chromium via Playwright.

A real server over the demo database; ground truth from SQL. Shared jobs (`/?job=ID`), the
filters built from `/api/domains`, axe-core's audit after a job, the phone layout, input checks,
a failed Start, API keys, column choice and find.

Needs /usr/bin/chromium, the `playwright` package and frontend/node_modules/axe-core (`npm
install` in frontend/). Without them the tests are skipped, unless TRACE_TEST_REQUIRE_BROWSER
is set (CI), when they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import DOMAINS, create_job, expected_rows, sql_truth
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.servers import ServerProcess, start_server

AXE = Path(__file__).resolve().parents[1] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
KEY = ["CONTAINERID", "TXNDATE"]  # the demo data's natural unique key (tests/test_demo.py)
MAX_CIDS = 1400  # the servers' TRACE_MAX_CIDS: under the demo's 1500 CIDs, so it can be passed
API_KEY = "frontend-key-1"
OTHER_KEY = "frontend-key-2"


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent (apt-get install chromium, or scripts/setup --dev)"
    if not AXE.exists():
        return f"{AXE} is absent (cd frontend && npm install)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


if (_why := _missing()) is not None:
    if os.environ.get("TRACE_TEST_REQUIRE_BROWSER"):
        raise RuntimeError(f"TRACE_TEST_REQUIRE_BROWSER is set but {_why}")
    pytest.skip(f"browser tests skipped: {_why}", allow_module_level=True)

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402


def _serve(demo_db: Path, tmp: Path, env: dict[str, str]) -> ServerProcess:
    """The service on the demo database as its own (no TRACE_DB_URL): random picks work."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "demo.sqlite3").symlink_to(demo_db)
    return start_server(
        tmp, None, {"TRACE_STREAM_BATCH_SIZE": "200", "TRACE_MAX_CIDS": str(MAX_CIDS), **env}
    )


@pytest.fixture(scope="module")
def demo_server(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = _serve(demo_db, tmp_path_factory.mktemp("users-data"), {})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _page(browser: Browser, width: int = 1360, height: int = 900) -> tuple[Page, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    pg, errors = _page(browser)
    yield pg
    pg.context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    pg, errors = _page(browser, 390, 844)
    yield pg
    pg.context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def _open(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_test_id("domain-history").wait_for()


def _pick(page: Page, n: int) -> list[str]:
    page.wait_for_function("() => !document.querySelector('[data-testid=random-button]').disabled")
    page.get_by_test_id("random-n").fill(str(n))
    page.get_by_test_id("random-n").press("Enter")  # Enter in the field picks, as the button
    page.get_by_test_id("message").filter(has_text="Picked").wait_for()
    cids: list[str] = page.get_by_test_id("cid-input").input_value().split()
    return cids


def _done(page: Page, timeout: float = 90_000) -> None:
    page.wait_for_function("() => window.traceApp.state === 'done'", timeout=timeout)
    page.get_by_test_id("aggregations").wait_for()


def _table(page: Page, domain: str) -> list[tuple[Any, ...]]:
    columns = list(DOMAINS[domain].columns)
    got: list[list[Any]] = page.evaluate(
        "([d, cols]) => cols.map((c) => window.traceApp.column(d, c))", [domain, columns]
    )
    return list(zip(*got, strict=True)) if got and got[0] else []


def _serious_violations(page: Page) -> list[dict[str, Any]]:
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


def test_a_shared_job_url_streams_the_job_to_the_end(
    demo_server: ServerProcess, demo_db: Path, demo_cids: list[str], page: Page
) -> None:
    cids = demo_cids[:300]
    job = create_job(demo_server.url, cids)
    _open(page, f"{demo_server.url}/?job={job['job_id']}")
    _done(page)
    assert page.get_by_test_id("job-id").inner_text() == job["job_id"]
    for name, rows in sql_truth(demo_db, cids).items():
        assert rows
        assert _table(page, name) == rows, name
        assert page.get_by_test_id(f"progress-{name}").get_attribute("data-status") == "done"
    agg = page.evaluate("window.traceApp.aggregation")
    history = expected_rows(demo_db, cids, DOMAINS["history"])
    assert agg["domains"]["history"]["records"] == len(history)

    # A job the page starts is named by the address: reopening it shows the same job.
    cids2 = _pick(page, 40)
    page.get_by_test_id("start-button").click()
    _done(page)
    job_id = page.get_by_test_id("job-id").inner_text()
    assert page.url.endswith(f"?job={job_id}")
    page.reload()
    _done(page)
    assert page.get_by_test_id("job-id").inner_text() == job_id
    assert _table(page, "history") == expected_rows(demo_db, cids2, DOMAINS["history"])

    # An unknown (expired, or another key's) job says so plainly, and shows no job.
    _open(page, f"{demo_server.url}/?job=J0000000000000000000000000")
    page.get_by_test_id("message").filter(has_text="does not exist any more").wait_for()
    assert page.get_by_test_id("job-id").inner_text() == "—"
    assert "job=" not in page.url


def test_page_filters_make_the_jobs_where_and_stream_only_matching_rows(
    demo_server: ServerProcess, demo_db: Path, page: Page
) -> None:
    _open(page, demo_server.url + "/")
    catalog = httpx.get(demo_server.url + "/api/domains").json()["domains"]
    page.get_by_test_id("filters").locator("summary").click()
    page.get_by_test_id("filter-history-EVENTNAME").wait_for()
    # A labelled control for every filterable column of every domain, as /api/domains lists them.
    controls = 0
    for d in catalog:
        for column, info in d["filters"].items():
            ids = []
            if "in" in info["ops"]:
                ids.append(f"filter-{d['name']}-{column}")
            if "range" in info["ops"]:
                ids += [f"filter-{d['name']}-{column}-from", f"filter-{d['name']}-{column}-to"]
            for testid in ids:
                control = page.get_by_test_id(testid)
                assert control.is_visible(), testid
                name = control.evaluate(
                    "e => e.getAttribute('aria-label')"
                    " || [...e.labels].map((l) => l.textContent).join(' ')"
                )
                assert column in name, (testid, name)
                controls += 1
    assert controls >= 10

    cids = _pick(page, 500)
    page.get_by_test_id("filter-history-EVENTNAME").fill("TrackIn, Hold, DataCollect")
    page.get_by_test_id("filter-history-TXNDATE-from").fill("2025-01-20T00:00")
    page.get_by_test_id("filter-history-TXNDATE-to").fill("2025-03-15T12:00")
    page.get_by_test_id("filter-materials-MATERIALPARTNAME").fill("EPOXY-8200, DIE-A7X")
    # Counted per column: TXNDATE's from and to are one filter.
    assert page.get_by_test_id("filter-count").inner_text() == "(3 set)"
    page.get_by_test_id("start-button").click()
    _done(page)

    truth = sql_truth(
        demo_db,
        cids,
        where={
            "history": (
                "EVENTNAME IN ('TrackIn', 'Hold', 'DataCollect')"
                " AND TXNDATE >= '2025-01-20T00:00:00' AND TXNDATE < '2025-03-15T12:00:00'",
                (),
            ),
            "materials": ("MATERIALPARTNAME IN ('EPOXY-8200', 'DIE-A7X')", ()),
        },
    )
    for name, rows in truth.items():
        assert rows and len(rows) < len(expected_rows(demo_db, cids, DOMAINS[name])), name
        assert _table(page, name) == rows, name
    shown = page.get_by_test_id("job-where").inner_text()
    assert "EVENTNAME in DataCollect, Hold, TrackIn" in shown, shown
    assert "MATERIALPARTNAME in DIE-A7X, EPOXY-8200" in shown, shown
    # The aggregations reflect the filter too.
    agg = page.evaluate("window.traceApp.aggregation")
    assert agg["domains"]["history"]["records"] == len(truth["history"])
    events = {g["key"][0] for g in agg["aggregations"]["history"]["events"]["groups"]}
    assert events <= {"TrackIn", "Hold", "DataCollect"}

    # A value the server refuses: the Start fails, and the previous job no longer looks current.
    page.get_by_test_id("filter-history-TXNDATE-to").fill("")
    page.get_by_test_id("filter-history-TXNDATE-from").fill("2025-02-30")  # no such day
    page.get_by_test_id("start-button").click()
    page.get_by_test_id("message").filter(has_text="invalid_filter").wait_for()
    assert page.get_by_test_id("job-id").inner_text() == "—"
    assert page.get_by_test_id("total-count").get_attribute("data-count") == "0"
    assert page.get_by_test_id("download-link").get_attribute("aria-disabled") == "true"
    assert page.get_by_test_id("export-csv.zip").is_disabled()
    assert page.get_by_test_id("progress").locator(".prog").count() == 0
    assert page.get_by_test_id("aggregations").is_hidden()
    assert page.get_by_test_id("stop-button").is_disabled()


def test_axe_finds_no_critical_or_serious_violation_after_a_job(
    demo_server: ServerProcess, page: Page, phone: Page, tmp_path: Path
) -> None:
    for pg in (page, phone):
        _open(pg, demo_server.url + "/")
        _pick(pg, 400)
        pg.get_by_test_id("filters").locator("summary").click()
        pg.get_by_test_id("start-button").click()
        _done(pg)
        violations = _serious_violations(pg)
        pg.screenshot(path=tmp_path / f"axe-{pg.viewport_size}.png", full_page=True)
        assert violations == [], violations

    # The grid tells assistive technology how many rows there are, not just the ones drawn.
    grid = page.get_by_test_id("grid-history")
    rows = int(page.evaluate("window.traceApp.rowCount('history')"))
    assert grid.get_attribute("role") == "grid"
    assert grid.get_attribute("aria-rowcount") == str(rows + 1)
    assert grid.locator("[role=columnheader]").count() == len(DOMAINS["history"].columns) + 1
    assert grid.locator("[role=row][aria-rowindex='2'] [role=gridcell]").count() > 0
    # The domain tabs: arrows move between them.
    page.get_by_test_id("tab-history").focus()
    page.keyboard.press("ArrowRight")
    assert page.get_by_test_id("tab-materials").get_attribute("aria-selected") == "true"
    assert page.evaluate("document.activeElement.dataset.testid") == "tab-materials"
    assert page.get_by_test_id("table-materials").is_visible()
    page.keyboard.press("ArrowLeft")
    assert page.get_by_test_id("table-history").is_visible()
    bar = page.get_by_test_id("progress-history").get_by_role("progressbar")
    assert bar.get_attribute("aria-valuenow") == bar.get_attribute("aria-valuemax") == str(rows)


def test_the_phone_layout_has_no_horizontal_overflow(
    demo_server: ServerProcess, phone: Page, tmp_path: Path
) -> None:
    _open(phone, demo_server.url + "/")

    def width() -> int:
        return int(phone.evaluate("document.documentElement.scrollWidth"))

    assert width() <= 390
    _pick(phone, 300)
    phone.get_by_test_id("filters").locator("summary").click()
    phone.get_by_test_id("start-button").click()
    _done(phone)
    assert width() <= 390, width()
    # The table scrolls inside its own box; its footer sits below it, over no row.
    grid = phone.get_by_test_id("grid-history")
    assert grid.evaluate("g => g.scrollWidth > g.clientWidth")
    grid_box = grid.bounding_box()
    tools = phone.get_by_test_id("table-history").locator(".table-tools").bounding_box()
    assert grid_box and tools and tools["y"] >= grid_box["y"] + grid_box["height"] - 1
    for name in DOMAINS:  # every progress row whole
        row = phone.get_by_test_id(f"progress-{name}").bounding_box()
        assert row and row["x"] >= 0 and row["x"] + row["width"] <= 390
    phone.screenshot(path=tmp_path / "phone.png", full_page=True)


def test_input_is_checked_as_it_is_typed(demo_server: ServerProcess, page: Page) -> None:
    _open(page, demo_server.url + "/")
    cid_input = page.get_by_test_id("cid-input")
    check = page.get_by_test_id("cid-check")

    # Real keys (a demo pick) pass the check, whatever their mix of digits and letters.
    picked = _pick(page, 300)
    page.get_by_test_id("cid-count").filter(has_text=f"{len(picked)}").wait_for()
    page.wait_for_timeout(300)  # the check runs shortly after the list changes
    assert check.get_attribute("data-level") == "ok", check.inner_text()

    cid_input.fill("hello world!!! <script>")
    page.get_by_test_id("cid-count").filter(has_text="3").wait_for()
    check.filter(has_text="none look like container IDs").wait_for()
    assert check.get_attribute("data-level") == "warn"

    # Over the service's limit: said while typing, refused before any job is made.
    cids = ",".join(f"C{i:06d}" for i in range(MAX_CIDS + 1))
    cid_input.fill(cids)
    check.filter(has_text=f"over the service's limit of {MAX_CIDS:,}").wait_for()
    page.get_by_test_id("start-button").click()
    page.get_by_test_id("message").filter(has_text="Too many CIDs").wait_for()
    assert page.get_by_test_id("job-id").inner_text() == "—"

    # The pick's size too, against the limit the service states.
    page.get_by_test_id("random-n").fill(str(MAX_CIDS * 2))
    page.get_by_test_id("random-note").filter(has_text=f"At most {MAX_CIDS:,}").wait_for()

    # A long paste goes to the worker, never into the textarea.
    big = "\n".join(f"C{i:06d}" for i in range(30_000))
    cid_input.fill("")
    cid_input.focus()
    page.evaluate(
        """(text) => {
            const dt = new DataTransfer();
            dt.setData('text/plain', text);
            const ta = document.querySelector('[data-testid=cid-input]');
            const init = { clipboardData: dt, bubbles: true, cancelable: true };
            ta.dispatchEvent(new ClipboardEvent('paste', init));
        }""",
        big,
    )
    page.get_by_test_id("cid-count").filter(has_text="30,000").wait_for()
    assert len(cid_input.input_value()) < 2000

    # "load file…" is a control the keyboard reaches.
    page.get_by_test_id("cid-file-button").focus()
    assert page.evaluate("document.activeElement.dataset.testid") == "cid-file-button"


def test_api_key_errors_point_at_the_key_and_clear_once_it_works(
    demo_db: Path, demo_cids: list[str], tmp_path: Path, page: Page
) -> None:
    srv = _serve(demo_db, tmp_path / "keyed", {"TRACE_API_KEYS": f"{API_KEY},{OTHER_KEY}"})
    try:
        cids = demo_cids[:50]
        mine = create_job(srv.url, cids, headers={"authorization": f"Bearer {API_KEY}"})
        theirs = create_job(srv.url, cids, headers={"authorization": f"Bearer {OTHER_KEY}"})
        # A shared link opened without a key: the key is asked for, then the job opens.
        page.goto(f"{srv.url}/?job={mine['job_id']}")
        message = page.get_by_test_id("message")
        message.filter(has_text="needs an API key").wait_for()
        key = page.get_by_test_id("api-key")
        assert key.is_visible() and key.get_attribute("aria-invalid") == "true"
        page.get_by_test_id("cid-input").fill("C000001")
        page.get_by_test_id("start-button").click()
        message.filter(has_text="needs an API key").wait_for()  # not "Choose at least one domain"
        key.fill(API_KEY)
        key.press("Enter")
        page.get_by_test_id("domain-history").wait_for()
        _done(page)
        assert page.get_by_test_id("job-id").inner_text() == mine["job_id"]
        assert not page.get_by_test_id("message").inner_text()
        assert key.get_attribute("aria-invalid") is None
        assert _table(page, "history") == expected_rows(demo_db, cids, DOMAINS["history"])
        # Another key's job is not revealed: it reads as gone.
        page.goto(f"{srv.url}/?job={theirs['job_id']}")
        message.filter(has_text="does not exist any more").wait_for()
    finally:
        srv.stop()


def test_column_choice_is_kept_and_find_jumps_to_a_loaded_row(
    demo_server: ServerProcess, page: Page
) -> None:
    _open(page, demo_server.url + "/")
    cids = _pick(page, 200)
    page.get_by_test_id("start-button").click()
    _done(page)
    grid = page.get_by_test_id("grid-history")
    headers = grid.locator("[role=columnheader]")
    assert "EQUIPMENTNAME" in headers.all_inner_texts()
    page.get_by_test_id("columns-history").locator("summary").click()
    page.get_by_test_id("column-history-EQUIPMENTNAME").uncheck()
    assert "EQUIPMENTNAME" not in headers.all_inner_texts()
    assert headers.count() == len(DOMAINS["history"].columns)  # the row number, then the rest

    # Kept for the next job and the next visit.
    page.reload()
    _done(page)
    assert (
        "EQUIPMENTNAME"
        not in page.get_by_test_id("grid-history").locator("[role=columnheader]").all_inner_texts()
    )

    last = sorted(cids)[-1]  # keyset order: the last CID's rows are the table's last rows
    find = page.get_by_test_id("find-history")
    find.fill(last)
    find.press("Enter")
    result = page.get_by_test_id("find-result-history")
    result.filter(has_text="row").wait_for()
    row = int(result.inner_text().removeprefix("row ").replace(",", ""))
    cells = page.evaluate("window.traceApp.column('history', 'CONTAINERID')")
    assert cells.index(last) + 1 == row
    marked = page.get_by_test_id("grid-history").locator(".vt-row.marked")
    assert marked.count() == 1 and last in marked.inner_text()
    find.fill("no such text anywhere")
    find.press("Enter")
    result.filter(has_text="not in the").wait_for()


def test_the_wheel_moves_a_million_row_table_as_few_rows_as_a_short_one(
    demo_server: ServerProcess, page: Page
) -> None:
    """Past 8M px of scroll range the table maps scrollTop onto the rows; a wheel notch must
    still move about deltaY / row height rows, not that times the scale."""
    _open(page, demo_server.url + "/")
    moved: list[int] = page.evaluate(
        """async () => {
            const { VirtualTable } = await import('/table.js');
            const { BatchEncoder, ColumnStore } = await import('/columns.js');
            const host = document.createElement('div');
            host.style.cssText = 'position:fixed;left:0;top:0;width:600px;height:400px;z-index:9';
            document.body.append(host);
            const out = [];
            for (const n of [2000, 1000000]) {
                host.replaceChildren();
                const store = new ColumnStore(['N']);
                const rows = Array.from({ length: n }, (_, i) => [i]);
                store.append(new BatchEncoder(1).encode(rows).batch);
                const table = new VirtualTable(host, { testId: 'wheel-grid' });
                table.setData(store, ['N']);
                const frame = () => new Promise((r) => requestAnimationFrame(() => r(null)));
                await frame(); await frame();
                const scroller = host.querySelector('.vt-scroll');
                scroller.scrollTop = scroller.scrollHeight / 2;
                await frame(); await frame();
                const top = '.vt-body .vt-row:not([hidden])';
                const first = () => Number(host.querySelector(top).dataset.row);
                const before = first();
                const e = new WheelEvent('wheel', { deltaY: 220, bubbles: true, cancelable: true });
                // Not taken by the table: the browser's own scrolling.
                if (scroller.dispatchEvent(e)) scroller.scrollTop += 220;
                await frame(); await frame();
                out.push(first() - before);
                table.destroy();
            }
            host.remove();
            return out;
        }"""
    )
    short, long = moved
    assert short == 10, moved  # 220 px of 22 px rows
    assert abs(long - short) <= 1, moved


class _SlowAggregations:
    """A stream whose aggregations take until `release` is set: every record arrives, then
    (with `announce`) the `aggregating` line and heartbeats, then `aggregation` and `complete`.
    Served from its own port with CORS, as the page's worker fetches `links.stream` as given."""

    def __init__(self, announce: bool) -> None:
        import http.server
        import threading

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
                import json

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


@pytest.mark.parametrize("announce", [True, False], ids=["aggregating-line", "no-line"])
def test_the_wait_for_aggregations_is_said(
    demo_server: ServerProcess, page: Page, announce: bool
) -> None:
    """Every record in, the aggregations not yet: the header says "computing aggregations…"
    (from the `aggregating` line, or from every domain being done), never a bare "streaming"."""
    stream = _SlowAggregations(announce)
    try:
        job = {"job_id": "slow", "cid_count": 1, "domains": ["history"], "where": None}
        job["links"] = {"stream": stream.url, "self": demo_server.url + "/api/trace/job/slow"}
        page.route(
            "**/api/trace/job/slow",
            lambda route: route.fulfill(status=200, json=job),
        )
        _open(page, f"{demo_server.url}/?job=slow")
        conn = page.get_by_test_id("conn-state")
        page.locator("[data-testid=conn-state][data-state=aggregating]").wait_for()
        assert conn.inner_text() == "computing aggregations…"
        assert page.get_by_test_id("progress-history").get_attribute("data-status") == "done"
        page.wait_for_timeout(800)  # heartbeats meanwhile change nothing
        assert conn.inner_text() == "computing aggregations…"
        stream.release.set()
        page.locator("[data-testid=conn-state][data-state=done]").wait_for()
        assert page.evaluate("window.traceApp.aggregation")["domains"]["history"]["records"] == 2
    finally:
        stream.close()
