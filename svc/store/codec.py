"""Compact, versioned serialisation of job specs (pure).

A large job is megabytes as JSON (docs/benchmarks.md#sizes-and-encoding-costs). MES
CONTAINERIDs are hex strings of one width and one case (16 hex digits), so each is stored
as a 64-bit big-endian integer, and the integers are transposed into byte planes (all
first bytes, then all second bytes, ...) before zlib. In a sorted list the first plane is
long runs and the second nearly so; they compress to almost nothing, and the six random
planes stay as they are: about 6.4 bytes a CID, against 8 for raw bytes and 17 for text.
Decoding is a C-level interleave, one `bytes.hex(sep)` and one `str.split`, with no
Python loop per CID.
(Deltas between neighbours would save another ~0.25 byte a CID but need a Python-level
prefix sum to decode, which doubles the time.)

Other CIDs fall back to fixed-width raw bytes (hex wider than 16 digits) or NUL-joined
text. Blob layout: a 2-byte version (`J2`; `J1` blobs, which never used the integer
form, are still read), then a zlib-compressed msgpack `_Packed`. A spec with a column
selection is written as `J3` (the same layout): a replica of a version before selections
would ignore the field and send every column, in the middle of a stream resumed there;
it refuses the blob instead. Specs without one stay `J2`, readable by every version.
"""

from __future__ import annotations

import re
import zlib

import msgspec

from svc.store import JobSpec

_VERSION = b"J2"
_VERSION_SELECT = b"J3"  # J2 with `select`: unreadable to versions that would ignore it
_READABLE = (b"J1", b"J2", b"J3")
_HEX_LOWER = re.compile(r"[0-9a-f]*")
_HEX_UPPER = re.compile(r"[0-9A-F]*")
_INT_DIGITS = 16  # hex digits of a uint64


class _Packed(msgspec.Struct, array_like=True):
    spec: JobSpec  # with cids emptied
    # "int"/"INT": hex CIDs of `cid_width` <= 16 digits as uint64 byte planes;
    # "hex"/"HEX": fixed-width raw bytes; "text": NUL-joined UTF-8.
    cid_form: str
    cid_width: int
    cid_data: bytes


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(_Packed)


def _hex_case(cids: list[str], width: int) -> tuple[str, str] | None:
    """("lower" or "upper", the CIDs joined) if all CIDs are hex digits of `width`, one case."""
    if width == 0 or set(map(len, cids)) != {width}:
        return None
    joined = "".join(cids)
    if _HEX_LOWER.fullmatch(joined):
        return "lower", joined
    if _HEX_UPPER.fullmatch(joined):
        return "upper", joined
    return None


def _pack_ints(joined: str, width: int) -> bytes:
    """The CIDs as big-endian uint64s, transposed into 8 byte planes."""
    if width != _INT_DIGITS:
        joined = "".join(
            joined[i : i + width].zfill(_INT_DIGITS) for i in range(0, len(joined), width)
        )
    raw = bytes.fromhex(joined)
    return b"".join(raw[i::8] for i in range(8))


def _unpack_ints(data: bytes, width: int, upper: bool) -> list[str]:
    count = len(data) // 8
    raw = bytearray(len(data))
    for i in range(8):
        raw[i::8] = data[i * count : (i + 1) * count]
    text = raw.hex(" ", 8)  # one C call and one split, not a Python loop per CID
    if upper:
        text = text.upper()
    cids = text.split(" ") if text else []
    if width != _INT_DIGITS:
        cut = _INT_DIGITS - width
        cids = [c[cut:] for c in cids]
    return cids


def _pack_cids(cids: list[str]) -> tuple[str, int, bytes]:
    if cids:
        width = len(cids[0])
        found = _hex_case(cids, width)
        if found is not None:
            case, joined = found
            if width <= _INT_DIGITS:
                return ("int" if case == "lower" else "INT"), width, _pack_ints(joined, width)
            if width % 2 == 0:
                return ("hex" if case == "lower" else "HEX"), width, bytes.fromhex(joined)
    return "text", 0, "\0".join(cids).encode("utf-8")


def _unpack_cids(form: str, width: int, data: bytes) -> list[str]:
    if form in ("int", "INT"):
        return _unpack_ints(data, width, upper=form == "INT")
    if form in ("hex", "HEX"):
        text = data.hex() if form == "hex" else data.hex().upper()
        return [text[i : i + width] for i in range(0, len(text), width)]
    if form == "text":
        return data.decode("utf-8").split("\0") if data else []
    raise ValueError(f"unknown CID form {form!r}")


def dumps(spec: JobSpec) -> bytes:
    form, width, data = _pack_cids(spec.cids)
    shell = msgspec.structs.replace(spec, cids=[])
    version = _VERSION_SELECT if spec.select else _VERSION
    return version + zlib.compress(_enc.encode(_Packed(shell, form, width, data)), 6)


def loads(blob: bytes) -> JobSpec:
    if blob[:2] not in _READABLE:
        raise ValueError("unknown job spec version")
    packed = _dec.decode(zlib.decompress(blob[2:]))
    cids = _unpack_cids(packed.cid_form, packed.cid_width, packed.cid_data)
    return msgspec.structs.replace(packed.spec, cids=cids)
