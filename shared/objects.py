"""The object store, spoken as plain S3 through the MinIO SDK (any S3 server works).

The SDK is blocking, so every call runs in a worker thread.
"""

import asyncio
import hashlib
import io
from dataclasses import dataclass
from datetime import timedelta

from minio import Minio
from minio.commonconfig import REPLACE, CopySource
from minio.error import S3Error

from shared.settings import ObjectStoreServer

_MISSING = ("NoSuchKey", "NoSuchObject")
CHUNK = 1024 * 1024


class ObjectChanged(Exception):
    """The object was overwritten while it was being verified (its ETag changed)."""


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str


@dataclass(frozen=True)
class ReadResult:
    sha256: str
    size: int
    head: bytes
    data: bytes | None  # the whole content, when it was asked for


class ObjectStore:
    """One bucket of the S3 server the settings name: media's evidence, or intake's incoming photos."""

    def __init__(self, settings: ObjectStoreServer, *, bucket: str):
        self.bucket = bucket
        self.client = Minio(
            settings.minio_endpoint,
            access_key=settings.minio_access_key,
            secret_key=settings.minio_secret_key,
            secure=settings.minio_secure,
        )

    async def ensure_bucket(self) -> None:
        def ensure():
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)

        await asyncio.to_thread(ensure)

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size and ETag of an object, or None when there is none."""

        def stat():
            try:
                found = self.client.stat_object(self.bucket, key)
                return ObjectInfo(size=found.size, etag=found.etag)
            except S3Error as exc:
                if exc.code in _MISSING:
                    return None
                raise

        return await asyncio.to_thread(stat)

    async def exists(self, key: str) -> bool:
        return await self.stat(key) is not None

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object, self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
        )

    async def get(self, key: str) -> bytes:
        def get():
            response = self.client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(get)

    async def read_verified(self, key: str, *, etag: str, keep_data: bool, head_bytes: int = 64) -> ReadResult:
        """Stream an object, hashing it; If-Match pins the read to the version that was stat'ed."""

        def read():
            try:
                response = self.client.get_object(self.bucket, key, request_headers={"If-Match": etag})
            except S3Error as exc:
                if exc.code == "PreconditionFailed":
                    raise ObjectChanged(key) from exc
                raise
            digest, size, head, parts = hashlib.sha256(), 0, b"", []
            try:
                for chunk in response.stream(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    if len(head) < head_bytes:
                        head += chunk[: head_bytes - len(head)]
                    if keep_data:
                        parts.append(chunk)
            finally:
                response.close()
                response.release_conn()
            return ReadResult(digest.hexdigest(), size, head, b"".join(parts) if keep_data else None)

        return await asyncio.to_thread(read)

    async def copy_verified(self, source: str, target: str, *, etag: str, content_type: str) -> None:
        """Server-side copy of exactly the verified version, with the content type we detected
        (a presigned PUT stores whatever Content-Type the client sent)."""

        def copy():
            try:
                self.client.copy_object(
                    self.bucket,
                    target,
                    CopySource(self.bucket, source, match_etag=etag),
                    metadata={"Content-Type": content_type},
                    metadata_directive=REPLACE,
                )
            except S3Error as exc:
                if exc.code == "PreconditionFailed":
                    raise ObjectChanged(source) from exc
                raise

        await asyncio.to_thread(copy)

    async def remove(self, *keys: str) -> None:
        """Delete objects; a missing one is not an error (S3 DELETE is idempotent)."""

        def remove():
            for key in keys:
                self.client.remove_object(self.bucket, key)

        await asyncio.to_thread(remove)

    # Signing is local, but the SDK looks the bucket's region up once over the network.
    async def presigned_put(self, key: str, *, expires_s: int) -> str:
        """A URL the client PUTs the file to, directly into the object store."""
        return await asyncio.to_thread(
            self.client.presigned_put_object, self.bucket, key, expires=timedelta(seconds=expires_s)
        )

    async def presigned_get(self, key: str, *, expires_s: int, content_type: str) -> str:
        """A short-lived download URL; the response type is ours, not whatever was stored."""
        return await asyncio.to_thread(
            self.client.presigned_get_object,
            self.bucket,
            key,
            expires=timedelta(seconds=expires_s),
            response_headers={"response-content-type": content_type},
        )
