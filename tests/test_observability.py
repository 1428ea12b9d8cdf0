"""The operator's view: /metrics counts what was sent, logs are one JSON line per request
or stream with the request id, and the request id is echoed back."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import create_job, iter_lines, last_since
from tests.support.servers import ServerProcess, start_server


@pytest.fixture(scope="module")
def srv(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(
        tmp_path_factory.mktemp("observe"),
        demo_db,
        {"TRACE_STREAM_BATCH_SIZE": "400", "TRACE_LOG_FORMAT": "json"},
    )
    yield server
    server.stop()


def scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"{server.url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def log_lines(server: ServerProcess) -> list[dict[str, Any]]:
    out = []
    for raw in server.log().splitlines():
        if raw.startswith("{"):
            out.append(json.loads(raw))
    return out


def test_metrics_count_what_a_stream_sent(srv: ServerProcess, demo_cids: list[str]) -> None:
    before = scrape(srv)
    job = create_job(srv.url, demo_cids[:80])
    with httpx.stream("GET", f"{srv.url}/api/trace/job/{job['job_id']}/stream") as r:
        raw = [line for line in r.iter_lines() if line]
    lines = [json.loads(x) for x in raw]
    assert lines[-1]["type"] == "complete"
    # A resumed stream, and a problem response.
    since = last_since(lines[:3])
    resumed = list(iter_lines(srv.url, job["job_id"], since=since, format="arrays"))
    assert resumed[-1]["type"] == "complete"
    assert httpx.get(f"{srv.url}/api/trace/job/nope").status_code == 404
    after = scrape(srv)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    for domain in ("history", "materials"):
        sent = [x for x in lines if x["type"] == "records" and x["domain"] == domain]
        records = sum(len(x["data"]) for x in sent)
        nbytes = sum(len(r.encode()) + 1 for r, x in zip(raw, lines, strict=True) if x in sent)
        assert delta("trace_records_sent_total", domain=domain, format="objects") == records
        assert delta("trace_bytes_sent_total", domain=domain, format="objects") == nbytes
        again = sum(
            len(x["data"]) for x in resumed if x["type"] == "records" and x["domain"] == domain
        )
        assert delta("trace_records_sent_total", domain=domain, format="arrays") == again
        queries = delta("trace_page_query_seconds_count", source="sqlite", domain=domain)
        assert queries >= len(sent)
    assert delta("trace_streams_finished_total", outcome="complete") == 2
    assert delta("trace_stream_resumes_total") == 1
    assert delta("trace_jobs_created_total") == 1
    assert delta("trace_problem_responses_total", code="job_not_found") == 1
    assert delta("trace_job_store_seconds_count", op="create") == 1
    assert delta("trace_job_store_seconds_count", op="get") >= 3
    assert value(after, "trace_active_streams") == 0
    assert value(after, "trace_draining") == 0
    assert value(after, "trace_source_connections_in_use") == 0


def test_a_client_that_goes_away_is_counted(srv: ServerProcess, demo_cids: list[str]) -> None:
    before = scrape(srv)
    job = create_job(srv.url, demo_cids[:300])
    with httpx.stream("GET", f"{srv.url}/api/trace/job/{job['job_id']}/stream") as r:
        for line in r.iter_lines():
            if '"records"' in line:
                break
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = scrape(srv)
        gone = value(after, "trace_streams_finished_total", outcome="client_gone")
        if gone - value(before, "trace_streams_finished_total", outcome="client_gone") == 1:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the cut stream was not counted as client_gone")
    assert value(after, "trace_active_streams") == 0


def test_request_id_is_echoed_and_logged(srv: ServerProcess, demo_cids: list[str]) -> None:
    r = httpx.get(f"{srv.url}/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    for bad in ("", "x" * 65, "has space", "tab\there"):
        r = httpx.get(f"{srv.url}/healthz", headers={"X-Request-ID": bad})
        made = r.headers["x-request-id"]
        assert made != bad and re.fullmatch(r"[0-9a-f]{32}", made)
    assert httpx.get(f"{srv.url}/healthz").headers["x-request-id"]

    job = create_job(srv.url, demo_cids[:30], headers={"X-Request-ID": "make-1"})
    with httpx.stream(
        "GET",
        f"{srv.url}/api/trace/job/{job['job_id']}/stream",
        headers={"X-Request-ID": "stream-1"},
    ) as resp:
        assert resp.headers["x-request-id"] == "stream-1"
        lines = [json.loads(x) for x in resp.iter_lines() if x]
    token = last_since(lines)
    assert token
    r = httpx.get(
        f"{srv.url}/api/trace/job/{job['job_id']}/result",
        params={"since": token, "domain": "materials"},
        headers={"X-Request-ID": "page-1"},
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        logged = log_lines(srv)
        by_id = {x.get("request_id"): x for x in logged if x.get("logger") == "svc.access"}
        if {"abc-123", "make-1", "stream-1", "page-1"} <= set(by_id):
            break
        time.sleep(0.1)
    stream = by_id["stream-1"]
    records = sum(len(x["data"]) for x in lines if x["type"] == "records")
    assert stream["msg"] == "stream" and stream["job_id"] == job["job_id"]
    assert stream["records"] == records and stream["bytes"] > 0
    assert stream["outcome"] == "complete" and stream["resumed"] is False
    assert stream["duration_ms"] >= 0 and stream["domain"] == "materials"
    created = by_id["make-1"]
    assert created["msg"] == "request" and created["status"] == 201
    assert created["method"] == "POST" and created["path"] == "/api/trace/job"
    assert by_id["page-1"]["job_id"] == job["job_id"]
    # Nothing at INFO shows a container id or a token.
    text = srv.log()
    assert token not in text
    assert not any(cid in text for cid in demo_cids[:30])
    assert all(x["level"] in {"info", "warning", "error"} for x in logged)


def test_multiprocess_mode(demo_db: Path, demo_cids: list[str], tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR set, the samples go through the shared directory."""
    shared = tmp_path / "prom"
    shared.mkdir()
    server = start_server(tmp_path / "data", demo_db, {"PROMETHEUS_MULTIPROC_DIR": str(shared)})
    try:
        job = create_job(server.url, demo_cids[:10])
        assert list(iter_lines(server.url, job["job_id"]))[-1]["type"] == "complete"
        samples = scrape(server)
        assert value(samples, "trace_jobs_created_total") == 1
        assert value(samples, "trace_streams_finished_total", outcome="complete") == 1
        assert value(samples, "trace_active_streams") == 0
        assert any(shared.glob("*.db")), "the samples are in the shared directory"
    finally:
        server.stop()
