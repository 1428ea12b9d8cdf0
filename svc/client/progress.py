"""Progress of `fetch`: rich bars per domain on a terminal, a log line every few seconds
otherwise. Counts start at what the file already held (a resumed download)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

LOG_EVERY_SECONDS = 5.0


class Progress:
    """Plain: one line every LOG_EVERY_SECONDS, and one at the end."""

    def __init__(self, out: IO[str], totals: dict[str, int | None], held: dict[str, int]) -> None:
        self.out = out
        self.totals = dict(totals)
        self.counts = {d: held.get(d, 0) for d in totals}
        self.start_counts = dict(self.counts)
        self.started = self.last = time.monotonic()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.log()

    def total(self, domain: str, total: int | None) -> None:
        if total is not None:
            self.totals[domain] = total

    def advance(self, domain: str, n: int) -> None:
        self.counts[domain] = self.counts.get(domain, 0) + n
        if time.monotonic() - self.last >= LOG_EVERY_SECONDS:
            self.log()

    def status(self, text: str) -> None:
        """A passing state of the download, e.g. "computing aggregations (history)..."."""
        print(f"fetch: {text}", file=self.out, flush=True)

    def log(self) -> None:
        now = time.monotonic()
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        parts = []
        for domain, count in self.counts.items():
            total = self.totals.get(domain)
            rate = (count - self.start_counts.get(domain, 0)) / elapsed
            text = f"{domain} {count:,}/{'?' if total is None else f'{total:,}'}"
            if total:
                text += f" {100 * count / total:.0f}%"
                if rate > 0 and count < total:
                    text += f" {rate:,.0f} rec/s ETA {(total - count) / rate:.0f} s"
            parts.append(text)
        print("fetch: " + ", ".join(parts), file=self.out, flush=True)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rec/s")


class BarProgress(Progress):
    """A rich bar per domain: records vs total, %, rate, ETA."""

    def __init__(self, out: IO[str], totals: dict[str, int | None], held: dict[str, int]) -> None:
        super().__init__(out, totals, held)
        self.bars = RichProgress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            _RateColumn(),
            TimeRemainingColumn(),
            console=Console(file=out),
        )
        self.tasks: dict[str, TaskID] = {
            d: self.bars.add_task(d, total=t, completed=self.counts[d]) for d, t in totals.items()
        }

    def __enter__(self) -> BarProgress:
        self.bars.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.bars.stop()

    def total(self, domain: str, total: int | None) -> None:
        if total is not None and domain in self.tasks:
            self.bars.update(self.tasks[domain], total=total)

    def advance(self, domain: str, n: int) -> None:
        if domain in self.tasks:
            self.bars.advance(self.tasks[domain], n)

    def status(self, text: str) -> None:
        self.bars.console.print(text)


def make_progress(out: IO[str], totals: dict[str, int | None], held: dict[str, int]) -> Progress:
    if out.isatty():
        return BarProgress(out, totals, held)
    return Progress(out, totals, held)
