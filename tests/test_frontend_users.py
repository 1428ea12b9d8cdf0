"""The front end as its users meet it (issue 26), in Debian's headless Chromium via Playwright.

A real server over the demo database; ground truth from SQL. Shared jobs (`/?job=ID`), the
filters built from `/api/domains`, a failed Start, axe-core's audit after a job, the phone
layout, and input checked as it is typed. Helpers: tests/support/frontend.py (skipped without
Chromium, Playwright or axe-core, unless TRACE_TEST_REQUIRE_BROWSER is set).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import DOMAINS, create_job, expected_rows, sql_truth
from tests.support.frontend import (
    MAX_CIDS,
    chromium,
    new_page,
    open_page,
    pick,
    serious_violations,
    serve_demo,
    skip_without_browser,
    table_rows,
    wait_done,
)
from tests.support.servers import ServerProcess

skip_without_browser()

from playwright.sync_api import Browser, Page  # noqa: E402


@pytest.fixture(scope="module")
def demo_server(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = serve_demo(demo_db, tmp_path_factory.mktemp("users-data"), {})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with new_page(browser) as pg:
        yield pg


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    with new_page(browser, 390, 844) as pg:
        yield pg


def test_a_shared_job_url_streams_the_job_to_the_end(
    demo_server: ServerProcess, demo_db: Path, demo_cids: list[str], page: Page
) -> None:
    cids = demo_cids[:300]
    job = create_job(demo_server.url, cids)
    open_page(page, f"{demo_server.url}/?job={job['job_id']}")
    wait_done(page)
    assert page.get_by_test_id("job-id").inner_text() == job["job_id"]
    for name, rows in sql_truth(demo_db, cids).items():
        assert rows
        assert table_rows(page, name) == rows, name
        assert page.get_by_test_id(f"progress-{name}").get_attribute("data-status") == "done"
    agg = page.evaluate("window.traceApp.aggregation")
    history = expected_rows(demo_db, cids, DOMAINS["history"])
    assert agg["domains"]["history"]["records"] == len(history)

    # A job the page starts is named by the address: reopening it shows the same job.
    cids2 = pick(page, 40)
    page.get_by_test_id("start-button").click()
    wait_done(page)
    job_id = page.get_by_test_id("job-id").inner_text()
    assert page.url.endswith(f"?job={job_id}")
    page.reload()
    wait_done(page)
    assert page.get_by_test_id("job-id").inner_text() == job_id
    assert table_rows(page, "history") == expected_rows(demo_db, cids2, DOMAINS["history"])

    # An unknown (expired, or another key's) job says so plainly, and shows no job.
    open_page(page, f"{demo_server.url}/?job=J0000000000000000000000000")
    page.get_by_test_id("message").filter(has_text="does not exist any more").wait_for()
    assert page.get_by_test_id("job-id").inner_text() == "—"
    assert "job=" not in page.url


def test_page_filters_make_the_jobs_where_and_stream_only_matching_rows(
    demo_server: ServerProcess, demo_db: Path, page: Page
) -> None:
    open_page(page, demo_server.url + "/")
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

    cids = pick(page, 500)
    page.get_by_test_id("filter-history-EVENTNAME").fill("TrackIn, Hold, DataCollect")
    page.get_by_test_id("filter-history-TXNDATE-from").fill("2025-01-20T00:00")
    page.get_by_test_id("filter-history-TXNDATE-to").fill("2025-03-15T12:00")
    page.get_by_test_id("filter-materials-MATERIALPARTNAME").fill("EPOXY-8200, DIE-A7X")
    # A new API key loads the catalog again: what was typed stays.
    page.evaluate(
        """() => {
            document.querySelector('.filter-domain').dataset.old = '1';
            document.querySelector('[data-testid=api-key]').dispatchEvent(new Event('change'));
        }"""
    )
    page.wait_for_function("() => !document.querySelector('.filter-domain').dataset.old")
    assert page.get_by_test_id("filter-history-TXNDATE-to").input_value() == "2025-03-15T12:00"
    # Counted per column: TXNDATE's from and to are one filter.
    assert page.get_by_test_id("filter-count").inner_text() == "(3 set)"
    page.get_by_test_id("start-button").click()
    wait_done(page)

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
        assert table_rows(page, name) == rows, name
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
        open_page(pg, demo_server.url + "/")
        assert serious_violations(pg) == []  # before any job too
        open_page(pg, demo_server.url + "/")  # again: without axe's script
        pick(pg, 400)
        pg.get_by_test_id("filters").locator("summary").click()
        pg.get_by_test_id("start-button").click()
        wait_done(pg)
        violations = serious_violations(pg)
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
    open_page(phone, demo_server.url + "/")

    def width() -> int:
        return int(phone.evaluate("document.documentElement.scrollWidth"))

    assert width() <= 390
    pick(phone, 300)
    phone.get_by_test_id("filters").locator("summary").click()
    phone.get_by_test_id("start-button").click()
    wait_done(phone)
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
    open_page(page, demo_server.url + "/")
    cid_input = page.get_by_test_id("cid-input")
    check = page.get_by_test_id("cid-check")

    # Real keys (a demo pick) pass the check, whatever their mix of digits and letters.
    picked = pick(page, 300)
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
