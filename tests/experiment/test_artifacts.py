"""Artifacts over HTTP against each object store (a folder, and S3 on moto's server): what is
stored for every upload, and what comes back on download (ranges, entity tags)."""

import os
import uuid

import pytest

from tests.experiment.artifact_kit import (
    artifact_path,
    artifact_rows,
    artifacts_path,
    event_rows,
    sha256,
    upload,
    usage,
)
from tests.experiment.factories import (
    audit_rows,
    create_experiment,
    create_run,
    create_run_in_status,
    expect,
)
from tests.experiment.webhook_kit import subscribe
from tests.plugins.waiting import eventually
from tests.problems import assert_problem

MiB = 1024 * 1024


@pytest.fixture
async def client(make_artifacts_client):
    return await make_artifacts_client()


def content(artifact_id):
    return f"{artifact_path(artifact_id)}/content"


def assert_nothing_stored(pgsql, storage):
    assert artifact_rows(pgsql) == []
    assert storage.objects() == {}
    assert storage.pending() == []


# --- uploads ----------------------------------------------------------------------------------


async def test_upload_raw_body_stores_row_object_audit_and_event(
    client, editor, owner, project_id, run, pgsql, storage, receiver
):
    await subscribe(client, owner, project_id, receiver().url, ["artifact.created"])
    data = os.urandom(3 * MiB + 17)

    response = await client.post(
        artifacts_path(run["id"]),
        data=data,
        params={"name": "checkpoints/epoch-3.pt", "type": "model", "metadata": '{"epoch": 3}'},
        headers={**editor.headers, "Content-Type": "application/x-pytorch"},
    )

    artifact = await expect(response, 201)
    assert response.headers["Location"] == artifact_path(artifact["id"])
    assert artifact == {
        "id": artifact["id"],
        "run_id": run["id"],
        "project_id": str(project_id),
        "name": "checkpoints/epoch-3.pt",
        "type": "model",
        "size": len(data),
        "sha256": sha256(data),
        "content_type": "application/x-pytorch",
        "metadata": {"epoch": 3},
        "created_by": str(editor.id),
        "created_at": artifact["created_at"],
        "approved_by": None,
        "approved_at": None,
    }
    [row] = artifact_rows(pgsql)
    assert (row["id"], row["size"], row["sha256"]) == (artifact["id"], len(data), sha256(data))
    assert storage.objects() == {artifact["id"]: data}
    assert storage.pending() == []
    assert usage(pgsql, project_id) == (len(data), 1)
    [audit] = audit_rows(pgsql, artifact["id"])
    assert (audit["action"], audit["entity_type"], str(audit["parent_id"])) == (
        "artifact.created",
        "artifact",
        run["id"],
    )
    [event] = event_rows(pgsql, "artifact.created")
    assert event["payload"]["data"] == artifact


async def test_upload_chunked_body_without_length_is_stored_whole(client, editor, run, storage):
    pieces = [os.urandom(MiB + 5) for _ in range(11)]  # past two S3 parts

    async def body():
        for piece in pieces:
            yield piece

    response = await client.post(
        artifacts_path(run["id"]), data=body(), params={"name": "log.txt"}, headers=editor.headers
    )

    artifact = await expect(response, 201)
    data = b"".join(pieces)
    assert (artifact["size"], artifact["sha256"]) == (len(data), sha256(data))
    assert artifact["content_type"] == "application/octet-stream"
    assert storage.objects() == {artifact["id"]: data}
    assert storage.pending() == []


async def test_upload_form_takes_the_file_part_and_its_name(client, editor, run, storage):
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("file", b"a,b\n1,2\n", filename="results.csv", content_type="text/csv")

    response = await client.post(
        artifacts_path(run["id"]), data=form, params={"type": "table"}, headers=editor.headers
    )

    artifact = await expect(response, 201)
    assert (artifact["name"], artifact["type"], artifact["content_type"]) == (
        "results.csv",
        "table",
        "text/csv",
    )
    assert storage.objects() == {artifact["id"]: b"a,b\n1,2\n"}


