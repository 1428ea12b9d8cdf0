"""The one domain walk (`svc.engine.walk`), on the real SQLite source: whatever fills the
batches (the database's JSON, rows shaped into records, a file's rows), a domain's batches
carry the same numbers, counts and tokens; a walk resumed at any of its tokens, or at an
offset on a batch boundary, yields exactly the rest, numbered and signed as the whole walk
was; a REST page signs what the walk signs, the records digest's chain included (from an
offset, positions alike and no chain); a draining service stops a walk between
batches, never before its first."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from svc import protocol as p
from svc.config import Settings
from svc.core.domains import load_domains
from svc.core.tokens import Cursor, TokenCodec
from svc.engine.batches import Batches
from svc.engine.positions import Start, start_at
from svc.engine.service import Service
from svc.engine.walk import DomainWalk, Drained
from svc.sources.sqlite import SqliteSource
from svc.store import JobSpec
from svc.store.embedded import EmbeddedJobStore
from tests.support.servers import TEST_SECRET

LIMIT = 40
DOMAIN = "history"
Walked = list[tuple[int, int, str | None, bool, list[Any]]]  # number, seen, since, more, data


def _arrays_line(data: list[Any]) -> bytes:
    """A batch as a `format=arrays` records line holds it: Raw JSON, tuples or rows (whose
    trailing tie-break is dropped) alike."""
    width = len(load_domains()[DOMAIN].columns)
    return p.encode([r if isinstance(r, msgspec.Raw) else r[:width] for r in data])


def _position(service: Service, token: str | None) -> Cursor | None:
    """A token's position, without the digest's chain (which an offset start has not)."""
    if token is None:
        return None
    return msgspec.structs.replace(service.tokens.verify(token), chain=None)


async def _walk(service: Service, spec: JobSpec, start: Start, batches: Batches) -> Walked:
    out: Walked = []
    try:
        async for batch in DomainWalk(service, spec, start, batches, encode=_arrays_line):
            data = json.loads(msgspec.json.encode(batch.data))  # Raw JSON, tuples or rows alike
            out.append((batch.number, batch.seen, batch.since, batch.more, data))
    finally:
        batches.close()
    return out


def _run(
    tmp_path: Path,
    demo_db: Path,
    cids: list[str],
    test: Callable[[Service, JobSpec], Awaitable[None]],
    database_json: bool = True,
) -> None:
    async def run() -> None:
        settings = Settings(batch_size=LIMIT, data_dir=tmp_path, database_json=database_json)
        store = EmbeddedJobStore(tmp_path / "jobs.sqlite3", ttl=600)
        service = Service(
            settings, load_domains(), SqliteSource(str(demo_db)), store, TokenCodec([TEST_SECRET])
        )
        try:
            spec = await service.create_job(cids, [DOMAIN], None)
            await test(service, spec)
        finally:
            await service.close()

    asyncio.run(run())


def _rows(walked: Walked) -> list[list[Any]]:
    """The records as arrays without the tie-break: what the three kinds of data share."""
    width = len(load_domains()[DOMAIN].columns)
    return [row[:width] for *_, data in walked for row in data]


def test_json_rows_and_files_walk_alike_and_resume_at_every_token(
    tmp_path: Path, demo_db: Path, demo_cids: list[str]
) -> None:
    async def test(service: Service, spec: JobSpec) -> None:
        start = Start(DOMAIN)
        built = await _walk(service, spec, start, service.batches(spec, start, arrays=True))
        service.settings = Settings(batch_size=LIMIT, data_dir=tmp_path, database_json=False)
        rows = await _walk(service, spec, start, service.batches(spec, start, arrays=True))
        files = await _walk(service, spec, start, await service.file_rows(spec, start))

        assert len(built) > 3 and built[-1][3] is False
        places = [(n, seen, since, more) for n, seen, since, more, _ in built]
        assert [(n, seen, since, more) for n, seen, since, more, _ in rows] == places
        assert [(n, seen, since, more) for n, seen, since, more, _ in files] == places
        assert [d for *_, d in built] == [d for *_, d in rows]
        assert _rows(files) == [d for *_, data in rows for d in data]
        assert [n for n, *_ in built] == list(range(1, len(built) + 1))
        assert all(len(d) == LIMIT for *_, more, d in built if more)

        for at, (_, _, since, more, _) in enumerate(built):
            if not more:
                break
            resumed = start_at(DOMAIN, service.cursor(spec, since))
            rest = await _walk(service, spec, resumed, await service.file_rows(spec, resumed))
            assert [(n, s, t) for n, s, t, *_ in rest] == [p[:3] for p in places[at + 1 :]]
            assert _rows(rest) == _rows(files[at + 1 :])

        at = 2  # an offset on a batch boundary is numbered as the batches before it
        offset = start_at(DOMAIN, None, offset=at * LIMIT, limit=LIMIT)
        rest = await _walk(service, spec, offset, await service.file_rows(spec, offset))
        assert [(n, s, _position(service, t)) for n, s, t, *_ in rest] == [
            (n, s, _position(service, t)) for n, s, t, _ in places[at:]
        ]
        assert all(service.tokens.verify(t).chain is None for _, _, t, *_ in rest if t)

        for number, (_, seen, since, _, _) in enumerate(built[:-1], start=1):
            after = await service.page(
                spec, DOMAIN, since=since, offset=None, limit=LIMIT, arrays=True
            )
            at_offset = await service.page(
                spec, DOMAIN, since=None, offset=seen - LIMIT, limit=LIMIT, arrays=True
            )
            assert _position(service, at_offset.next) == _position(service, since), number
            if number == 1:  # offset 0 is the domain's start: the chain starts there
                assert at_offset.next == since
            if built[number][3]:  # the page after it is not the last
                assert after.next == built[number][2]  # the chain of its records included
                chain = service.tokens.verify(after.next or "").chain
                assert chain is not None and after.digest == chain.hex()

    _run(tmp_path, demo_db, demo_cids[:120], test)


@pytest.mark.parametrize("database_json", [True, False], ids=["json", "rows"])
def test_a_draining_service_stops_the_walk_between_batches(
    tmp_path: Path, demo_db: Path, demo_cids: list[str], database_json: bool
) -> None:
    async def test(service: Service, spec: JobSpec) -> None:
        start = Start(DOMAIN)
        service.draining.set()  # before the walk: its first batch is still handed out
        batches = service.batches(spec, start, arrays=False)
        walk = DomainWalk(service, spec, start, batches)
        got = []
        with pytest.raises(Drained):
            async for batch in walk:
                got.append(batch.since)
        batches.close()
        assert len(got) == 1 and got[0] is not None
        assert walk.number == 1 and walk.seen == LIMIT

    _run(tmp_path, demo_db, demo_cids[:120], test, database_json)
