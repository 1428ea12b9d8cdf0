"""Token signing: round trips, rotation, and rejection of every kind of tampering."""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from svc.core.tokens import Cursor, TokenCodec
from svc.errors import InvalidToken, TokenJobMismatch

SECRET = "s" * 32
codec = TokenCodec([SECRET])
cursors = st.builds(
    Cursor,
    job_id=st.text(min_size=1, max_size=30),
    domain=st.sampled_from(["history", "materials"]),
    batch=st.integers(1, 10**6),
    cid=st.text(min_size=1, max_size=20),
    rid=st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(min_size=1, max_size=18)),
    seen=st.integers(0, 10**9),
    snapshot=st.one_of(st.none(), st.integers(0, 2**63 - 1)),
)


@given(cursors)
def test_round_trip(cursor: Cursor) -> None:
    token = codec.sign(cursor)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert codec.verify(token, cursor.job_id) == cursor


@given(cursors, st.data())
def test_any_bit_flip_is_rejected(cursor: Cursor, data: st.DataObject) -> None:
    raw = bytearray(base64.urlsafe_b64decode(codec.sign(cursor) + "=="))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        codec.verify(tampered)


@given(cursors, st.data())
def test_any_truncation_is_rejected(cursor: Cursor, data: st.DataObject) -> None:
    token = codec.sign(cursor)
    cut = data.draw(st.integers(0, len(token) - 1))
    with pytest.raises(InvalidToken):
        codec.verify(token[:cut])


@given(st.text(max_size=300))
def test_arbitrary_text_is_rejected(text: str) -> None:
    with pytest.raises(InvalidToken):
        codec.verify(text)


@given(st.binary(max_size=200))
def test_arbitrary_base64_is_rejected(blob: bytes) -> None:
    with pytest.raises(InvalidToken):
        codec.verify(base64.urlsafe_b64encode(blob).rstrip(b"=").decode())


@given(cursors)
def test_token_signed_with_another_secret_is_rejected(cursor: Cursor) -> None:
    forged = TokenCodec(["x" * 32]).sign(cursor)
    with pytest.raises(InvalidToken):
        codec.verify(forged)


def test_re_signed_payload_with_changed_position_is_rejected() -> None:
    """Editing the payload and re-signing without the secret cannot produce a valid MAC."""
    good = Cursor("job", "history", 3, "abc", 17, 2100)
    raw = base64.urlsafe_b64decode(codec.sign(good) + "==")
    evil_body = raw[:1] + raw[1:-32].replace(b"abc", b"abd")
    import hashlib
    import hmac

    guessed_mac = hmac.new(b"guessed-secret-000000", evil_body, hashlib.sha256).digest()
    token = base64.urlsafe_b64encode(evil_body + guessed_mac).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        codec.verify(token)


def test_rotation_signs_with_first_and_accepts_any() -> None:
    old, new = "o" * 32, "n" * 32
    cursor = Cursor("job", "history", 1, "a", 1, 1)
    old_token = TokenCodec([old]).sign(cursor)
    rotated = TokenCodec([new, old])
    assert rotated.verify(old_token) == cursor
    assert TokenCodec([new]).verify(rotated.sign(cursor)) == cursor
    with pytest.raises(InvalidToken):
        TokenCodec([new]).verify(old_token)


def test_token_of_another_job_is_a_mismatch() -> None:
    token = codec.sign(Cursor("job-a", "history", 1, "a", 1, 1))
    with pytest.raises(TokenJobMismatch):
        codec.verify(token, "job-b")


@pytest.mark.parametrize(
    "cursor",
    [
        Cursor("j", "history", -1, "a", 1, 1),
        Cursor("j", "history", 1, "a", 1, -5),
        Cursor("j", "history", 1, None, 1, 1),
        Cursor("j", "history", 1, "a", 1, 1, None, b"short chain"),
    ],
)
def test_signed_but_inconsistent_cursor_is_rejected(cursor: Cursor) -> None:
    with pytest.raises(InvalidToken):
        codec.verify(codec.sign(cursor))


def test_a_bookmark_and_a_chain_round_trip() -> None:
    """A bookmark names a CID without a row id (the position before its records); the
    records digest's chain is 32 bytes; a token of 7 values (from before the chain) is
    read with no chain."""
    mark = Cursor("j", "history", 2, "a", None, 7, None, bytes(range(32)))
    assert codec.verify(codec.sign(mark)) == mark
    body = bytes([1]) + msgspec.msgpack.encode(["j", "history", 1, "a", 1, 1, None])
    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    old = base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode()
    assert codec.verify(old) == Cursor("j", "history", 1, "a", 1, 1, None, None)


def test_unknown_version_is_rejected() -> None:
    raw = bytearray(base64.urlsafe_b64decode(codec.sign(Cursor("j", "h", 1, "a", 1)) + "=="))
    raw[0] = 2
    with pytest.raises(InvalidToken):
        codec.verify(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenCodec(["short"])
    with pytest.raises(ValueError):
        TokenCodec([])


@given(cursors)
def test_only_the_canonical_spelling_is_accepted(cursor: Cursor) -> None:
    """Base64 of n bytes whose last character carries unused bits has other spellings
    that decode to the same bytes; they are refused, so a token has one spelling."""
    token = codec.sign(cursor)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused_bits = {2: 4, 3: 2}.get(len(token) % 4, 0)  # chars of a 1- or 2-byte tail
    if unused_bits:
        last = alphabet.index(token[-1])
        twin = token[:-1] + alphabet[last | 1]  # same bytes, other padding bits
        if twin != token:
            assert base64.urlsafe_b64decode(twin + "==") == base64.urlsafe_b64decode(token + "==")
            with pytest.raises(InvalidToken):
                codec.verify(twin, cursor.job_id)
    with pytest.raises(InvalidToken):
        codec.verify(token + "=", cursor.job_id)  # padding is never part of a token
