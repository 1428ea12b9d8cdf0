"""`trace-svc fetch JOB_URL -o FILE`: download a job with the Python client, resumably.

NDJSON (default): FILE holds the stream's lines. It is its own checkpoint: a rerun reads
FILE's tail (from the end, never the whole file), cuts a half-written last line, and
resumes after the last `records` line; the `meta` and `domain_start` the server re-sends on
a resume, and lines FILE already holds after its last records line, are not written twice.

`--records-only`: FILE holds JSON Lines, one record per line with its domain first,
`{"_domain": "history", "CONTAINERID": ...}` (`pandas.read_json(FILE, lines=True)`). The
checkpoint is the sidecar `FILE.since`, replaced atomically after each batch: the last
`since`, FILE's length at that point (a rerun first cuts FILE back to it) and the counts.

FILE belongs to one job: its `meta` line (NDJSON) or its sidecar (records only) names it, and
a FILE of another job, or one that is not a download, is refused unless `overwrite`.

Exit codes: 0 complete, 1 permanent failure (the answer will not change: unknown job,
bad key, non-retryable stream error, another job's FILE, a service that cannot be reached
at all), 2 retries exhausted (run again to resume), 130 interrupted (Ctrl-C; run again to
resume).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

import httpx
import msgspec

from svc import protocol as p
from svc.client import (
    Job,
    ProblemError,
    RetriesExhausted,
    StreamError,
    TraceClient,
    TraceClientError,
)
from svc.client.progress import Progress, make_progress

EXIT_OK, EXIT_FAILED, EXIT_RETRY, EXIT_INTERRUPTED = 0, 1, 2, 130
DOMAIN_KEY = "_domain"
_JOB_PATH = "/api/trace/job/"


def split_job_url(job_url: str) -> tuple[str, str]:
    """`http://host/prefix/api/trace/job/ID` → (`http://host/prefix`, `ID`)."""
    base, sep, job_id = job_url.rstrip("/").rpartition(_JOB_PATH)
    if not sep or not job_id or "/" in job_id:
        raise ValueError(f"not a job URL (…{_JOB_PATH}ID): {job_url}")
    return base, job_id


@dataclass
class Checkpoint:
    since: str | None = None
    complete: bool = False
    domain: str | None = None  # the domain of `since`
    held: int = 0  # records of `domain` already in the file
    skip: set[tuple[str, str]] = field(default_factory=set)  # (type, domain) not to re-write


# --- NDJSON: the file's tail is the checkpoint --------------------------------------------


def _cut_partial_line(f: BinaryIO) -> int:
    """Truncate a half-written last line; the file's new size."""
    size = f.seek(0, os.SEEK_END)
    pos = size
    while pos > 0:
        step = min(65536, pos)
        f.seek(pos - step)
        block = f.read(step)
        newline = block.rfind(b"\n")
        if newline >= 0:
            keep = pos - step + newline + 1
            if keep != size:
                f.truncate(keep)
            return keep
        pos -= step
    f.truncate(0)
    return 0


def _lines_backward(f: BinaryIO, size: int) -> Iterator[bytes]:
    """The file's complete lines, last first, reading blocks from the end."""
    pos, head, step = size, b"", 65536
    while pos > 0:
        n = min(step, pos)
        pos -= n
        f.seek(pos)
        parts = (f.read(n) + head).split(b"\n")
        head = parts[0]
        for line in reversed(parts[1:]):
            if line:
                yield line
        step = min(step * 2, 1 << 23)
    if head:
        yield head


def ndjson_checkpoint(path: Path) -> Checkpoint:
    check = Checkpoint()
    if not path.exists():
        return check
    with path.open("r+b") as f:
        size = _cut_partial_line(f)
        last: dict[str, Any] | None = None
        for raw in _lines_backward(f, size):
            line = msgspec.json.decode(raw)
            kind = line["type"]
            if kind == "complete":
                check.complete = True
                return check
            if kind != "records":
                if last is None:
                    check.skip.add((kind, line.get("domain", "")))
                continue
            if last is None:  # the checkpoint
                last = line
                check.since, check.domain = line["since"], line["domain"]
                check.held = len(line["data"])
                check.skip |= {("meta", ""), ("domain_start", line["domain"])}
                if line["batch"] == 1:
                    break
            else:  # the batch before it is a full one: batch size × batches
                check.held += (last["batch"] - 1) * len(line["data"])
                break
    return check