async def test_upload_form_name_in_query_wins_over_file_name(client, editor, run):
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("file", b"{}", filename="blob", content_type="application/json")

    response = await client.post(
        artifacts_path(run["id"]), data=form, params={"name": "conf.json"}, headers=editor.headers
    )

    assert (await expect(response, 201))["name"] == "conf.json"


async def test_upload_empty_body_is_an_empty_artifact(client, editor, run, storage):
    artifact = await upload(client, editor, run["id"], b"", name="empty")

    assert (artifact["size"], artifact["sha256"]) == (0, sha256(b""))
    assert storage.objects() == {artifact["id"]: b""}
    response = await client.get(content(artifact["id"]), headers=editor.headers)
    assert (response.status, await response.read()) == (200, b"")


async def test_upload_traversal_looking_name_is_a_label_only(client, editor, run, storage):
    artifact = await upload(client, editor, run["id"], b"root:x:0:0", name="../../etc/passwd")

    assert artifact["name"] == "../../etc/passwd"
    assert storage.objects() == {artifact["id"]: b"root:x:0:0"}
    if storage.kind == "local":
        key = uuid.UUID(artifact["id"]).hex
        files = [path for path in storage.root.parent.rglob("*") if path.is_file()]
        assert files == [storage.root / "objects" / key[:2] / key]
    response = await client.get(content(artifact["id"]), headers=editor.headers)
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"passwd\"; filename*=UTF-8''passwd"
    )


async def test_upload_to_finished_and_draft_runs_is_accepted(client, editor, experiment):
    for status in ("draft", "succeeded", "failed"):
        run = await create_run_in_status(client, editor, experiment["id"], status)
        await upload(client, editor, run["id"], b"data")


async def test_upload_to_archived_run_is_409_and_stores_nothing(
    client, editor, experiment, pgsql, storage
):
    run = await create_run_in_status(client, editor, experiment["id"], "archived")

    response = await client.post(
        artifacts_path(run["id"]), data=b"late", params={"name": "x"}, headers=editor.headers
    )

    await assert_problem(response, 409, "run_archived")
    assert_nothing_stored(pgsql, storage)


# --- limits -----------------------------------------------------------------------------------


