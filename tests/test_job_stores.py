"""One contract for every job store, run against the embedded store, a real Redis and a
real 3-master Redis Cluster.

Each test gets a factory of stores that share one backing store (one SQLite file, or one
Redis key prefix), so a second store stands for a restarted process or another replica.
Expiry: the embedded store's clock is moved forward (no sleeping); Redis expires its keys
itself, so its runs wait for real. What the contract cannot see is in
test_job_stores_embedded.py and test_job_stores_redis.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from svc.core.export_record import new_export_id
from svc.errors import ExportNotFound, JobNotFound, TooManyExports, TooManyJobs
from svc.protocol import DomainTotals, Range, Where
from svc.store import JobSpec, new_spec
from tests.support.job_stores import StoreFactory, export_record, job_spec, some_cids

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["embedded", "redis", "cluster"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """stores(ttl=60, refresh_on_access=False) -> a store over this test's backing store."""
    factory = StoreFactory(request.param, request, tmp_path)
    yield factory
    await factory.close()


# -- the contract -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cids",
    [some_cids(2000), ["LOT-0001", "LOT-0002", "lot ä 3"], ["A1B2", "C3D4"]],
    ids=["hex", "text", "upper-hex"],
)
async def test_create_then_get_round_trips(stores: StoreFactory, cids: list[str]) -> None:
    spec = job_spec(cids, owner="0123456789abcdef", snapshot=987654321)
    await stores().create(spec)
    assert await stores().get(spec.job_id) == spec  # another process sees all of it
    assert spec.cids == sorted(set(cids))


async def test_filters_round_trip_to_another_process(stores: StoreFactory) -> None:
    where: Where = {
        "history": {"EVENTNAME": ["Hold", "Release"], "TXNDATE": Range("2025-01-15T00:00:00")},
        "materials": {"QTYCONSUMED": Range(0.5, 10)},
    }
    spec = new_spec(some_cids(300), ["history", "materials"], 60, None, None, where)
    await stores().create(spec)
    got = await stores().get(spec.job_id)  # a fresh store: decoded from the backing store
    assert got == spec and got.where == where
    plain = job_spec()
    await stores().create(plain)
    assert (await stores().get(plain.job_id)).where is None


async def test_selections_round_trip_to_another_process(stores: StoreFactory) -> None:
    select = {"history": ["CONTAINERID", "TXNDATE"], "materials": ["UOM", "CONTAINERID"]}
    spec = new_spec(some_cids(300), ["history", "materials"], 60, None, None, None, select)
    await stores().create(spec)
    got = await stores().get(spec.job_id)  # a fresh store: decoded from the backing store
    assert got == spec and got.select == select
    plain = job_spec()
    await stores().create(plain)
    assert (await stores().get(plain.job_id)).select is None


async def test_get_returns_a_copy(stores: StoreFactory) -> None:
    store = stores()
    spec = job_spec()
    await store.create(spec)
    got = await store.get(spec.job_id)
    got.expires_at = 0
    assert (await store.get(spec.job_id)).expires_at == spec.expires_at


async def test_missing_job(stores: StoreFactory) -> None:
    store = stores()
    with pytest.raises(JobNotFound):
        await store.get("no-such-job")
    assert await store.get_totals("no-such-job") == {}


async def test_totals_are_added_and_replaced(stores: StoreFactory) -> None:
    store = stores()
    spec = job_spec()
    await store.create(spec)
    assert await store.get_totals(spec.job_id) == {}
    await store.put_totals(spec.job_id, "history", DomainTotals(5000, 490))
    await store.put_totals(spec.job_id, "materials", DomainTotals(2500, 480))
    await store.put_totals(spec.job_id, "history", DomainTotals(5001, 491))
    assert await stores().get_totals(spec.job_id) == {
        "history": DomainTotals(5001, 491),
        "materials": DomainTotals(2500, 480),
    }


