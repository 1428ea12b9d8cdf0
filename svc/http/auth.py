"""Who is calling: API keys (`TRACE_API_KEYS`) and the owner fingerprint a job is kept under.

With keys on, a job belongs to the key that created it: the store keeps only the key's
fingerprint (`owner_of`), and another key's request for the job is answered as if the job
did not exist.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from svc.errors import Unauthorized


def owner_of(api_key: str | None) -> str | None:
    """A stable, non-reversible fingerprint of the API key that created a job."""
    return None if api_key is None else hashlib.sha256(api_key.encode()).hexdigest()[:16]


def authorize(request: Request) -> str | None:
    """The caller's owner fingerprint; raises Unauthorized when keys are on and none match.

    The key comes in `Authorization: Bearer KEY` or `X-Api-Key: KEY`; an empty header is
    no header, and two headers that name different keys are refused.
    """
    keys = request.app.state.service.settings.api_keys
    if not keys:
        return None
    auth = request.headers.get("authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    header = request.headers.get("x-api-key", "").strip()
    if bearer and header and not hmac.compare_digest(bearer.encode(), header.encode()):
        raise Unauthorized("Authorization and X-Api-Key name different keys")
    given = bearer or header
    if given:
        for key in keys:
            if hmac.compare_digest(given.encode(), key.encode()):
                return owner_of(key)
    raise Unauthorized()
