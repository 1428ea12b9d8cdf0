"""Pure logic shared by the sync and async clients: line framing, de-duplication across
resumes, the retry budget and HTTP status handling. No I/O here."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from svc import protocol as p
from svc.client.errors import (
    DigestMismatch,
    JobExpired,
    ProblemError,
    RetriesExhausted,
    StreamError,
)
from svc.core import digest
from svc.core.tokens import peek_chain

# Failures that a new request may cure. (LocalProtocolError, UnsupportedProtocol: not.)
RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
_KNOWN = frozenset(
    {"meta", "domain_start", "records", "domain_end", "aggregation", "complete", "error"}
    | {"reconnect", "aggregating"}
)


@dataclass(frozen=True)
class Retry:
    """The retry budget: at most `attempts` failures in a row and `seconds` spent failing;
    both start again whenever records arrive. Waits grow from `base` to `cap` (jittered)."""

    attempts: int = 8
    seconds: float = 120.0
    base: float = 0.25
    cap: float = 10.0


class Budget:
    def __init__(self, policy: Retry, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self.failures = 0
        self.started = clock()
        self.waited = 0.0

    def progress(self) -> None:
        self.failures = 0
        self.started = self.clock()
        self.waited = 0.0

    def fail(self, reason: str, retry_after: float | None, since: str | None) -> float:
        """The wait before the next attempt, or RetriesExhausted."""
        self.failures += 1
        if self.failures > self.policy.attempts:
            raise RetriesExhausted(self.failures, since, reason)
        if retry_after is not None:
            delay = retry_after
        else:
            ceiling = min(self.policy.cap, self.policy.base * 2 ** (self.failures - 1))
            delay = ceiling * random.uniform(0.5, 1.0)
        # Elapsed time counts the waits even when `sleep` is a stand-in that does not wait.
        spent = max(self.clock() - self.started, self.waited)
        if spent + delay > self.policy.seconds:
            raise RetriesExhausted(self.failures, since, reason)
        self.waited += delay
        return delay


DEFAULT_RETRY = Retry()


def as_retry(retries: Retry | int) -> Retry:
    return Retry(attempts=retries) if isinstance(retries, int) else retries


def retry_after(value: str | None) -> float | None:
    """Seconds of a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Problem(msgspec.Struct):
    code: str = ""
    detail: str = ""


def check_status(
    response: httpx.Response, job_id: str | None = None, since: str | None = None
) -> float | None:
    """For a read, non-2xx answer: its Retry-After when worth retrying, else ProblemError
    (JobExpired for a 410 job_expired, with the job and the caller's last `since`)."""
    status = response.status_code
    if status in RETRYABLE_STATUSES:
        return retry_after(response.headers.get("retry-after"))
    try:
        body = msgspec.json.decode(response.content, type=_Problem)
    except msgspec.MsgspecError:
        body = _Problem()
    code, detail = body.code or f"http_{status}", body.detail or response.reason_phrase
    if status == 410 and code == "job_expired":
        raise JobExpired(status, code, detail, job_id or "?", since)
    raise ProblemError(status, code, detail)


class Resume(Exception):
    """The current connection is done; reconnect with the last since (after `delay`)."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class LineBuffer:
    """Splits a byte stream into complete lines; a trailing partial line is held back."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        if b"\n" not in chunk:
            self._pieces.append(chunk)
            return []
        self._pieces.append(chunk)
        lines = b"".join(self._pieces).split(b"\n")
        rest = lines.pop()
        self._pieces = [rest] if rest else []
        return lines

    @property
    def pending(self) -> bool:
        return bool(self._pieces)


class _Kind(msgspec.Struct):
    type: str = ""


_kind_decoder = msgspec.json.Decoder(_Kind)


class _RecordsData(msgspec.Struct):
    data: msgspec.Raw  # the exact bytes of a records line's data value, which the digest hashes


_data_decoder = msgspec.json.Decoder(_RecordsData)


def decode_line(raw: bytes) -> p.Line | None:
    """A protocol line, or None for a line type this client does not know (a newer
    server's)."""
    try:
        return p.line_decoder.decode(raw)
    except msgspec.ValidationError:
        try:
            kind = _kind_decoder.decode(raw).type
        except msgspec.MsgspecError:
            kind = ""
        if kind and kind not in _KNOWN:
            return None
        raise Resume("malformed line") from None
    except msgspec.DecodeError:
        raise Resume("malformed line") from None