# --- records only: the sidecar is the checkpoint ------------------------------------------


class _Sidecar(msgspec.Struct):
    since: str | None
    bytes: int
    counts: dict[str, int]
    complete: bool = False
    job: str | None = None  # None: written before sidecars named their job


def _sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".since")


def _save_sidecar(path: Path, state: _Sidecar) -> None:
    target = _sidecar_path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(msgspec.json.encode(state))
    os.replace(tmp, target)


def records_checkpoint(path: Path) -> tuple[_Sidecar, Checkpoint]:
    side = _sidecar_path(path)
    state = _Sidecar(None, 0, {})
    if side.exists():
        state = msgspec.json.decode(side.read_bytes(), type=_Sidecar)
    if path.exists():
        with path.open("r+b") as f:
            f.truncate(state.bytes)  # lines written after the last checkpoint go
    check = Checkpoint(state.since, state.complete)
    return state, check


# --- whose file is it? --------------------------------------------------------------------

_META_START = b'{"type":"meta"'
_FIRST_LINE_MAX = 1 << 20  # a meta line holds the job's filters at most: bounded


class ForeignFile(Exception):
    """The output file is another job's download, or not a download at all."""


def _ndjson_owner(path: Path) -> str | None:
    """The job of an NDJSON download (None: empty, or its first line not written yet)."""
    with path.open("rb") as f:
        head = f.read(_FIRST_LINE_MAX)
    first, newline, _ = head.partition(b"\n")
    if not newline:  # no whole line: a download cut inside its meta line, or no download
        if _META_START.startswith(first[: len(_META_START)]):
            return None
        raise ForeignFile("its first line is not a stream's meta line")
    try:
        meta = msgspec.json.decode(first)
    except msgspec.DecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("type") != "meta" or "job_id" not in meta:
        raise ForeignFile("its first line is not a stream's meta line")
    return str(meta["job_id"])


def check_owner(output: Path, job_id: str, records_only: bool) -> None:
    """Raise ForeignFile when `output` holds another job's download, or is no download."""
    side = _sidecar_path(output)
    has_data = output.exists() and output.stat().st_size > 0
    if records_only:
        if side.exists():
            try:
                owner = msgspec.json.decode(side.read_bytes(), type=_Sidecar).job
            except msgspec.MsgspecError:
                raise ForeignFile(f"its checkpoint {side.name} is unreadable") from None
        elif has_data:
            raise ForeignFile(f"it has no checkpoint {side.name} (not a --records-only download)")
        else:
            owner = None
    else:
        owner = _ndjson_owner(output) if has_data else None
    if owner is not None and owner != job_id:
        raise ForeignFile(f"it holds job {owner}'s download, not job {job_id}'s")


def _remove(output: Path) -> None:
    output.unlink(missing_ok=True)
    _sidecar_path(output).unlink(missing_ok=True)


