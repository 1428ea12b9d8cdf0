"""The front end's states and tools, in Debian's headless Chromium via Playwright (issue 26):
the wait for aggregations said in the header, API keys, the column choice and find, and the
wheel over a million rows. Helpers: tests/support/frontend.py (skipped without Chromium,
Playwright or axe-core, unless TRACE_TEST_REQUIRE_BROWSER is set).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import DOMAINS, create_job, expected_rows
from tests.support.frontend import (
    SlowAggregations,
    chromium,
    new_page,
    open_page,
    pick,
    serve_demo,
    skip_without_browser,
    table_rows,
    wait_done,
)
from tests.support.servers import ServerProcess

skip_without_browser()

from playwright.sync_api import Browser, Page  # noqa: E402

API_KEY = "frontend-key-1"
OTHER_KEY = "frontend-key-2"


@pytest.fixture(scope="module")
def demo_server(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = serve_demo(demo_db, tmp_path_factory.mktemp("states-data"), {})
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


@pytest.mark.parametrize("announce", [True, False], ids=["aggregating-line", "no-line"])
def test_the_wait_for_aggregations_is_said(
    demo_server: ServerProcess, page: Page, announce: bool
) -> None:
    """Every record in, the aggregations not yet: the header says "computing aggregations…"
    (from the `aggregating` line, or from every domain being done), never a bare "streaming"."""
    stream = SlowAggregations(announce)
    try:
        job = {"job_id": "slow", "cid_count": 1, "domains": ["history"], "where": None}
        job["links"] = {"stream": stream.url, "self": demo_server.url + "/api/trace/job/slow"}
        page.route(
            "**/api/trace/job/slow",
            lambda route: route.fulfill(status=200, json=job),
        )
        open_page(page, f"{demo_server.url}/?job=slow")
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


def test_api_key_errors_point_at_the_key_and_clear_once_it_works(
    demo_db: Path, demo_cids: list[str], tmp_path: Path, page: Page
) -> None:
    srv = serve_demo(demo_db, tmp_path / "keyed", {"TRACE_API_KEYS": f"{API_KEY},{OTHER_KEY}"})
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
        wait_done(page)
        assert page.get_by_test_id("job-id").inner_text() == mine["job_id"]
        assert not page.get_by_test_id("message").inner_text()
        assert key.get_attribute("aria-invalid") is None
        assert table_rows(page, "history") == expected_rows(demo_db, cids, DOMAINS["history"])
        # Another key's job is not revealed: it reads as gone.
        page.goto(f"{srv.url}/?job={theirs['job_id']}")
        message.filter(has_text="does not exist any more").wait_for()
    finally:
        srv.stop()


def test_column_choice_is_kept_and_find_jumps_to_a_loaded_row(
    demo_server: ServerProcess, page: Page
) -> None:
    open_page(page, demo_server.url + "/")
    cids = pick(page, 200)
    page.get_by_test_id("start-button").click()
    wait_done(page)
    grid = page.get_by_test_id("grid-history")
    headers = grid.locator("[role=columnheader]")
    assert "EQUIPMENTNAME" in headers.all_inner_texts()
    page.get_by_test_id("columns-history").locator("summary").click()
    page.get_by_test_id("column-history-EQUIPMENTNAME").uncheck()
    assert "EQUIPMENTNAME" not in headers.all_inner_texts()
    assert headers.count() == len(DOMAINS["history"].columns)  # the row number, then the rest

    # Kept for the next job and the next visit.
    page.reload()
    wait_done(page)
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
    open_page(page, demo_server.url + "/")
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