class StreamState:
    """What the caller has seen of one job's stream, across any number of connections.

    `feed` returns the line to hand on, or None for a line the caller already has (the
    `meta` and `domain_start` a resume re-sends; a `domain_end` re-sent after a resume at a
    domain's last batch; a second `aggregating`), or an unknown line type. A `domain_start`
    is handed on again only when it brings the total for the first time. `reconnect` and
    retryable `error` lines raise Resume; a non-retryable `error` raises StreamError.

    `chain` is the records digest's chain over the records lines handed on (from the chain
    in the `since` it started from; None: not known), checked against `complete`'s digest:
    a mismatch raises DigestMismatch. A heartbeat's `since` (a bookmark) moves `since` on.
    """

    def __init__(self, since: str | None) -> None:
        self.since = since
        self.chain: bytes | None = digest.START if since is None else peek_chain(since)
        self.meta = False
        self.totals: dict[str, int | None] = {}  # domain_start handed on, with its total
        self.batches: dict[str, int] = {}  # last records batch handed on, per domain
        self.ended: set[str] = set()
        self.aggregating = False  # an `aggregating` line handed on
        self.aggregated = False
        self.complete = False

    def params(self, arrays: bool) -> dict[str, str]:
        params = {"since": self.since} if self.since else {}
        if arrays:
            params["format"] = "arrays"
        return params

    def feed(self, raw: bytes) -> p.Line | None:
        if not raw.strip():
            return None
        line = decode_line(raw)
        if line is None:
            return None
        if isinstance(line, p.Heartbeat):  # liveness, perhaps a bookmark: nothing to hand on
            self.since = line.since or self.since
            return None
        if isinstance(line, p.Records):
            if line.domain in self.ended or line.batch <= self.batches.get(line.domain, 0):
                return None
            self.batches[line.domain] = line.batch
            self.since = line.since
            if self.chain is not None:
                self.chain = digest.chain(self.chain, memoryview(_data_decoder.decode(raw).data))
            return line
        if isinstance(line, p.DomainStart):
            if line.domain not in self.totals:
                self.totals[line.domain] = line.total
                return line
            if self.totals[line.domain] is None and line.total is not None:
                self.totals[line.domain] = line.total
                return line
            return None
        if isinstance(line, p.Meta):
            if self.meta:
                return None
            self.meta = True
            return line
        if isinstance(line, p.DomainEnd):
            if line.domain in self.ended:
                return None
            self.ended.add(line.domain)
            return line
        if isinstance(line, p.Aggregating):  # once: a resume may say it again
            if self.aggregating or self.aggregated:
                return None
            self.aggregating = True
            return line
        if isinstance(line, p.Aggregation):
            if self.aggregated:
                return None
            self.aggregated = True
            return line
        if isinstance(line, p.Complete):
            if line.digest is not None and self.chain is not None:
                if line.digest != self.chain.hex():
                    raise DigestMismatch(line.digest, self.chain.hex(), self.since)
            self.complete = True
            return line
        if isinstance(line, p.Reconnect):
            self.since = line.since or self.since
            raise Resume(f"reconnect ({line.reason})", delay=0.0)
        assert isinstance(line, p.Error)
        if not line.retryable:
            raise StreamError(line.code, line.message, self.since)
        self.since = line.since or self.since
        raise Resume(f"error line {line.code}")


def page_params(
    domain: str, limit: int | None, since: str | None, offset: int | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"domain": domain}
    if limit is not None:
        params["limit"] = limit
    if since is not None:
        params["since"] = since
    if offset is not None:
        params["offset"] = offset
    return params


class _PageData(msgspec.Struct):
    data: msgspec.Raw


_page_data_decoder = msgspec.json.Decoder(_PageData)


def page_chain(since: str | None, offset: int | None) -> bytes | None:
    """The digest's chain before the first page a walk asks for (None: not known)."""
    if since is not None:
        return peek_chain(since)
    return None if offset else digest.START


def check_page(body: bytes, page: p.Page, chain: bytes | None, since: str | None) -> bytes | None:
    """The chain after `page` (whose JSON is `body`); DigestMismatch if the page's digest
    says otherwise."""
    if chain is None or page.digest is None:
        return None
    if page.data:
        chain = digest.chain(chain, memoryview(_page_data_decoder.decode(body).data))
    if page.digest != chain.hex():
        raise DigestMismatch(page.digest, chain.hex(), since)
    return chain
