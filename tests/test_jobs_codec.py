"""svc.store.codec: exact round trips in every CID form, and the size that keeps Redis small."""

from __future__ import annotations

import random
import zlib

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from svc.protocol import Range
from svc.store import JobSpec, codec, new_spec


def _spec(cids: list[str], **kw: object) -> JobSpec:
    return JobSpec("job-1", cids, ["history", "materials"], 1000.5, 2000.25, **kw)  # type: ignore[arg-type]


def _form(cids: list[str]) -> str:
    return codec._pack_cids(cids)[0]


@pytest.mark.parametrize(
    ("cids", "form"),
    [
        ([], "text"),
        (["0000000000000000", "7fffffffffffffff", "ffffffffffffffff"], "int"),
        (["00000000000000AB", "FFFFFFFFFFFFFFFF"], "INT"),
        (["a", "b", "f"], "int"),  # odd widths up to 16 digits are integers too
        (["00ff", "0100", "abcd"], "int"),
        (["ffff", "0000"], "int"),  # any order
        (["0" * 32, "f" * 32], "hex"),  # wider than 64 bits: raw bytes
        (["ABcd", "abcd"], "text"),  # mixed case would not round-trip as integers
        (["LOT-1", "LOT-2", "lot ä"], "text"),
        (["abcd", "abcde"], "text"),  # mixed widths
    ],
)
def test_round_trip_in_each_form(cids: list[str], form: str) -> None:
    spec = _spec(cids, owner="abc", snapshot=12345)
    assert _form(cids) == form
    assert codec.loads(codec.dumps(spec)) == spec


@given(
    st.integers(1, 16).flatmap(
        lambda w: st.lists(st.integers(0, 16**w - 1), max_size=200).map(
            lambda xs: [f"{x:0{w}x}" for x in xs]
        )
    ),
    st.booleans(),
    st.booleans(),
)
def test_round_trip_of_any_hex_list(cids: list[str], upper: bool, sort: bool) -> None:
    if upper:
        cids = [c.upper() for c in cids]
    if sort:
        cids = sorted(set(cids))
    spec = _spec(cids)
    assert codec.loads(codec.dumps(spec)) == spec


@given(st.lists(st.text(min_size=1).filter(lambda s: "\0" not in s), max_size=50))
def test_round_trip_of_any_text(cids: list[str]) -> None:
    spec = _spec(sorted(set(cids)))
    assert codec.loads(codec.dumps(spec)) == spec


def test_a_full_size_job_is_under_six_and_a_half_bytes_a_cid() -> None:
    rng = random.Random(3)
    cids = [f"{rng.getrandbits(64):016x}" for _ in range(114_892)]
    spec = new_spec(cids, ["history", "materials"], 86400, None, None)
    blob = codec.dumps(spec)
    assert len(blob) < 6.5 * len(spec.cids)  # raw bytes would be 8, hex text 17
    assert codec.loads(blob) == spec


def test_version_one_blobs_are_still_read() -> None:
    spec = _spec(["abababababababab", "cdcdcdcdcdcdcdcd"])
    shell = msgspec.structs.replace(spec, cids=[])
    packed = codec._Packed(shell, "hex", 16, bytes.fromhex("ababababababababcdcdcdcdcdcdcdcd"))
    assert codec.loads(b"J1" + zlib.compress(codec._enc.encode(packed))) == spec


def test_unknown_versions_are_refused() -> None:
    with pytest.raises(ValueError):
        codec.loads(b"J9" + codec.dumps(_spec(["a"]))[2:])


WHERE = {
    "history": {
        "EVENTNAME": ["Hold", "Release"],
        "QTY": [1000, 2400.5],  # an int stays an int, a float a float
        "TXNDATE": Range("2025-01-15T00:00:00", None),
    },
    "materials": {"QTYCONSUMED": Range(None, 10)},
}


def test_filters_round_trip_with_their_types() -> None:
    spec = _spec(["00ff", "0100"], where=WHERE)
    back = codec.loads(codec.dumps(spec))
    assert back == spec and back.where is not None
    assert [type(v) for v in back.where["history"]["QTY"]] == [int, float]  # type: ignore[union-attr]
    assert isinstance(back.where["history"]["TXNDATE"], Range)


class _SpecBeforeFilters(msgspec.Struct):
    job_id: str
    cids: list[str]
    domains: list[str]
    created_at: float
    expires_at: float
    owner: str | None = None
    snapshot: int | None = None


class _PackedBeforeFilters(msgspec.Struct, array_like=True):
    spec: _SpecBeforeFilters
    cid_form: str
    cid_width: int
    cid_data: bytes


def test_specs_stored_before_filters_existed_read_as_unfiltered() -> None:
    old = _SpecBeforeFilters("job-1", [], ["history"], 1.0, 2.0, None, 7)
    packed = _PackedBeforeFilters(old, "text", 0, b"a\0b")
    blob = b"J2" + zlib.compress(msgspec.msgpack.encode(packed))
    assert codec.loads(blob) == JobSpec("job-1", ["a", "b"], ["history"], 1.0, 2.0, None, 7)
    assert codec.loads(blob).where is None


def test_selections_round_trip() -> None:
    select = {"history": ["CONTAINERID", "TXNDATE"], "materials": ["UOM", "CONTAINERID"]}
    spec = _spec(["00ff", "0100"], where=WHERE, select=select)
    blob = codec.dumps(spec)
    assert blob[:2] == b"J3"  # a version that would ignore `select` refuses it
    assert codec.dumps(_spec(["00ff"], where=WHERE))[:2] == b"J2"  # readable by every version
    back = codec.loads(blob)
    assert back == spec and back.select == select


class _SpecBeforeSelect(msgspec.Struct):
    job_id: str
    cids: list[str]
    domains: list[str]
    created_at: float
    expires_at: float
    owner: str | None = None
    snapshot: int | None = None
    where: dict[str, dict[str, object]] | None = None


class _PackedBeforeSelect(msgspec.Struct, array_like=True):
    spec: _SpecBeforeSelect
    cid_form: str
    cid_width: int
    cid_data: bytes


def test_specs_stored_before_selections_existed_read_with_every_column() -> None:
    old = _SpecBeforeSelect("job-1", [], ["history"], 1.0, 2.0, "key", 7, {"history": {}})
    packed = _PackedBeforeSelect(old, "text", 0, b"a\0b")
    blob = b"J2" + zlib.compress(msgspec.msgpack.encode(packed))
    back = codec.loads(blob)
    assert back == JobSpec("job-1", ["a", "b"], ["history"], 1.0, 2.0, "key", 7, {"history": {}})
    assert back.select is None
