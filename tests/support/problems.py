"""Error responses: an RFC 9457 problem with its code, and nothing internal in it."""

from __future__ import annotations

from typing import Any

import httpx

LEAKS = ("Traceback", "sqlite", "SELECT", "MES_CONTAINER", 'File "', "secret")


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["status"] == status and body["title"]
    assert not any(leak in r.text for leak in LEAKS), r.text
    if status == 503:
        assert int(r.headers["retry-after"]) >= 1
    return body
