"""Exports to S3-compatible storage, against moto's S3 server on loopback.

No real S3 (or MinIO) can run here: moto's server mode stands in for it, over real HTTP,
with obstore's real client in the service. What moto does not check: it accepts any
credentials and does not enforce a pre-signed URL's expiry, so those are not verified
here (the URL's `X-Amz-Expires` is).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support import all_cids, create_job, iter_lines, records_of
from tests.support.exports import as_file_values, file_records, finished, start_export
from tests.support.s3 import moto_s3
from tests.support.servers import start_server

BUCKET = "trace-exports"


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    with moto_s3(BUCKET) as env:
        yield env


@pytest.mark.parametrize("fmt", ["ndjson.gz", "csv.zip"])
def test_s3_export_redirects_to_a_presigned_url_and_expires_with_its_job(
    demo_db: Path, tmp_path: Path, s3_env: dict[str, str], fmt: str
) -> None:
    data = tmp_path / "data"
    env = {
        **s3_env,
        "TRACE_EXPORT_STORAGE": f"s3://{BUCKET}/trace",
        "TRACE_EXPORT_URL_SECONDS": "120",
        "TRACE_JOB_TTL_SECONDS": "8",
        "TRACE_JOB_PURGE_SECONDS": "1",
        "TRACE_STREAM_BATCH_SIZE": "700",
    }
    srv = start_server(data, demo_db, env)
    try:
        job = create_job(srv.url, all_cids(demo_db)[:300])
        status = finished(srv.url, start_export(srv.url, job["job_id"], fmt))
        r = httpx.get(srv.url + status["links"]["file"])
        assert r.status_code == 307
        url = r.headers["location"]
        parts = urlsplit(url)
        ext = "zip" if fmt == "csv.zip" else fmt
        key = f"/{BUCKET}/trace/{job['job_id']}/{status['export_id']}.{ext}"
        assert f"{parts.scheme}://{parts.netloc}" == s3_env["AWS_ENDPOINT_URL"]
        assert parts.path == key
        assert parse_qs(parts.query)["X-Amz-Expires"] == ["120"]
        blob = httpx.get(url).content
        assert hashlib.sha256(blob).hexdigest() == status["sha256"]
        truth = records_of(list(iter_lines(srv.url, job["job_id"], format="arrays")))
        assert file_records(fmt, blob) == as_file_values(fmt, truth)
        cut = len(blob) // 3  # S3 serves ranges of the same object
        rest = httpx.get(url, headers={"Range": f"bytes={cut}-"})
        assert rest.status_code == 206 and blob[:cut] + rest.content == blob
        exports_dir = data / "exports"
        assert [p for p in exports_dir.rglob("*") if p.is_file()] == []  # nothing kept here
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the job expires: its object is deleted
            if httpx.get(url).status_code == 404:
                break
            time.sleep(0.3)
        assert httpx.get(url).status_code == 404
    finally:
        srv.stop()
