"""Signed, stateless `since` tokens (pure: no I/O).

A token is ``base64url(version || payload || HMAC-SHA256(secret, version || payload))``
where the payload is a msgpack array (`Cursor`). It marks the position just after the
last record a client has: the job, the domain, the last batch number and the last key
``(cid, rid)`` of that domain, and the records digest's chain so far. Any replica that
knows one of the secrets can verify it, so a stream may resume anywhere. Secrets rotate:
sign with the first, verify with any.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence

import msgspec

from svc.core import digest
from svc.errors import InvalidToken, TokenJobMismatch

VERSION = 1
_MAC_SIZE = 32
_MAX_TOKEN_CHARS = 2048
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_MIN_SECRET_BYTES = 16


class Cursor(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """A position in a job's output. New fields get defaults and go at the end."""

    job_id: str
    domain: str
    batch: int  # batch number of the last records line sent in `domain` (0: none yet)
    cid: str | None  # key of the last record sent, None at the start of the domain
    # tie-break of the last record (database's own row id); None with a `cid`: a bookmark,
    # the position before that CID's records (every record before it was sent or matched
    # nothing)
    rid: int | str | None
    seen: int = 0  # records of `domain` up to and including the last one sent
    snapshot: int | None = None  # Oracle SCN the job reads AS OF, if any
    # the records digest's chain after the last records line (svc.core.digest); None: not
    # known (a token from before digests, or a walk that started at an offset)
    chain: bytes | None = None


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Cursor)


def peek_chain(token: str) -> bytes | None:
    """The records digest's chain a token carries, read without verifying it (a client has
    no secret; the server checks the digest it ends with). None: no chain, or no token."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        if len(raw) <= _MAC_SIZE + 1 or raw[0] != VERSION:
            return None
        chain = _decoder.decode(raw[1:-_MAC_SIZE]).chain
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    return chain if chain is not None and len(chain) == digest.SIZE else None


class TokenCodec:
    """Signs and verifies cursors with a rotating list of secrets."""

    def __init__(self, secrets: Sequence[str | bytes]) -> None:
        keys = [s.encode() if isinstance(s, str) else bytes(s) for s in secrets]
        if not keys:
            raise ValueError("at least one token secret is required")
        if any(len(k) < _MIN_SECRET_BYTES for k in keys):
            raise ValueError(f"token secrets must be at least {_MIN_SECRET_BYTES} bytes")
        self._keys = keys

    def sign(self, cursor: Cursor) -> str:
        body = bytes([VERSION]) + _encoder.encode(cursor)
        mac = hmac.new(self._keys[0], body, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")

    def verify(self, token: str, job_id: str | None = None) -> Cursor:
        """Return the token's cursor, or raise InvalidToken / TokenJobMismatch."""
        if not token or len(token) > _MAX_TOKEN_CHARS or not _B64URL.match(token):
            raise InvalidToken()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise InvalidToken() from None
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
            raise InvalidToken()  # a second spelling of the same bytes: only one is ours
        if len(raw) <= _MAC_SIZE + 1 or raw[0] != VERSION:
            raise InvalidToken()
        body, mac = raw[:-_MAC_SIZE], raw[-_MAC_SIZE:]
        if not any(
            hmac.compare_digest(mac, hmac.new(k, body, hashlib.sha256).digest()) for k in self._keys
        ):
            raise InvalidToken()
        try:
            cursor = _decoder.decode(body[1:])
        except msgspec.DecodeError:
            raise InvalidToken() from None
        if cursor.batch < 0 or cursor.seen < 0 or (cursor.cid is None and cursor.rid is not None):
            raise InvalidToken()
        if cursor.chain is not None and len(cursor.chain) != digest.SIZE:
            raise InvalidToken()
        if job_id is not None and cursor.job_id != job_id:
            raise TokenJobMismatch()
        return cursor