async def test_aggregations_are_added_and_replaced_per_domain(stores: StoreFactory) -> None:
    store = stores()
    spec = job_spec()
    await store.create(spec)
    assert await store.get_aggregations(spec.job_id, "history") is None
    await store.put_aggregations(spec.job_id, "history", b'{"a":1}')
    await store.put_aggregations(spec.job_id, "materials", b'{"b":2}')
    await store.put_aggregations(spec.job_id, "history", b'{"a":3}')
    other = stores()  # another process or replica
    assert await other.get_aggregations(spec.job_id, "history") == b'{"a":3}'
    assert await other.get_aggregations(spec.job_id, "materials") == b'{"b":2}'
    assert await other.get_aggregations("no-such-job", "history") is None


async def test_aggregations_of_a_missing_or_expired_job_are_not_written(
    stores: StoreFactory,
) -> None:
    store = stores()
    await store.put_aggregations("no-such-job", "history", b"{}")
    assert await stores().get_aggregations("no-such-job", "history") is None
    live, dead = job_spec(ttl=60), job_spec(ttl=0.3)
    for spec in (live, dead):
        await store.create(spec)
        await store.put_aggregations(spec.job_id, "history", b"{}")
    await stores.wait(0.5)
    await store.put_aggregations(dead.job_id, "materials", b"{}")  # ended after expiry
    await store.purge_expired()
    assert await stores().get_aggregations(dead.job_id, "history") is None
    assert await stores().get_aggregations(dead.job_id, "materials") is None
    assert await stores().get_aggregations(live.job_id, "history") == b"{}"


async def test_jobs_expire_after_their_ttl(stores: StoreFactory) -> None:
    store = stores(ttl=1)
    spec = job_spec(ttl=1)
    await store.create(spec)
    assert (await store.get(spec.job_id)).job_id == spec.job_id
    await stores.wait(1.3)
    with pytest.raises(JobNotFound):
        await store.get(spec.job_id)  # the process that created it (and may cache it)
    with pytest.raises(JobNotFound):
        await stores(ttl=1).get(spec.job_id)  # any other


async def test_refresh_on_access_extends_the_ttl(stores: StoreFactory) -> None:
    # Redis keeps real time: gaps between reads of 40 % of the TTL leave a loaded machine
    # (a full CI run) 1.8 s of slack before a key expires between two reads.
    ttl = 3
    refreshing, plain = stores(ttl=ttl, refresh_on_access=True), stores(ttl=ttl)
    kept, lost = job_spec(ttl=ttl), job_spec(ttl=ttl)
    await refreshing.create(kept)
    await plain.create(lost)
    before = stores.now()
    for _ in range(3):  # 3.6 s in all: longer than the TTL, but never 3 s without a read
        await stores.wait(0.4 * ttl)
        got = await refreshing.get(kept.job_id)
        assert got.expires_at >= before + ttl
    with pytest.raises(JobNotFound):
        await plain.get(lost.job_id)
    again = await stores(ttl=ttl, refresh_on_access=True).get(kept.job_id)
    assert again.expires_at == pytest.approx(stores.now() + ttl, abs=0.5)
    assert msgspec.structs.replace(again, expires_at=kept.expires_at) == kept


async def test_concurrent_creation(stores: StoreFactory) -> None:
    store = stores()
    specs = [job_spec(some_cids(300, seed=i)) for i in range(60)]
    await asyncio.gather(*(store.create(s) for s in specs))
    assert len({s.job_id for s in specs}) == 60
    reader = stores()
    got = await asyncio.gather(*(reader.get(s.job_id) for s in specs))
    assert got == specs


async def test_a_reader_never_sees_half_a_job(stores: StoreFactory) -> None:
    spec = job_spec(some_cids(114_892, seed=9))
    writer, reader = stores(), stores()
    seen: list[JobSpec] = []

    async def poll() -> None:
        while not seen:
            try:
                seen.append(await reader.get(spec.job_id))
            except JobNotFound:
                await asyncio.sleep(0)

    poller = asyncio.ensure_future(poll())
    await writer.create(spec)
    await asyncio.wait_for(poller, 10)
    assert seen == [spec]


