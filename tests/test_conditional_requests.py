"""Conditional requests: `If-None-Match` with a current ETag answers 304 without a body,
on a job's description and on a finished export's file (before any Range or redirect)."""

from __future__ import annotations

import httpx

from tests.support import create_job
from tests.support.exports import download, finished, start_export
from tests.support.servers import ServerProcess


def _etag_of(url: str) -> str:
    r = httpx.get(url)
    assert r.status_code == 200
    etag = r.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    return etag


def _assert_not_modified(r: httpx.Response, etag: str) -> None:
    assert r.status_code == 304, r.text
    assert r.content == b"" and r.headers["etag"] == etag
    assert "content-type" not in r.headers


def test_a_job_description_answers_304_while_it_is_unchanged(
    server: ServerProcess, demo_cids: list[str]
) -> None:
    job = create_job(server.url, demo_cids[:30])
    url = server.url + job["links"]["self"]
    httpx.get(server.url + job["links"]["stream"], timeout=60)  # the totals are counted
    etag = _etag_of(url)
    assert _etag_of(url) == etag, "the same body, the same ETag"
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        _assert_not_modified(httpx.get(url, headers={"If-None-Match": header}), etag)
    _assert_not_modified(httpx.head(url, headers={"If-None-Match": etag}), etag)
    r = httpx.get(url, headers={"If-None-Match": '"something-else"'})
    assert r.status_code == 200 and r.json()["job_id"] == job["job_id"]
    other = create_job(server.url, demo_cids[30:40])
    assert _etag_of(server.url + other["links"]["self"]) != etag


def test_an_export_file_answers_304_to_its_etag(
    server: ServerProcess, demo_cids: list[str]
) -> None:
    job = create_job(server.url, demo_cids[:30])
    status = finished(server.url, start_export(server.url, job["job_id"], "ndjson.gz"))
    url = server.url + status["links"]["file"]
    etag = f'"{status["sha256"]}"'
    assert _etag_of(url) == etag
    _assert_not_modified(httpx.get(url, headers={"If-None-Match": etag}), etag)
    _assert_not_modified(httpx.head(url, headers={"If-None-Match": etag}), etag)
    # If-None-Match is evaluated before Range (RFC 9110 13.2.2).
    ranged = httpx.get(url, headers={"If-None-Match": etag, "Range": "bytes=0-9"})
    _assert_not_modified(ranged, etag)
    r = httpx.get(url, headers={"If-None-Match": '"stale"'})
    assert r.status_code == 200 and r.content == download(server.url, status)
