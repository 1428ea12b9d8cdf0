"""/metrics from the first scrape: every labelled counter has its known series at 0 (so
`rate()` sees them before the first event), no `_created` series, exports and HTTP requests
counted (by route template, never by job id), all read by prometheus_client's parser."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from svc.errors import JobNotFound, SourceUnavailable
from tests.support import create_job
from tests.support.exports import finished, start_export
from tests.support.servers import ServerProcess, start_server

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
JOB_ROUTE = "/api/trace/job/{job_id}"


@pytest.fixture(scope="module")
def srv(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("metrics"), demo_db)
    yield server
    server.stop()


def scrape(server: ServerProcess) -> tuple[str, Samples]:
    r = httpx.get(f"{server.url}/metrics")
    assert r.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }
    return r.text, samples


def get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_known_series_exist_at_zero_from_the_first_scrape(srv: ServerProcess) -> None:
    _, samples = scrape(srv)  # the server's first request
    assert not [name for name, _ in samples if name.endswith("_created")]
    zero = {
        "trace_stream_error_lines_total": {"code": SourceUnavailable.code},
        "trace_problem_responses_total": {"code": JobNotFound.code},
        "trace_job_store_errors_total": {"op": "get"},
        "trace_streams_finished_total": {"outcome": "client_gone"},
        "trace_records_sent_total": {"domain": "materials", "format": "csv"},
        "trace_exports_started_total": {"format": "csv.zip"},
        "trace_exports_finished_total": {"format": "ndjson.gz", "state": "failed"},
        "trace_export_bytes_total": {"format": "ndjson.gz"},
        "trace_http_requests_total": {"route": JOB_ROUTE, "method": "GET", "status": "4xx"},
    }
    for name, labels in zero.items():
        assert get(samples, name, **labels) == 0.0, (name, labels)
    codes = {dict(labels)["code"] for name, labels in samples if name.startswith("trace_stream_e")}
    assert len(codes) > 20, "every error code"


def test_exports_and_http_requests_are_counted(srv: ServerProcess, demo_cids: list[str]) -> None:
    _, before = scrape(srv)
    job = create_job(srv.url, demo_cids[:20])
    assert httpx.get(srv.url + job["links"]["self"]).status_code == 200
    assert httpx.get(f"{srv.url}/api/trace/job/no-such-job").status_code == 404
    assert httpx.get(f"{srv.url}/api/no/such/path").status_code == 404
    status = finished(srv.url, start_export(srv.url, job["job_id"], "ndjson.gz"))
    done = ("trace_exports_finished_total", (("format", "ndjson.gz"), ("state", "done")))
    deadline = time.monotonic() + 10  # counted once its temporary files are removed
    while True:
        text, after = scrape(srv)
        if after[done] > before[done] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not any(word in text for word in (job["job_id"], "no-such-job", "no/such"))

    def grew(name: str, **labels: str) -> float:
        return (get(after, name, **labels) or 0.0) - (get(before, name, **labels) or 0.0)

    requests = "trace_http_requests_total"
    assert grew(requests, route=JOB_ROUTE, method="GET", status="2xx") == 1
    assert grew(requests, route=JOB_ROUTE, method="GET", status="4xx") == 1
    assert grew(requests, route="/api/trace/job", method="POST", status="2xx") == 1
    assert grew(requests, route="/api/{rest:path}", method="GET", status="4xx") == 1
    fmt = {"format": "ndjson.gz"}
    assert grew("trace_exports_started_total", **fmt) == 1
    assert grew("trace_exports_finished_total", state="done", **fmt) == 1
    assert grew("trace_export_bytes_total", **fmt) == status["size"] > 0
    assert grew("trace_export_seconds_count", **fmt) == 1