async def test_totals_of_a_missing_or_expired_job_are_not_written(stores: StoreFactory) -> None:
    store = stores()
    await store.put_totals("no-such-job", "history", DomainTotals(1, 1))
    assert await stores().get_totals("no-such-job") == {}
    spec = job_spec(ttl=0.3)
    await store.create(spec)
    await stores.wait(0.5)  # a count that ends after its job expired (or was purged)
    await store.put_totals(spec.job_id, "history", DomainTotals(5000, 490))
    assert await stores().get_totals(spec.job_id) == {}
    await store.purge_expired()
    await store.put_totals(spec.job_id, "history", DomainTotals(5000, 490))
    assert await stores().get_totals(spec.job_id) == {}


async def test_purge_keeps_live_jobs_and_forgets_expired_ones(stores: StoreFactory) -> None:
    store = stores()
    live, dead = job_spec(ttl=60), job_spec(ttl=0.3)
    for spec in (live, dead):
        await store.create(spec)
        await store.put_totals(spec.job_id, "history", DomainTotals(10, 2))
    await stores.wait(0.5)
    assert await store.purge_expired() >= 0  # Redis expires keys itself and reports 0
    assert await stores().get(live.job_id) == live
    assert await stores().get_totals(live.job_id) == {"history": DomainTotals(10, 2)}
    with pytest.raises(JobNotFound):
        await stores().get(dead.job_id)
    assert await stores().get_totals(dead.job_id) == {}


async def test_quota_of_live_jobs_per_owner(stores: StoreFactory) -> None:
    store = stores()
    for _ in range(3):
        await store.create(job_spec(owner="aaaa"), limit=3)
    with pytest.raises(TooManyJobs) as info:
        await stores().create(job_spec(owner="aaaa"), limit=3)
    assert 55 <= (info.value.retry_after or 0) <= 61  # until the oldest expires
    assert (info.value.status, info.value.code) == (429, "too_many_jobs")
    await store.create(job_spec(owner="bbbb"), limit=3)  # another key has its own quota
    await store.create(job_spec(owner="aaaa"))  # no limit given: not checked
    for _ in range(2):  # anonymous jobs count together
        await store.create(job_spec(owner=None), limit=2)
    with pytest.raises(TooManyJobs):
        await store.create(job_spec(owner=None), limit=2)