def _first_contact(base: str, job_id: str, api_key: str | None) -> None:
    """Fail fast when nothing answers at `base` (a wrong host or port), instead of spending
    the retry budget meant for a stream that drops part-way."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with httpx.Client(timeout=httpx.Timeout(30, connect=5), headers=headers) as http:
            http.get(f"{base}{_JOB_PATH}{job_id}")
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as exc:
        raise ConnectionError(f"cannot connect to {base}: {exc or type(exc).__name__}") from exc
    except httpx.HTTPError:
        pass  # anything else: the retrying client deals with it


# --- the download -------------------------------------------------------------------------


def _held_before(job: Job, domain: str | None, held: int) -> dict[str, int]:
    """Records the file holds per domain: every domain before `domain` is complete."""
    out: dict[str, int] = {}
    if domain is None:
        return out
    for name in job.domains:
        if name == domain:
            out[name] = held
            break
        out[name] = job.totals[name].records if name in job.totals else 0
    return out


def _download(
    client: TraceClient,
    job_id: str,
    output: Path,
    records_only: bool,
    progress_out: IO[str],
    replace: bool,
) -> int:
    job = client.job(job_id)  # an unknown job fails here, before any file exists
    if replace:  # --overwrite of another job's file: only once this job is known to exist
        _remove(output)
    state: _Sidecar | None = None
    if records_only:
        state, check = records_checkpoint(output)
        state.job = job_id
        held = dict(state.counts)
    else:
        check = ndjson_checkpoint(output)
        held = _held_before(job, check.domain, check.held)
    if check.complete:
        print(f"{output} is already complete", file=sys.stderr)
        return EXIT_OK
    totals = {d: job.totals[d].records if d in job.totals else None for d in job.domains}
    progress: Progress = make_progress(progress_out, totals, held)
    encoder = msgspec.json.Encoder()
    written = sum(held.values())
    with output.open("ab") as out, progress:
        for line in client.iter_lines(job_id, since=check.since):
            kind = line.__struct_config__.tag
            domain = getattr(line, "domain", "")
            if isinstance(line, p.DomainStart):
                progress.total(line.domain, line.total)
            elif isinstance(line, p.Records):
                progress.advance(line.domain, len(line.data))
                written += len(line.data)
            elif isinstance(line, p.DomainEnd):
                progress.total(line.domain, line.total_records)
            elif isinstance(line, p.Aggregating):  # a state, not data: not in the file
                progress.status(f"computing aggregations ({', '.join(line.domains)})...")
                continue
            if records_only:
                assert state is not None
                if isinstance(line, p.Records):
                    prefix = {DOMAIN_KEY: line.domain}
                    text = b"\n".join(encoder.encode(prefix | r) for r in line.data)
                    out.write(p.escape_line_separators(text) + b"\n")  # as the server's lines
                    out.flush()
                    state.since, state.bytes = line.since, out.tell()
                    state.counts[line.domain] = state.counts.get(line.domain, 0) + len(line.data)
                    _save_sidecar(output, state)
                elif isinstance(line, p.Complete):
                    state.complete = True
                    _save_sidecar(output, state)
            elif (str(kind), domain) in check.skip:
                check.skip.discard((str(kind), domain))  # in the file already
            else:
                out.write(p.encode_line(line))
                if isinstance(line, p.Records | p.Complete):
                    out.flush()
    print(f"wrote {output}: {written:,} records", file=sys.stderr)
    return EXIT_OK


def fetch(
    job_url: str,
    output: Path,
    *,
    api_key: str | None = None,
    records_only: bool = False,
    overwrite: bool = False,
    progress_out: IO[str] | None = None,
) -> int:
    """Download the job at `job_url` (…/api/trace/job/ID) into `output`; an exit code."""
    try:
        base, job_id = split_job_url(job_url)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILED
    try:
        check_owner(output, job_id, records_only)
        replace = False
    except ForeignFile as exc:
        if not overwrite:
            print(f"refused: {output}: {exc}; give another -o, or --overwrite", file=sys.stderr)
            return EXIT_FAILED
        replace = True
    started = time.monotonic()
    try:
        _first_contact(base, job_id, api_key)
        with TraceClient(base, api_key=api_key) as client:
            out = progress_out or sys.stderr
            code = _download(client, job_id, output, records_only, out, replace)
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ProblemError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except StreamError as exc:
        print(f"failed: {exc} (the file is kept)", file=sys.stderr)
        return EXIT_FAILED
    except RetriesExhausted as exc:
        print(f"{exc}; run the same command again to resume", file=sys.stderr)
        return EXIT_RETRY
    except ConnectionError as exc:
        kept = "the file is kept" if output.exists() else "nothing was downloaded"
        print(f"failed: {exc} ({kept})", file=sys.stderr)
        return EXIT_FAILED
    except (TraceClientError, OSError, msgspec.MsgspecError) as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if code == EXIT_OK:
        print(f"done in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return code