async def test_upload_past_size_cap_is_413_and_stores_nothing(
    make_artifacts_client, editor, project_id, pgsql, storage
):
    client = await make_artifacts_client(artifact_max_bytes=MiB)
    experiment = await create_experiment(client, editor, project_id)
    run = await create_run(client, editor, experiment["id"])
    await upload(client, editor, run["id"], b"x" * MiB)  # exactly the cap

    declared = await client.post(
        artifacts_path(run["id"]), data=b"x" * (MiB + 1), params={"name": "big"},
        headers=editor.headers,
    )  # fmt: skip

    async def chunked():
        for _ in range(3):
            yield b"y" * (MiB // 2 + 1)

    streamed = await client.post(
        artifacts_path(run["id"]), data=chunked(), params={"name": "big"}, headers=editor.headers
    )

    for response in (declared, streamed):
        problem = await assert_problem(response, 413, "artifact_too_large")
        assert str(MiB) in problem["detail"]
    assert [row["name"] for row in artifact_rows(pgsql)] == ["model.bin"]
    assert len(storage.objects()) == 1
    assert storage.pending() == []


async def test_upload_past_project_quota_is_507_until_space_is_freed(
    make_artifacts_client, owner, project_id, pgsql, storage
):
    client = await make_artifacts_client(artifact_project_quota_bytes=10_000)
    experiment = await create_experiment(client, owner, project_id)
    run = await create_run(client, owner, experiment["id"])
    first = await upload(client, owner, run["id"], b"a" * 8_000)

    async def chunked():
        yield b"b" * 4_000

    over_declared = await client.post(
        artifacts_path(run["id"]), data=b"b" * 4_000, params={"name": "b"}, headers=owner.headers
    )
    over_streamed = await client.post(
        artifacts_path(run["id"]), data=chunked(), params={"name": "b"}, headers=owner.headers
    )

    for response in (over_declared, over_streamed):
        await assert_problem(response, 507, "artifact_quota_exceeded")
    assert usage(pgsql, project_id) == (8_000, 1)
    assert list(storage.objects()) == [first["id"]]
    await expect(await client.delete(artifact_path(first["id"]), headers=owner.headers), 204)
    assert usage(pgsql, project_id) == (0, 0)
    second = await upload(client, owner, run["id"], b"b" * 4_000)
    assert list(storage.objects()) == [second["id"]]
    assert usage(pgsql, project_id) == (4_000, 1)


async def test_quota_is_per_project(make_artifacts_client, auth_stub, pgsql):
    client = await make_artifacts_client(artifact_project_quota_bytes=1_000)
    runs = []
    for _ in range(2):
        project = uuid.uuid4()
        user = auth_stub.member(project, "editor")
        experiment = await create_experiment(client, user, project)
        runs.append((user, await create_run(client, user, experiment["id"])))

    for user, run in runs:
        await upload(client, user, run["id"], b"z" * 1_000)

    assert sorted(row["size"] for row in artifact_rows(pgsql)) == [1_000, 1_000]


# --- reading ----------------------------------------------------------------------------------


@pytest.fixture
async def stored(client, editor, run):
    data = bytes(range(256)) * 40  # 10,240 bytes
    artifact = await upload(client, editor, run["id"], data, name="dir/values é.bin")
    return artifact, data


async def test_get_artifact_returns_it(client, viewer, stored):
    artifact, _ = stored

    response = await client.get(artifact_path(artifact["id"]), headers=viewer.headers)

    assert await expect(response, 200) == artifact


async def test_download_streams_content_with_entity_tag_and_safe_headers(client, viewer, stored):
    artifact, data = stored

    response = await client.get(content(artifact["id"]), headers=viewer.headers)

    assert response.status == 200
    assert await response.read() == data
    headers = response.headers
    assert headers["ETag"] == f'"{sha256(data)}"'
    assert headers["Content-Length"] == str(len(data))
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in headers["Content-Security-Policy"]
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"values _.bin\"; filename*=UTF-8''values%20%C3%A9.bin"
    )


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=10-", 10, 10_240),
        ("bytes=-5", 10_235, 10_240),
        ("bytes=10230-99999999", 10_230, 10_240),
        ("bytes=-99999", 0, 10_240),
        ("BYTES = 7-7", 7, 8),
    ],
)
async def test_download_range_is_206_with_that_part(client, viewer, stored, header, start, stop):
    artifact, data = stored

    response = await client.get(
        content(artifact["id"]), headers={**viewer.headers, "Range": header}
    )

    assert response.status == 206, await response.text()
    assert await response.read() == data[start:stop]
    assert response.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{len(data)}"
    assert response.headers["Content-Length"] == str(stop - start)
    assert response.headers["ETag"] == f'"{artifact["sha256"]}"'


@pytest.mark.parametrize("header", ["bytes=10240-", "bytes=99999-100000", "bytes=-0"])
async def test_download_range_past_the_end_is_416(client, viewer, stored, header):
    artifact, data = stored

    response = await client.get(
        content(artifact["id"]), headers={**viewer.headers, "Range": header}
    )

    await assert_problem(response, 416, "range_not_satisfiable")
    assert response.headers["Content-Range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize(
    "header",
    ["bytes=5-2", "bytes=a-b", "items=0-5", "bytes=0-1,5-6", "bytes=", "bytes=\u0661-\u0662"],
)
async def test_download_malformed_or_several_ranges_answer_whole(client, viewer, stored, header):
    artifact, data = stored

    response = await client.get(
        content(artifact["id"]), headers={**viewer.headers, "Range": header}
    )

    assert response.status == 200
    assert await response.read() == data


