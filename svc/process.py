"""What this process is in the service: its worker slot under `serve --workers N`.

Set once by `svc.run.workers` when a worker starts (0 to N-1; a replaced worker takes the slot
of the one it replaces); None in a single process. Export writers of sibling workers tell
themselves apart by it (`svc.exports.files.worker_identity`).
"""

from __future__ import annotations

worker_slot: int | None = None
