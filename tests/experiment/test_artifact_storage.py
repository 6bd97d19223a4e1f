"""What the object store holds when uploads break off, race or fail, and what the start-up
sweep removes (and keeps); against the folder and against S3 (moto's server)."""

import asyncio
import hashlib
import os
import uuid

import pytest

from experiment_service.app import ARTIFACT_UPKEEP
from experiment_service.storage.local import LocalStore
from tests.experiment.artifact_kit import artifact_rows, artifacts_path, upload, usage
from tests.experiment.factories import create_experiment, create_run
from tests.plugins.waiting import eventually
from tests.problems import assert_problem

MiB = 1024 * 1024


@pytest.fixture
async def client(make_artifacts_client):
    return await make_artifacts_client()


async def _send_part_of_body(client, user, run_id, *, announced: int, sent: int) -> None:
    """A client that announces `announced` bytes, sends `sent` of them and hangs up."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    head = (
        f"POST {artifacts_path(run_id)}?name=cut HTTP/1.1\r\n"
        f"Host: {client.server.host}\r\n"
        f"Authorization: Bearer {user.token}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {announced}\r\n\r\n"
    )
    writer.write(head.encode())
    chunk = os.urandom(MiB)
    for _ in range(sent // MiB):
        writer.write(chunk)
        await writer.drain()
    await asyncio.sleep(0.3)  # the service is well into it
    writer.transport.abort()
    del reader


async def test_upload_broken_off_leaves_no_row_and_no_object(
    client, editor, run, pgsql, storage, project_id
):
    await _send_part_of_body(client, editor, run["id"], announced=64 * MiB, sent=12 * MiB)

    await eventually(
        lambda: storage.pending() == [] and storage.objects() == {},
        what="the half upload discarded",
    )
    assert artifact_rows(pgsql) == []
    assert usage(pgsql, project_id) == (0, 0)
    # And the service goes on taking uploads.
    await upload(client, editor, run["id"], b"after")


async def test_start_up_sweep_removes_orphans_and_keeps_artifacts(
    make_artifacts_client, owner, project_id, pgsql, storage
):
    first = await make_artifacts_client()
    experiment = await create_experiment(first, owner, project_id)
    run = await create_run(first, owner, experiment["id"])
    kept = await upload(first, owner, run["id"], b"keep me")
    # What a killed process leaves: a published object whose row never committed, and an
    # upload that never finished.
    orphan = str(uuid.uuid4())
    storage.put_object(orphan, b"no row")
    if storage.kind == "local":
        (storage.root / "pending" / f"{uuid.uuid4().hex}.dead").write_bytes(b"half")
    else:
        storage.start_multipart(str(uuid.uuid4()))
    assert len(storage.pending()) == 1

    second = await make_artifacts_client(artifact_s3_orphan_grace_seconds=0)
    await asyncio.wait_for(second.app[ARTIFACT_UPKEEP].swept.wait(), 10)

    assert storage.objects() == {kept["id"]: b"keep me"}
    assert storage.pending() == []
    assert [row["id"] for row in artifact_rows(pgsql)] == [kept["id"]]


@pytest.mark.parametrize("storage", ["s3"], indirect=True)
async def test_s3_sweep_leaves_young_objects_to_other_replicas(make_artifacts_client, storage):
    orphan = str(uuid.uuid4())
    storage.put_object(orphan, b"maybe another replica's, about to commit")
    storage.start_multipart(str(uuid.uuid4()))

    client = await make_artifacts_client(artifact_s3_orphan_grace_seconds=3600)
    await asyncio.wait_for(client.app[ARTIFACT_UPKEEP].swept.wait(), 10)

    assert list(storage.objects()) == [orphan]
    # moto reports every multipart upload as begun in 2010: old enough for any grace.
    assert storage.pending() == []


async def test_local_sweep_never_takes_an_upload_that_is_still_written(tmp_path):
    store = LocalStore(tmp_path)
    await store.open()
    writing = await store.create(uuid.uuid4().hex, hashlib.sha256())
    await writing.write([b"first ", b"half"])
    published = await store.create(uuid.uuid4().hex, hashlib.sha256())
    await published.write([b"whole"])
    await published.publish()  # its row is not committed yet

    async def no_rows(keys):
        return set()

    before = await store.sweep(no_rows)
    files_while_writing = sorted(path.name for path in tmp_path.rglob("*") if path.is_file())
    await writing.close()
    await published.close()
    after = await store.sweep(no_rows)

    assert (before.pending_removed, before.orphans_removed) == (0, 0)
    assert len(files_while_writing) == 2
    assert (after.pending_removed, after.orphans_removed) == (1, 1)
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []


@pytest.mark.parametrize("storage", ["local"], indirect=True)
async def test_concurrent_uploads_past_quota_store_only_what_fits(
    make_artifacts_client, editor, project_id, pgsql, storage
):
    client = await make_artifacts_client(artifact_project_quota_bytes=3 * MiB)
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run(client, editor, experiment["id"])

    async def one(n):
        return await client.post(
            artifacts_path(run["id"]), data=os.urandom(2 * MiB), params={"name": f"f{n}"},
            headers=editor.headers,
        )  # fmt: skip

    answers = await asyncio.gather(one(1), one(2))

    statuses = sorted(response.status for response in answers)
    assert statuses == [201, 507]
    refused = next(response for response in answers if response.status == 507)
    await assert_problem(refused, 507, "artifact_quota_exceeded")
    [row] = artifact_rows(pgsql)
    assert usage(pgsql, project_id) == (2 * MiB, 1)
    assert list(storage.objects()) == [row["id"]]
    assert storage.pending() == []


@pytest.mark.parametrize("storage", ["s3"], indirect=True)
async def test_upload_while_object_store_is_unreachable_is_503(
    make_artifacts_client, editor, project_id, pgsql, get_free_port
):
    client = await make_artifacts_client(
        artifact_s3_endpoint_url=f"http://127.0.0.1:{get_free_port()}"
    )
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run(client, editor, experiment["id"])

    response = await client.post(
        artifacts_path(run["id"]), data=os.urandom(6 * MiB), params={"name": "x"},
        headers=editor.headers,
    )  # fmt: skip

    await assert_problem(response, 503, "storage_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert artifact_rows(pgsql) == []
    assert usage(pgsql, project_id) == (0, 0)


async def test_local_store_writes_many_small_pieces_in_order(tmp_path):
    # More pieces in one batch than one writev takes (a client that trickles its body).
    store = LocalStore(tmp_path)
    await store.open()
    pieces = [b"%05d;" % n for n in range(3000)]
    digest = hashlib.sha256()
    pending = await store.create(uuid.uuid4().hex, digest)

    await pending.write(pieces)
    await pending.publish()
    await pending.close()

    [stored] = [path for path in (tmp_path / "objects").rglob("*") if path.is_file()]
    assert stored.read_bytes() == b"".join(pieces)
    assert digest.hexdigest() == hashlib.sha256(b"".join(pieces)).hexdigest()