@pytest.mark.parametrize("form", ['"{tag}"', 'W/"{tag}"', '"other", "{tag}"', "*"])
async def test_download_if_none_match_is_304(client, viewer, stored, form):
    artifact, _ = stored
    header = form.format(tag=artifact["sha256"])

    response = await client.get(
        content(artifact["id"]), headers={**viewer.headers, "If-None-Match": header}
    )

    assert response.status == 304
    assert await response.read() == b""
    assert response.headers["ETag"] == f'"{artifact["sha256"]}"'


async def test_download_if_none_match_other_tag_is_200(client, viewer, stored):
    artifact, data = stored

    response = await client.get(
        content(artifact["id"]), headers={**viewer.headers, "If-None-Match": '"0000"'}
    )

    assert (response.status, await response.read()) == (200, data)


async def test_download_if_none_match_wins_over_unsatisfiable_range(client, viewer, stored):
    artifact, _ = stored

    response = await client.get(
        content(artifact["id"]),
        headers={
            **viewer.headers,
            "If-None-Match": f'"{artifact["sha256"]}"',
            "Range": "bytes=999999-",
        },
    )

    assert response.status == 304


async def test_download_if_range_with_another_tag_answers_whole(client, viewer, stored):
    artifact, data = stored
    ranged = {**viewer.headers, "Range": "bytes=0-0"}

    stale = await client.get(content(artifact["id"]), headers={**ranged, "If-Range": '"old"'})
    current = await client.get(
        content(artifact["id"]), headers={**ranged, "If-Range": f'"{artifact["sha256"]}"'}
    )

    assert (stale.status, len(await stale.read())) == (200, len(data))
    assert (current.status, await current.read()) == (206, data[:1])


async def test_head_of_content_gives_headers_without_body(client, viewer, stored):
    artifact, data = stored

    response = await client.head(content(artifact["id"]), headers=viewer.headers)

    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["ETag"] == f'"{artifact["sha256"]}"'
    assert await response.read() == b""


async def test_list_artifacts_pages_in_upload_order_and_filters_by_type(client, editor, run):
    made = [
        await upload(client, editor, run["id"], b"%d" % n, name=f"f{n}", type=kind)
        for n, kind in enumerate(["model", "plot", "model", "model", "log"])
    ]

    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await expect(
            await client.get(artifacts_path(run["id"]), params=params, headers=editor.headers), 200
        )
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    models = await expect(
        await client.get(
            artifacts_path(run["id"]), params={"type": "model"}, headers=editor.headers
        ),
        200,
    )

    assert seen == made
    assert [item["name"] for item in models["items"]] == ["f0", "f2", "f3"]


# --- approval and deletion ----------------------------------------------------------------------


async def test_approve_records_approver_with_audit_and_event_once(
    client, editor, owner, project_id, stored, pgsql, receiver
):
    await subscribe(client, owner, project_id, receiver().url, ["artifact.approved"])
    artifact, _ = stored

    first = await expect(
        await client.post(f"{artifact_path(artifact['id'])}/approve", headers=editor.headers), 200
    )
    again = await expect(
        await client.post(
            f"{artifact_path(artifact['id'])}/approve", json={}, headers=owner.headers
        ),
        200,
    )

    assert first["approved_by"] == str(editor.id)
    assert first["approved_at"] is not None
    assert again == first
    [row] = artifact_rows(pgsql)
    assert row["approved_by"] == str(editor.id)
    actions = [entry["action"] for entry in audit_rows(pgsql, artifact["id"])]
    assert actions == ["artifact.created", "artifact.approved"]
    [event] = event_rows(pgsql, "artifact.approved")
    assert event["payload"]["data"]["approved_by"] == str(editor.id)


