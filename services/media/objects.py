"""The object store, spoken as plain S3 through the MinIO SDK (any S3 server works).

The SDK is blocking, so every call runs in a worker thread.
"""

import asyncio
import io

from minio import Minio
from minio.error import S3Error

from shared.settings import Settings


class ObjectStore:
    def __init__(self, settings: Settings):
        self.bucket = settings.media_bucket
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

    async def exists(self, key: str) -> bool:
        def stat():
            try:
                self.client.stat_object(self.bucket, key)
                return True
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject"):
                    return False
                raise

        return await asyncio.to_thread(stat)

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
