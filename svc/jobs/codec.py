"""Compact, versioned serialisation of job specs (pure).

A 114,892-CID job is ~2 MB as JSON. CIDs that are all hex strings of one even length
and one case (MES CONTAINERIDs are 16 hex digits) are packed as raw bytes, then the whole
msgpack document is zlib-compressed: about 8 bytes a CID.
"""

from __future__ import annotations

import re
import zlib

import msgspec

from svc.jobs import JobSpec

_VERSION = b"J1"
_HEX_LOWER = re.compile(r"^(?:[0-9a-f]{2})+$")
_HEX_UPPER = re.compile(r"^(?:[0-9A-F]{2})+$")


class _Packed(msgspec.Struct, array_like=True):
    spec: JobSpec  # with cids emptied
    cid_form: str  # "hex", "HEX" (fixed width raw bytes) or "text" (NUL-joined)
    cid_width: int
    cid_data: bytes


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(_Packed)


def _pack_cids(cids: list[str]) -> tuple[str, int, bytes]:
    if cids:
        width = len(cids[0])
        if all(len(c) == width for c in cids):
            for form, pattern in (("hex", _HEX_LOWER), ("HEX", _HEX_UPPER)):
                if all(pattern.match(c) for c in cids):
                    return form, width, bytes.fromhex("".join(cids))
    return "text", 0, "\0".join(cids).encode("utf-8")


def _unpack_cids(form: str, width: int, data: bytes) -> list[str]:
    if form == "text":
        return data.decode("utf-8").split("\0") if data else []
    text = data.hex() if form == "hex" else data.hex().upper()
    return [text[i : i + width] for i in range(0, len(text), width)]


def dumps(spec: JobSpec) -> bytes:
    form, width, data = _pack_cids(spec.cids)
    shell = msgspec.structs.replace(spec, cids=[])
    return _VERSION + zlib.compress(_enc.encode(_Packed(shell, form, width, data)), 6)


def loads(blob: bytes) -> JobSpec:
    if not blob.startswith(_VERSION):
        raise ValueError("unknown job spec version")
    packed = _dec.decode(zlib.decompress(blob[len(_VERSION) :]))
    cids = _unpack_cids(packed.cid_form, packed.cid_width, packed.cid_data)
    return msgspec.structs.replace(packed.spec, cids=cids)
