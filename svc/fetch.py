"""`fetch JOB_URL -o FILE`: download a job's NDJSON stream, resuming after any drop.

The file itself is the checkpoint: on start, an existing FILE is resumed from the last
`since` it holds (a half-written last line is cut off first). Lines the server re-sends
on a resume (`meta`, the current `domain_start`) are not written twice. Uses only the
standard library, so the client runs wherever the package is installed.
"""

from __future__ import annotations

import json
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any

_ONCE_PER_DOMAIN = ("domain_start", "domain_end")


def _checkpoint(path: Path) -> tuple[str | None, bool, set[tuple[str, str]]]:
    """(last since, complete?, (type, domain) of every line type written) of a file.

    A half-written last line is cut off first.
    """
    if not path.exists():
        return None, False, set()
    data = path.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    if len(keep) != len(data):
        path.write_bytes(keep)
    since, done, written = None, False, set()
    for raw in keep.splitlines():
        line = json.loads(raw)
        since = line.get("since") or since
        done = line["type"] == "complete"
        written.add((line["type"], line.get("domain", "")))
    return since, done, written


class _Progress:
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.totals: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.last = 0.0

    def update(self, line: dict[str, Any], force: bool = False) -> None:
        if line["type"] == "domain_start":
            self.totals[line["domain"]] = line["total"] or 0  # None until counted
            self.counts.setdefault(line["domain"], 0)
        elif line["type"] == "records":
            self.counts[line["domain"]] = self.counts.get(line["domain"], 0) + len(line["data"])
        now = time.monotonic()
        if force or now - self.last > 0.2:
            self.last = now
            parts = [f"{d} {self.counts[d]:,}/{self.totals.get(d, 0):,}" for d in self.counts]
            self.out.write("\r" + "  ".join(parts) + " " * 8)
            self.out.flush()


def fetch(job_url: str, output: Path, *, api_key: str | None = None, attempts: int = 20) -> int:
    """Download the job at `job_url` (…/api/trace/job/ID) into `output`; 0 on success."""
    stream_url = job_url.rstrip("/") + "/stream"
    since, done, written = _checkpoint(output)
    if done:
        print(f"{output} is already complete", file=sys.stderr)
        return 0
    progress = _Progress(sys.stderr)
    failures = 0
    with output.open("ab") as out:
        while failures < attempts:
            url = stream_url + ("?" + urllib.parse.urlencode({"since": since}) if since else "")
            req = urllib.request.Request(url, headers={"Accept": "application/x-ndjson"})
            if api_key:
                req.add_header("Authorization", f"Bearer {api_key}")
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    for raw in resp:
                        line = json.loads(raw)
                        kind = line["type"]
                        if kind == "error":
                            print(
                                f"\nserver error {line['code']}: {line['message']}", file=sys.stderr
                            )
                            if not line["retryable"]:
                                return 1
                            break
                        if kind == "reconnect":
                            break
                        progress.update(line)  # a repeated domain_start may bring the total
                        if kind == "meta" or kind in _ONCE_PER_DOMAIN:
                            seen = (kind, line.get("domain", ""))
                            if seen in written:  # re-sent (resume, late total): in the file
                                continue
                            written.add(seen)
                        out.write(raw if raw.endswith(b"\n") else raw + b"\n")
                        if kind == "records":
                            since = line["since"]
                            out.flush()
                            failures = 0
                        if kind == "complete":
                            progress.update(line, force=True)
                            print(f"\nwrote {output}", file=sys.stderr)
                            return 0
            except urllib.error.HTTPError as exc:
                body = exc.read().decode("utf-8", "replace")
                if exc.code != 503:
                    print(f"\nHTTP {exc.code}: {body}", file=sys.stderr)
                    return 1
            except (OSError, ValueError) as exc:  # dropped connection, truncated line
                print(f"\nconnection lost ({exc.__class__.__name__}); resuming", file=sys.stderr)
            failures += 1
            time.sleep(min(10.0, 0.2 * 2**failures) * random.uniform(0.5, 1.0))
    print("\ngave up after repeated failures; run again to resume", file=sys.stderr)
    return 2
