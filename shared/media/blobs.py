"""Where a service keeps its photos' bytes (adapters), behind one interface, ``Blobs``:

- ``PostgresBlobs``: the table ``photo_blobs`` of the service's own schema (each service's
  migration makes it), when no object store is configured;
- ``S3Blobs``: an S3-compatible object store (MinIO in compose and Kubernetes, or any S3), when
  ``WANGGE_S3_BUCKET`` is set: the objects ``<WANGGE_S3_PREFIX><service>/<photo_id>`` of that
  bucket, through aiobotocore. The bucket is made at start when it does not exist (a store
  whose credentials may not create buckets needs it made beforehand).

A photo's id is the hash of its bytes (``shared.media.images``), so a put is idempotent and a
photo stored twice is stored once. What a photo belongs to (a case, a report) and who may see
it is the service's own table beside this, never the blob store's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

import asyncpg

from shared.contract.keys import KeyFormatError, parse_key
from shared.runtime.logging import get_logger
from shared.runtime.retry import Backoff
from shared.runtime.settings import ConfigurationError, Settings

from .images import Photo

log = get_logger(component="media")
READY_TIMEOUT_S = 10.0  # how long a put or get waits for the object store at start


class BlobsUnavailable(RuntimeError):
    """The store does not answer now (retry later: the HTTP side answers 503)."""


class Blobs(Protocol):
    kind: str  # "postgres" or "s3"

    async def put(self, photo: Photo) -> None: ...

    async def get(self, photo_id: str) -> bytes | None: ...

    async def run(self) -> None:
        """The store's life beside the service (a background task): open, then wait to be
        cancelled, then close."""
        ...


class PostgresBlobs:
    kind = "postgres"

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def put(self, photo: Photo) -> None:
        await self._pool().execute(
            "INSERT INTO photo_blobs (photo_id, content_type, data) VALUES ($1, $2, $3) "
            "ON CONFLICT (photo_id) DO NOTHING",
            photo.photo_id,
            photo.content_type,
            photo.data,
        )

    async def get(self, photo_id: str) -> bytes | None:
        data: bytes | None = await self._pool().fetchval(
            "SELECT data FROM photo_blobs WHERE photo_id = $1", photo_id
        )
        return data

    async def run(self) -> None:
        return None


class S3Blobs:
    """The objects of one bucket under ``prefix`` (``<WANGGE_S3_PREFIX><service>/``)."""

    kind = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        endpoint_url: str | None,
        region: str,
        access_key: str | None,
        secret_key: str | None,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._config = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            "aws_access_key_id": access_key,
            "aws_secret_access_key": secret_key,
        }
        self._max_backoff_s = max_backoff_s
        self._client: Any = None
        self._ready = asyncio.Event()

    def key(self, photo_id: str) -> str:
        return f"{self.prefix}{photo_id}"

    async def _opened(self) -> Any:
        if not self._ready.is_set():
            try:
                async with asyncio.timeout(READY_TIMEOUT_S):
                    await self._ready.wait()
            except TimeoutError:
                raise BlobsUnavailable("the object store is not ready") from None
        return self._client

    async def put(self, photo: Photo) -> None:
        client = await self._opened()
        try:
            await client.put_object(
                Bucket=self.bucket,
                Key=self.key(photo.photo_id),
                Body=photo.data,
                ContentType=photo.content_type,
            )
        except Exception as exc:  # botocore's and aiohttp's errors: the store is away
            raise BlobsUnavailable(f"object store: {type(exc).__name__}") from exc

    async def get(self, photo_id: str) -> bytes | None:
        client = await self._opened()
        try:
            answer = await client.get_object(Bucket=self.bucket, Key=self.key(photo_id))
            async with answer["Body"] as body:
                data: bytes = await body.read()
                return data
        except client.exceptions.NoSuchKey:
            return None
        except Exception as exc:
            raise BlobsUnavailable(f"object store: {type(exc).__name__}") from exc

    async def _ensure_bucket(self, client: Any) -> None:
        try:
            await client.head_bucket(Bucket=self.bucket)
        except client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise
            with contextlib.suppress(
                client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists
            ):
                await client.create_bucket(Bucket=self.bucket)
            log.info("object store bucket created", bucket=self.bucket)

    async def run(self) -> None:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        config = AioConfig(
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 3, "mode": "standard"},
            s3={"addressing_style": "path"},  # MinIO and most S3-compatible stores
        )
        backoff = Backoff(cap=self._max_backoff_s)
        async with get_session().create_client("s3", config=config, **self._config) as client:
            while True:
                try:
                    await self._ensure_bucket(client)
                    break
                except Exception as exc:
                    delay = backoff.next()
                    log.warning(
                        "waiting for a dependency",
                        dependency="object store",
                        error=type(exc).__name__,
                        delay_s=delay,
                    )
                    await asyncio.sleep(delay)
            self._client = client
            self._ready.set()
            try:
                await asyncio.Event().wait()  # until the service stops (cancelled)
            finally:
                self._ready.clear()
                self._client = None


def blobs_from_settings(
    settings: Settings, service: str, pool: Callable[[], asyncpg.Pool]
) -> Blobs:
    """The object store when ``WANGGE_S3_BUCKET`` is set, else PostgreSQL."""
    if not settings.s3_bucket:
        return PostgresBlobs(pool)
    if (settings.s3_access_key is None) != (settings.s3_secret_key is None):
        raise ConfigurationError("WANGGE_S3_ACCESS_KEY and WANGGE_S3_SECRET_KEY go together")
    return S3Blobs(
        bucket=settings.s3_bucket,
        prefix=f"{settings.s3_prefix}{service}/",
        endpoint_url=settings.s3_endpoint or None,
        region=settings.s3_region,
        access_key=settings.s3_access_key.get_secret_value() if settings.s3_access_key else None,
        secret_key=settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None,
        max_backoff_s=settings.retry_max_backoff_s,
    )


def media_link_key(settings: Settings) -> bytes | None:
    """``WANGGE_MEDIA_LINK_KEY`` when set, the key of the photo links dispatch signs and intake
    checks (``shared.media.links``); a malformed one stops the start."""
    if settings.media_link_key is None:
        return None
    try:
        return parse_key(settings.media_link_key.get_secret_value(), "WANGGE_MEDIA_LINK_KEY")
    except KeyFormatError as exc:
        raise ConfigurationError(str(exc)) from None
