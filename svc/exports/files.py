"""An export writer's files on this server: who writes them, the disk they take, their digest."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

_HASH_CHUNK = 1 << 20


def worker_identity(data_dir: Path, worker: int | None = None) -> str:
    """A random name kept in the data directory (`writer-id`), and under `serve --workers`
    the worker's slot: the same after a restart, also under a new hostname, so a process
    reclaims its own interrupted exports at once instead of waiting for their lease to end,
    and never one a sibling worker is writing. Replicas need data directories of their own."""
    path = data_dir / "writer-id"
    try:
        name = path.read_text().strip()
    except FileNotFoundError:
        name = ""
    if not name:
        data_dir.mkdir(parents=True, exist_ok=True)
        name = secrets.token_hex(8)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(name + "\n")
        try:
            os.link(tmp, path)  # first writer wins: sibling workers agree on one name
        except FileExistsError:
            name = path.read_text().strip()
        finally:
            tmp.unlink()
    slot = "" if worker is None else f":w{worker}"
    return f"{name}{slot}"


def disk_usage(root: Path) -> int:
    """Bytes of every file under `root`."""
    total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                pass  # removed meanwhile
    return total


def file_digest(path: Path) -> tuple[int, str]:
    """The size and SHA-256 (hex) of a file, read a MiB at a time."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
