"""Artifact test helpers: the two object stores the service can use (a folder, and a real
S3-speaking server: moto in server mode), what each holds, and upload/download calls.

storage = local_storage(tmp_path) or s3_storage(server)   # settings for the app, and a probe
artifact = await upload(client, editor, run_id, b"bytes", name="model.pt")
assert storage.objects() == {artifact["id"]: b"bytes"}
"""

import hashlib
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from tests.experiment.factories import expect

S3_BUCKET = "etp-artifacts-test"
S3_REGION = "us-east-1"
S3_KEYS = {"aws_access_key_id": "test-key", "aws_secret_access_key": "test-secret"}


@dataclass
class S3Server:
    """moto's S3 in server mode, one bucket; `client` is a plain boto3 client on it."""

    url: str
    client: Any = field(init=False)

    def __post_init__(self) -> None:
        self.client = boto3.client("s3", endpoint_url=self.url, region_name=S3_REGION, **S3_KEYS)


class Storage(ABC):
    """An object store as the service is set up to use it, and what it holds."""

    kind: str
    settings: dict[str, Any]

    @abstractmethod
    def objects(self) -> dict[str, bytes]:
        """Published objects: artifact id -> bytes."""

    @abstractmethod
    def pending(self) -> list[str]:
        """Objects being written (or left half written)."""

    @abstractmethod
    def put_object(self, artifact_id: str, data: bytes) -> None:
        """An object written behind the service's back (as a crash would leave one)."""


class LocalStorage(Storage):
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings = {"artifact_storage": "local", "artifact_dir": root}

    def objects(self) -> dict[str, bytes]:
        folder = self.root / "objects"
        if not folder.exists():
            return {}
        return {
            str(uuid.UUID(path.name)): path.read_bytes()
            for path in folder.glob("*/*")
            if path.is_file()
        }

    def pending(self) -> list[str]:
        folder = self.root / "pending"
        return sorted(path.name for path in folder.iterdir()) if folder.exists() else []

    def put_object(self, artifact_id: str, data: bytes) -> None:
        key = uuid.UUID(artifact_id).hex
        path = self.root / "objects" / key[:2] / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


class S3Storage(Storage):
    kind = "s3"

    def __init__(self, server: S3Server, **overrides: Any) -> None:
        self.server = server
        self.prefix = f"test-{uuid.uuid4().hex[:12]}"
        self.settings = {
            "artifact_storage": "s3",
            "artifact_s3_endpoint_url": server.url,
            "artifact_s3_bucket": S3_BUCKET,
            "artifact_s3_prefix": self.prefix,
            "artifact_s3_region": S3_REGION,
            "artifact_s3_access_key_id": S3_KEYS["aws_access_key_id"],
            "artifact_s3_secret_access_key": S3_KEYS["aws_secret_access_key"],
            "artifact_s3_addressing_style": "path",
            "artifact_s3_part_size": 5 * 1024 * 1024,
            **overrides,
        }

    @property
    def _objects_prefix(self) -> str:
        return f"{self.prefix}/objects/"

    def objects(self) -> dict[str, bytes]:
        client = self.server.client
        listed = client.list_objects_v2(Bucket=S3_BUCKET, Prefix=self._objects_prefix)
        found = {}
        for item in listed.get("Contents", []):
            body = client.get_object(Bucket=S3_BUCKET, Key=item["Key"])["Body"].read()
            found[str(uuid.UUID(item["Key"].removeprefix(self._objects_prefix)))] = body
        return found

    def pending(self) -> list[str]:
        listed = self.server.client.list_multipart_uploads(
            Bucket=S3_BUCKET, Prefix=self._objects_prefix
        )
        return sorted(upload["Key"] for upload in listed.get("Uploads", []))

    def put_object(self, artifact_id: str, data: bytes) -> None:
        key = f"{self._objects_prefix}{uuid.UUID(artifact_id).hex}"
        self.server.client.put_object(Bucket=S3_BUCKET, Key=key, Body=data)

    def start_multipart(self, artifact_id: str) -> None:
        """A multipart upload begun and never finished (as a killed uploader leaves one)."""
        key = f"{self._objects_prefix}{uuid.UUID(artifact_id).hex}"
        started = self.server.client.create_multipart_upload(Bucket=S3_BUCKET, Key=key)
        self.server.client.upload_part(
            Bucket=S3_BUCKET,
            Key=key,
            UploadId=started["UploadId"],
            PartNumber=1,
            Body=b"x" * 1024,
        )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def artifacts_path(run_id: Any) -> str:
    return f"/api/v1/runs/{run_id}/artifacts"


def artifact_path(artifact_id: Any) -> str:
    return f"/api/v1/artifacts/{artifact_id}"


async def upload(
    client: Any,
    user: Any,
    run_id: Any,
    data: bytes = b"weights",
    *,
    expect_status: int = 201,
    name: str = "model.bin",
    headers: dict[str, str] | None = None,
    **params: Any,
) -> Any:
    response = await client.post(
        artifacts_path(run_id),
        data=data,
        params={"name": name, **params},
        headers={"Content-Type": "application/octet-stream", **user.headers, **(headers or {})},
    )
    return await expect(response, expect_status)


def artifact_rows(pgsql: Any, where: str = "true", params: tuple = ()) -> list[dict[str, Any]]:
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT id::text, run_id::text, project_id::text, name, type, size, sha256,"
            " content_type, metadata, created_by::text, approved_by::text, approved_at"
            f" FROM artifacts WHERE {where} ORDER BY created_at, id",
            params,
        )
        return [dict(row) for row in cursor]


def usage(pgsql: Any, project_id: Any) -> tuple[int, int]:
    """(bytes, artifacts) the project's quota counts."""
    with pgsql["experiment"].cursor() as cursor:
        cursor.execute(
            "SELECT bytes, artifacts FROM artifact_usage WHERE project_id = %s",
            (str(project_id),),
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (0, 0)


def event_rows(pgsql: Any, event_type: str) -> list[dict[str, Any]]:
    with pgsql["experiment"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT type, payload FROM webhook_events WHERE type = %s ORDER BY occurred_at",
            (event_type,),
        )
        return [dict(row) for row in cursor]
