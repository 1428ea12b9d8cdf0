"""What a request says, checked: query parameters, the body (within its size and time
limits), its media type, and the job and export requests it carries. Everything a client
gets wrong is a `BadRequest` (or a more precise problem) before any work is done."""

from __future__ import annotations

import asyncio
import decimal
import re

import msgspec
from starlette.requests import Request

from svc import protocol as p
from svc.core.filters import explain_wire_error
from svc.core.select import explain_wire_error as explain_select_error
from svc.errors import (
    BadRequest,
    InvalidFilter,
    InvalidSelect,
    PayloadTooLarge,
    RequestTimeout,
    TooManyCids,
    UnsupportedMediaType,
)
from svc.http import limits
from svc.http.app_state import service_of

# ASCII digits only (str.isdigit() also takes "²"), and short: int() of thousands of
# digits is slow, and above 4,300 it raises.
_DIGITS = re.compile(rf"[0-9]{{1,{limits.MAX_DIGITS}}}")
STREAM_FORMATS = ("objects", "arrays")
PAGE_FORMATS = ("objects", "arrays", "csv")


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}")
    return int(raw)


def offset_param(request: Request) -> int | None:
    """`offset`, when given: where a page or a download enters a domain."""
    if "offset" not in request.query_params:
        return None
    return int_param(request, "offset", 0, 0, limits.MAX_OFFSET)


def flag(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw not in ("0", "1"):
        raise BadRequest(f"{name} must be 0 or 1")
    return raw == "1"


def format_param(request: Request, allowed: tuple[str, ...]) -> str:
    fmt = request.query_params.get("format", "objects")
    if fmt not in allowed:
        raise BadRequest(f"format must be {', '.join(allowed[:-1])} or {allowed[-1]}")
    return fmt


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused as soon as it is known to exceed `limit` bytes, or when it
    has not arrived within the body timeout."""
    declared = request.headers.get("content-length")
    if declared is not None and _DIGITS.fullmatch(declared) and int(declared) > limit:
        raise PayloadTooLarge(f"the body may hold at most {limit} bytes")
    body = bytearray()
    timeout = service_of(request).settings.body_timeout
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body.extend(chunk)
                if len(body) > limit:
                    raise PayloadTooLarge(f"the body may hold at most {limit} bytes")
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {timeout} s") from None
    return bytes(body)


def check_media_type(request: Request) -> None:
    # Also what stops a cross-site HTML form (text/plain) from creating jobs.
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType()


def validate_cids(cids: list[str]) -> None:
    if not cids:
        raise BadRequest("container_ids must not be empty")
    most = limits.MAX_CID_CHARS
    for cid in cids:
        if not cid or len(cid) > most or not cid.isprintable() or cid != cid.strip():
            raise BadRequest(
                f"each container id must be 1-{most} printable characters "
                "without surrounding spaces"
            )


async def read_job_request(request: Request, max_cids: int) -> p.JobRequest:
    """The body of `POST /api/trace/job`, decoded and its CIDs checked."""
    check_media_type(request)
    body = await read_body(request, limits.job_body_bytes(max_cids))
    # Every CID is a JSON string: two quotes each.
    if body.count(b'"') // 2 > limits.job_body_strings(max_cids):
        raise TooManyCids(f"at most {max_cids} container ids")
    req = decode_job_request(body)
    await asyncio.to_thread(validate_cids, req.container_ids)
    return req


_raw_decoder = msgspec.json.Decoder(float_hook=decimal.Decimal)


def _raw_member(body: bytes, name: str) -> object:
    """The body's `name` (`where`, `select`) as plain JSON values (numbers as decimals:
    1e400 too), or None where even that does not decode (arrays nested past the decoder's
    depth)."""
    try:
        raw = _raw_decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    return raw.get(name) if isinstance(raw, dict) else None


def decode_job_request(body: bytes) -> p.JobRequest:
    try:
        return p.job_request_decoder.decode(body)
    except msgspec.ValidationError as exc:
        if "at `$.where" in str(exc):  # say which column, which msgspec's path does not
            raise InvalidFilter(
                explain_wire_error(_raw_member(body, "where"), f"invalid where: {exc}")
            ) from None
        if "at `$.select" in str(exc):
            detail = explain_select_error(_raw_member(body, "select"), f"invalid select: {exc}")
            raise InvalidSelect(detail) from None
        raise BadRequest(f"invalid job request: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise BadRequest("the body must be a JSON object in UTF-8") from None


async def read_export_request(request: Request) -> p.ExportRequest:
    """The body of `POST .../exports`, decoded."""
    check_media_type(request)
    body = await read_body(request, limits.EXPORT_BODY_BYTES)
    try:
        return msgspec.json.decode(body, type=p.ExportRequest)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid export request: {exc}") from None
    except msgspec.DecodeError:
        raise BadRequest("the body must be a JSON object in UTF-8") from None
