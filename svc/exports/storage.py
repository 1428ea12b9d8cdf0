"""Where finished export files live: the local exports directory, or S3.

Files are always written under the exports directory first (`ExportWriter`); publishing
moves the finished file into storage under its final name in one step: a rename on the
same file system for `LocalStorage` (so a half-written file is never under that name),
an upload that only becomes visible when it completes for `S3Storage` (a single PUT, or
a multipart upload whose object appears at CompleteMultipartUpload).

S3 uses obstore (Rust's object_store: async, typed, no dependencies, one wheel) rather
than boto3 (synchronous; every call would need a thread). Credentials, region and
endpoint come from the standard variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_REGION`, `AWS_ENDPOINT_URL` for MinIO or another S3-compatible server,
`AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint), never from a TRACE_ setting.
"""

from __future__ import annotations

import abc
import asyncio
import datetime as dt
import os
from pathlib import Path

MEDIA_TYPES = {
    "ndjson.gz": "application/gzip",
    "csv.zip": "application/zip",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}


class Storage(abc.ABC):
    kind: str

    @abc.abstractmethod
    async def publish(self, part: Path, name: str, download_name: str, media_type: str) -> None:
        """Move the finished file `part` to `name`; visible only once complete."""

    @abc.abstractmethod
    async def exists(self, name: str) -> bool: ...

    @abc.abstractmethod
    async def delete(self, name: str) -> None:
        """Remove `name`; nothing happens when it is not there."""

    def local_path(self, name: str) -> Path | None:
        """The file on this machine's disk, for storages that keep files locally."""
        return None

    async def signed_url(self, name: str, seconds: int) -> str | None:
        """A pre-signed GET URL valid `seconds`, for storages that have them."""
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage(Storage):
    """Files under `root` (TRACE_EXPORTS_DIR), as ``JOB_ID/EXPORT_ID.EXT``."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def local_path(self, name: str) -> Path:
        return self.root / name

    async def publish(self, part: Path, name: str, download_name: str, media_type: str) -> None:
        def move() -> None:
            target = self.root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, target)
            _fsync_dir(target.parent)

        await asyncio.to_thread(move)

    async def exists(self, name: str) -> bool:
        return await asyncio.to_thread((self.root / name).is_file)

    async def delete(self, name: str) -> None:
        def remove() -> None:
            target = self.root / name
            target.unlink(missing_ok=True)
            try:
                target.parent.rmdir()  # the job's directory, once empty
            except OSError:
                pass

        await asyncio.to_thread(remove)


class S3Storage(Storage):
    """Objects ``PREFIX/JOB_ID/EXPORT_ID.EXT`` in `bucket` (TRACE_EXPORT_STORAGE=s3://...)."""

    kind = "s3"

    def __init__(self, url: str) -> None:
        from obstore.store import S3Store

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._store = S3Store(bucket)  # AWS_* variables: credentials, region, endpoint

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    async def publish(self, part: Path, name: str, download_name: str, media_type: str) -> None:
        import obstore

        await obstore.put_async(
            self._store,
            self._key(name),
            part,
            attributes={
                "Content-Type": media_type,
                "Content-Disposition": f'attachment; filename="{download_name}"',
            },
        )

    async def exists(self, name: str) -> bool:
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            await obstore.head_async(self._store, self._key(name))
        except (NotFoundError, FileNotFoundError):
            return False
        return True

    async def delete(self, name: str) -> None:
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            await obstore.delete_async(self._store, self._key(name))
        except (NotFoundError, FileNotFoundError):
            pass

    async def signed_url(self, name: str, seconds: int) -> str:
        import obstore

        return await obstore.sign_async(
            self._store, "GET", self._key(name), dt.timedelta(seconds=seconds)
        )


def open_storage(url: str, root: Path) -> Storage:
    return LocalStorage(root) if url == "local" else S3Storage(url)