async def test_quota_is_atomic_under_concurrent_creation(stores: StoreFactory) -> None:
    writers = [stores(), stores()]  # two processes or replicas
    specs = [job_spec(some_cids(50, seed=i), owner="cccc") for i in range(24)]
    results = await asyncio.gather(
        *(writers[i % 2].create(s, limit=5) for i, s in enumerate(specs)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 5
    assert all(r is None or isinstance(r, TooManyJobs) for r in results)


async def test_quota_frees_as_jobs_expire(stores: StoreFactory) -> None:
    store = stores(ttl=0.4)
    for _ in range(2):
        await store.create(job_spec(ttl=0.4, owner="dddd"), limit=2)
    with pytest.raises(TooManyJobs) as info:
        await store.create(job_spec(ttl=0.4, owner="dddd"), limit=2)
    assert info.value.retry_after == 1  # never less than a second
    await stores.wait(0.6)
    await store.create(job_spec(ttl=0.4, owner="dddd"), limit=2)


# -- exports -------------------------------------------------------------------------------


async def test_export_round_trip_and_versioned_saves(stores: StoreFactory) -> None:
    first, second = stores(), stores()  # two processes or replicas
    export = export_record(owner="ffff")
    await first.create_export(export)
    assert await second.get_export(export.export_id) == export
    mine = await second.get_export(export.export_id)
    theirs = await first.get_export(export.export_id)
    mine.state, mine.worker = "running", "replica-b"
    mine.checkpoint.records = [700, 0]
    saved = await second.save_export(mine)
    assert saved is not None and saved.version == export.version + 1
    theirs.state, theirs.worker = "running", "replica-a"
    assert await first.save_export(theirs) is None  # it read an older version: nothing written
    got = await first.get_export(export.export_id)
    assert (got.worker, got.checkpoint.records, got.version) == ("replica-b", [700, 0], 1)
    with pytest.raises(ExportNotFound):
        await first.get_export("no-such-export")
    assert await first.save_export(export_record()) is None  # never created: not written


async def test_active_exports_follow_their_state(stores: StoreFactory) -> None:
    store = stores()
    queued, running, done = export_record(), export_record(), export_record()
    for export in (queued, running, done):
        await store.create_export(export)
    running.state = "running"
    assert await store.save_export(running) is not None
    done.state = "done"
    assert await store.save_export(done) is not None
    active = await stores().active_exports()
    assert {e.export_id for e in active} >= {queued.export_id, running.export_id}
    assert done.export_id not in {e.export_id for e in active}


async def test_export_quota_counts_queued_and_running_only(stores: StoreFactory) -> None:
    store = stores()
    owner = "q-" + new_export_id()
    a, b = export_record(owner), export_record(owner)
    await store.create_export(a, limit=2)
    await store.create_export(b, limit=2)
    with pytest.raises(TooManyExports) as info:
        await store.create_export(export_record(owner), limit=2)
    assert info.value.status == 429 and info.value.retry_after
    await store.create_export(export_record("someone-else"), limit=2)  # quotas are per owner
    a.state = "done"
    assert await store.save_export(a) is not None
    await store.create_export(export_record(owner), limit=2)  # a finished export frees its place


async def test_export_quota_is_atomic_under_concurrent_creation(stores: StoreFactory) -> None:
    writers = [stores(), stores()]
    owner = "c-" + new_export_id()
    results = await asyncio.gather(
        *(writers[i % 2].create_export(export_record(owner), limit=3) for i in range(12)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 3
    assert all(r is None or isinstance(r, TooManyExports) for r in results)


async def test_exports_expire_with_their_job_and_are_listed_for_deletion(
    stores: StoreFactory,
) -> None:
    store = stores()
    short, long = export_record(ttl=0.3), export_record(ttl=60)
    await store.create_export(short)
    await store.create_export(long)
    await stores.wait(0.5)
    with pytest.raises(ExportNotFound):
        await store.get_export(short.export_id)
    assert short.export_id not in {e.export_id for e in await store.active_exports()}
    expired = {e.export_id for e in await stores().expired_exports(stores.now())}
    assert short.export_id in expired and long.export_id not in expired
    await store.delete_export(short.export_id)
    assert short.export_id not in {e.export_id for e in await store.expired_exports(stores.now())}


async def test_quota_keys_count_apart(stores: StoreFactory) -> None:
    """With keys off the service counts quotas per client address (`quota_key`): anonymous
    jobs and exports of one address do not use up another's."""
    store = stores()
    tag = new_export_id()
    await store.create(job_spec(owner=None), limit=1, quota_key=f"addr:a-{tag}")
    with pytest.raises(TooManyJobs):
        await store.create(job_spec(owner=None), limit=1, quota_key=f"addr:a-{tag}")
    await store.create(job_spec(owner=None), limit=1, quota_key=f"addr:b-{tag}")
    await store.create_export(export_record(None), limit=1, quota_key=f"addr:a-{tag}")
    with pytest.raises(TooManyExports):
        await store.create_export(export_record(None), limit=1, quota_key=f"addr:a-{tag}")
    await store.create_export(export_record(None), limit=1, quota_key=f"addr:b-{tag}")