async def test_approve_in_archived_run_is_409(client, editor, experiment, pgsql):
    run = await create_run_in_status(client, editor, experiment["id"], "succeeded")
    artifact = await upload(client, editor, run["id"])
    await expect(
        await client.patch(
            f"/api/v1/runs/{run['id']}", json={"status": "archived"}, headers=editor.headers
        ),
        200,
    )

    response = await client.post(f"{artifact_path(artifact['id'])}/approve", headers=editor.headers)

    await assert_problem(response, 409, "run_archived")
    assert artifact_rows(pgsql)[0]["approved_by"] is None


async def test_delete_removes_row_and_object_and_frees_quota(
    client, owner, stored, project_id, pgsql, storage
):
    artifact, data = stored
    assert usage(pgsql, project_id) == (len(data), 1)

    response = await client.delete(artifact_path(artifact["id"]), headers=owner.headers)

    assert response.status == 204
    assert artifact_rows(pgsql) == []
    assert storage.objects() == {}
    assert usage(pgsql, project_id) == (0, 0)
    assert audit_rows(pgsql, artifact["id"])[-1]["action"] == "artifact.deleted"
    gone = await client.get(content(artifact["id"]), headers=owner.headers)
    await assert_problem(gone, 404, "artifact_not_found")


async def test_deleted_run_takes_its_artifacts_and_their_bytes(
    make_artifacts_client, owner, project_id, pgsql, storage
):
    client = await make_artifacts_client(artifact_trash_interval=0.05)
    experiment = await create_experiment(client, owner, project_id)
    run = await create_run(client, owner, experiment["id"])
    kept_run = await create_run(client, owner, experiment["id"])
    for n in range(3):
        await upload(client, owner, run["id"], b"r" * 100, name=f"a{n}")
    kept = await upload(client, owner, kept_run["id"], b"k" * 10)

    await expect(await client.delete(f"/api/v1/runs/{run['id']}", headers=owner.headers), 204)

    assert [row["id"] for row in artifact_rows(pgsql)] == [kept["id"]]
    assert usage(pgsql, project_id) == (10, 1)
    await eventually(lambda: list(storage.objects()) == [kept["id"]], what="objects removed")


# --- Idempotency-Key --------------------------------------------------------------------------


async def test_upload_with_same_key_and_content_is_replayed_and_stored_once(
    client, editor, run, pgsql, storage
):
    headers = {"Idempotency-Key": "upload-1"}
    first = await client.post(
        artifacts_path(run["id"]), data=b"same", params={"name": "a"},
        headers={**editor.headers, **headers},
    )  # fmt: skip
    again = await client.post(
        artifacts_path(run["id"]), data=b"same", params={"name": "a"},
        headers={**editor.headers, **headers},
    )  # fmt: skip

    assert first.status == again.status == 201
    assert await first.read() == await again.read()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert len(artifact_rows(pgsql)) == 1
    assert len(storage.objects()) == 1


async def test_upload_with_same_key_and_other_content_is_422(client, editor, run, pgsql, storage):
    headers = {**editor.headers, "Idempotency-Key": "upload-2"}
    await expect(
        await client.post(
            artifacts_path(run["id"]), data=b"one", params={"name": "a"}, headers=headers
        ),
        201,
    )

    response = await client.post(
        artifacts_path(run["id"]), data=b"two", params={"name": "a"}, headers=headers
    )

    await assert_problem(response, 422, "idempotency_key_reused")
    assert len(artifact_rows(pgsql)) == 1
    assert len(storage.objects()) == 1
    assert storage.pending() == []


async def test_same_key_of_another_user_is_another_upload(client, editor, auth_stub, run, pgsql):
    other = auth_stub.member(uuid.UUID(run["project_id"]), "editor")
    for user in (editor, other):
        await expect(
            await client.post(
                artifacts_path(run["id"]), data=b"x", params={"name": "a"},
                headers={**user.headers, "Idempotency-Key": "shared"},
            ),
            201,
        )  # fmt: skip

    assert len(artifact_rows(pgsql)) == 2
