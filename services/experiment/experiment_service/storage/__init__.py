"""The object stores artifacts' bytes live in: the local file system (default) or S3."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from experiment_service.settings import ExperimentSettings
from experiment_service.storage.base import ObjectStore


@asynccontextmanager
async def open_store(settings: ExperimentSettings) -> AsyncIterator[ObjectStore]:
    """The store the settings name, ready, and closed when the block ends."""
    store: ObjectStore
    if settings.artifact_storage == "s3":
        from experiment_service.storage.s3 import S3Store  # aiobotocore only when used

        assert settings.artifact_s3_bucket is not None
        secret = settings.artifact_s3_secret_access_key
        s3 = S3Store(
            bucket=settings.artifact_s3_bucket,
            prefix=settings.artifact_s3_prefix,
            endpoint_url=settings.artifact_s3_endpoint_url,
            region=settings.artifact_s3_region,
            access_key_id=settings.artifact_s3_access_key_id,
            secret_access_key=None if secret is None else secret.get_secret_value(),
            addressing_style=settings.artifact_s3_addressing_style,
            part_size=settings.artifact_s3_part_size,
            grace_seconds=settings.artifact_s3_orphan_grace_seconds,
        )
        await s3.open()
        store = s3
    else:
        from experiment_service.storage.local import LocalStore

        local = LocalStore(settings.artifact_dir, fsync=settings.artifact_fsync)
        await local.open()
        store = local
    try:
        yield store
    finally:
        await store.close()
