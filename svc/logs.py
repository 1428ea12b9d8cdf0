"""Logs: one line per finished request or stream, JSON or human-readable text.

Every request gets an id: the caller's `X-Request-ID` when it is short and printable
(1-64 visible ASCII characters), else a new one; it is echoed back in the response's
`X-Request-ID` header and is in every line logged while the request runs. At INFO no
line holds a container id, a token, an API key or a secret: requests are logged by
path (never the query string, where tokens travel) and streams by job id and counts.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access = logging.getLogger("svc.access")

_VALID_ID = re.compile(r"[!-~]{1,64}")


@dataclass
class RequestContext:
    """What the access line of one request says; a stream fills in its part."""

    request_id: str
    streamed: bool = False  # the stream logs its own line when it ends


current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "trace_request", default=None
)


def request_id() -> str | None:
    ctx = current.get()
    return None if ctx is None else ctx.request_id


def _request_id(given: str | None) -> str:
    if given is not None and _VALID_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


class RequestLogMiddleware:
    """Pure ASGI: a request id for every HTTP request, echoed back, and an access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        ctx = RequestContext(_request_id(given))
        token = current.set(ctx)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", ctx.request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current.reset(token)
            if not ctx.streamed:
                path_params = scope.get("path_params") or {}
                fields: dict[str, Any] = {
                    "request_id": ctx.request_id,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                }
                if "job_id" in path_params:
                    fields["job_id"] = path_params["job_id"]
                access.info("request", extra={"fields": fields})


@dataclass
class StreamLog:
    """The line a finished stream logs (see `svc.metrics.StreamStats`)."""

    request_id: str | None
    job_id: str
    resumed: bool
    format: str
    started: float = field(default_factory=time.perf_counter)

    def emit(self, domain: str | None, records: int, nbytes: int, outcome: str) -> None:
        fields = {
            "request_id": self.request_id,
            "job_id": self.job_id,
            "domain": domain,
            "format": self.format,
            "records": records,
            "bytes": nbytes,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 1),
            "outcome": outcome,
            "resumed": self.resumed,
        }
        access.info("stream", extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, then the line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id()
        if rid is not None:
            out["request_id"] = rid
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """For people at a terminal: `time LEVEL logger: message key=value ...`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", {})
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        return text


def configure(fmt: str | None, level: int = logging.INFO) -> str:
    """Log to stderr in `fmt` (`json` or `text`; None: text on a terminal, else json)."""
    if fmt is None:
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return fmt
