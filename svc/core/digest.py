"""The chain digest of a job's records as sent (pure): proof that a whole job arrived in
the server's order, however many times its stream was resumed.

``h0`` is 32 zero bytes; for every records line in stream order,
``h = SHA-256(h || the bytes of the line's data value as they appear in the line)``.
The complete line carries ``h`` in hex. The state travels in the `since` token, so a
stream resumed anywhere ends with the digest of an uncut one (docs/protocol.md#digest).
What it costs: docs/benchmarks.md#records-digest.
"""

from __future__ import annotations

import hashlib

START = bytes(32)  # the chain before the first records line
SIZE = 32


def chain(state: bytes, data: bytes | memoryview) -> bytes:
    """The chain after a records line whose `data` value is `data`, from `state`."""
    h = hashlib.sha256(state)
    h.update(data)
    return h.digest()
