"""Walks over a job's stream and pages that end early on purpose: a client cut after some
lines or bytes, and REST paging by `next` to the end."""

from __future__ import annotations

import json
import random
import re
import zlib
from typing import Any

import httpx

from tests.support.jobs import Line, iter_lines, last_since
from tests.support.servers import ServerProcess


def read_until_cut(server: ServerProcess, job_id: str, since: str | None, k: int) -> list[Line]:
    """Read k lines of a stream, then drop the connection."""
    got = []
    for line in iter_lines(server.url, job_id, since):
        got.append(line)
        if len(got) == k:
            break
    return got


def read_bytes_then_cut(
    server: ServerProcess, job_id: str, since: str | None, limit: int, encoding: str = "identity"
) -> tuple[list[Line], bool]:
    """Read about `limit` raw bytes (compressed ones, with gzip), keep the complete lines
    they decode to, drop the connection."""
    params = {"since": since} if since else {}
    buf = b""
    url = f"{server.url}/api/trace/job/{job_id}/stream"
    gunzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
    headers = {"Accept-Encoding": encoding}
    with httpx.stream("GET", url, params=params, headers=headers, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers.get("content-encoding", "identity") == encoding
        seen = 0
        for chunk in r.iter_raw(4096):
            seen += len(chunk)
            buf += gunzip.decompress(chunk) if encoding == "gzip" else chunk
            if seen >= limit:
                break
    complete_lines = buf.split(b"\n")[:-1]  # the last piece may be a partial line
    lines = [json.loads(x) for x in complete_lines if x]
    return lines, bool(lines) and lines[-1]["type"] == "complete"


def read_through_random_cuts(
    server: ServerProcess, job_id: str, seed: int, most: int, encoding: str = "identity"
) -> tuple[list[list[Line]], int]:
    """A stream read to its `complete` line through cuts at random byte counts below `most`,
    each resumed with the newest `since`: the parts read, and how many cuts it took."""
    rng = random.Random(seed)
    since: str | None = None
    parts: list[list[Line]] = []
    for cuts in range(200):
        lines, done = read_bytes_then_cut(server, job_id, since, rng.randrange(1, most), encoding)
        parts.append(lines)
        since = last_since(lines) or since
        if done:
            return parts, cuts
    raise AssertionError("the stream never completed")


def page_walk(server: ServerProcess, job_id: str, domain: str, limit: int) -> list[Any]:
    """Every row of a domain by REST pages, following `next` (and its Link header)."""
    rows: list[Any] = []
    url: str | None = f"{server.url}/api/trace/job/{job_id}/result?domain={domain}&limit={limit}"
    while url:
        r = httpx.get(url, timeout=30)
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["domain"] == domain and page["limit"] == limit
        rows.extend(tuple(rec.values()) for rec in page["data"])
        if page["next"] is None:
            assert "link" not in r.headers
            url = None
        else:
            assert len(page["data"]) == limit
            link = re.fullmatch(r'<([^>]+)>; rel="next"', r.headers["link"])
            assert link is not None and page["next"] in link.group(1)
            url = server.url + link.group(1)
    return rows
