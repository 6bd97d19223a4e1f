"""Artifacts over HTTP: who may do what, bad input and tokens; nothing is stored for a refused
request, and nothing of another project leaks."""

import uuid
from types import SimpleNamespace

import aiohttp
import pytest

from tests.experiment.artifact_kit import (
    LocalStorage,
    artifact_path,
    artifact_rows,
    artifacts_path,
    upload,
)
from tests.experiment.factories import audit_count, create_experiment, create_run, expect
from tests.plugins.roles import role_matrix
from tests.problems import assert_problem
from tests.tokens import SigningKey


@pytest.fixture
def storage(tmp_path):
    """Access rules do not depend on the store: the folder alone."""
    return LocalStorage(tmp_path / "artifacts")


@pytest.fixture
async def client(make_artifacts_client):
    return await make_artifacts_client()


@pytest.fixture
async def world(client, auth_stub):
    project_id = uuid.uuid4()
    author = auth_stub.member(project_id, "editor")
    experiment = await create_experiment(client, author, project_id)
    run = await create_run(client, author, experiment["id"])
    artifact = await upload(client, author, run["id"], b"s3cr3t bytes", name="secret-model.pt")
    return SimpleNamespace(project=project_id, author=author, run=run, artifact=artifact)


def assert_stored_as_before(pgsql, storage, world):
    assert [row["id"] for row in artifact_rows(pgsql)] == [world.artifact["id"]]
    assert list(storage.objects()) == [world.artifact["id"]]
    assert storage.pending() == []


# --- RBAC -------------------------------------------------------------------------------------

FORBIDDEN = (403, "forbidden")
NO_RUN = (404, "run_not_found")
NO_ARTIFACT = (404, "artifact_not_found")
MATRIX = {
    "upload_artifact": {"owner": 201, "editor": 201, "viewer": FORBIDDEN, "stranger": NO_RUN},
    "list_run_artifacts": {"owner": 200, "editor": 200, "viewer": 200, "stranger": NO_RUN},
    "get_artifact": {"owner": 200, "editor": 200, "viewer": 200, "stranger": NO_ARTIFACT},
    "download_artifact": {"owner": 200, "editor": 200, "viewer": 200, "stranger": NO_ARTIFACT},
    "approve_artifact": {"owner": 200, "editor": 200, "viewer": FORBIDDEN, "stranger": NO_ARTIFACT},
    "delete_artifact": {
        "owner": 204,
        "editor": FORBIDDEN,
        "viewer": FORBIDDEN,
        "stranger": NO_ARTIFACT,
    },
}
WRITES = {"upload_artifact", "approve_artifact", "delete_artifact"}


def _route_request(route, world):
    path = artifact_path(world.artifact["id"])
    return {
        "upload_artifact": ("POST", artifacts_path(world.run["id"]), {"name": "new"}),
        "list_run_artifacts": ("GET", artifacts_path(world.run["id"]), None),
        "get_artifact": ("GET", path, None),
        "download_artifact": ("GET", f"{path}/content", None),
        "approve_artifact": ("POST", f"{path}/approve", None),
        "delete_artifact": ("DELETE", path, None),
    }[route]


@role_matrix(MATRIX)
async def test_call_artifact_route_as_role_answers_per_matrix(
    client, caller_as, pgsql, storage, world, route, role, expected
):
    user = caller_as(role, world.project)
    method, path, params = _route_request(route, world)
    audited = audit_count(pgsql)

    response = await client.request(
        method, path, params=params, data=b"new bytes" if route == "upload_artifact" else None,
        headers=user.headers,
    )  # fmt: skip

    if isinstance(expected, int):
        assert response.status == expected, await response.text()
        assert audit_count(pgsql) == audited + (1 if route in WRITES else 0)
        return
    problem = await assert_problem(response, *expected)
    text = str(problem)
    assert world.artifact["id"] not in text
    assert "secret-model" not in text
    assert audit_count(pgsql) == audited
    assert_stored_as_before(pgsql, storage, world)
    assert artifact_rows(pgsql)[0]["approved_by"] is None


async def test_other_projects_artifact_is_404_everywhere(client, auth_stub, world, pgsql, storage):
    outsider = auth_stub.member(uuid.uuid4(), "owner")
    path = artifact_path(world.artifact["id"])

    answers = [
        await client.get(path, headers=outsider.headers),
        await client.get(f"{path}/content", headers=outsider.headers),
        await client.get(
            f"{path}/content", headers={**outsider.headers, "If-None-Match": "*", "Range": "x"}
        ),
        await client.post(f"{path}/approve", headers=outsider.headers),
        await client.delete(path, headers=outsider.headers),
    ]

    for response in answers:
        problem = await assert_problem(response, 404, "artifact_not_found")
        assert "s3cr3t" not in str(problem)
    assert_stored_as_before(pgsql, storage, world)


async def test_upload_into_other_projects_run_is_404_and_reads_no_body(
    client, auth_stub, world, pgsql, storage
):
    outsider = auth_stub.member(uuid.uuid4(), "owner")

    response = await client.post(
        artifacts_path(world.run["id"]), data=b"intruder", params={"name": "x"},
        headers=outsider.headers,
    )  # fmt: skip

    await assert_problem(response, 404, "run_not_found")
    assert_stored_as_before(pgsql, storage, world)


@pytest.mark.parametrize("path_kind", ["run", "artifact"])
async def test_unknown_or_malformed_ids_are_404(client, world, path_kind):
    if path_kind == "run":
        paths = [artifacts_path(uuid.uuid4()), artifacts_path("not-a-uuid")]
        expected = ["run_not_found", "not_found"]
    else:
        paths = [artifact_path(uuid.uuid4()), artifact_path("1")]
        expected = ["artifact_not_found", "not_found"]

    for path, code in zip(paths, expected, strict=True):
        await assert_problem(await client.get(path, headers=world.author.headers), 404, code)


# --- tokens -----------------------------------------------------------------------------------


def _tokens(world, signing_key):
    forger = SigningKey.generate(kid=signing_key.kid)  # the same kid, another key
    user = str(world.author.id)
    return {
        "missing": {},
        "malformed": {"Authorization": "Bearer not-a-jwt"},
        "forged": {"Authorization": f"Bearer {forger.mint(user)}"},
        "expired": {"Authorization": f"Bearer {signing_key.mint(user, ttl=-100)}"},
    }


@pytest.mark.parametrize("token", ["missing", "malformed", "forged", "expired"])
@pytest.mark.parametrize("route", ["upload_artifact", "download_artifact", "delete_artifact"])
async def test_bad_token_is_401_and_changes_nothing(
    client, world, pgsql, storage, auth_signing_key, token, route
):
    method, path, params = _route_request(route, world)

    response = await client.request(
        method, path, params=params, data=b"x" if method == "POST" else None,
        headers=_tokens(world, auth_signing_key)[token],
    )  # fmt: skip

    await assert_problem(response, 401, "unauthorized")
    assert "WWW-Authenticate" in response.headers
    assert_stored_as_before(pgsql, storage, world)


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"name": "n" * 1025}, "name"),
        ({"name": ""}, "name"),
        ({"name": "line\nbreak"}, "name"),
        ({"name": "tab\there"}, "name"),
        ({"name": "ok", "type": "t" * 65}, "type"),
        ({"name": "ok", "type": "../x"}, "type"),
        ({"name": "ok", "type": ""}, "type"),
        ({"name": "ok", "metadata": "[1, 2]"}, "metadata"),
        ({"name": "ok", "metadata": "{not json"}, "metadata"),
        ({"name": "ok", "metadata": '{"a": "\\u0000"}'}, "metadata"),
        ({"name": "ok", "metadata": '{"a":' * 20 + "1" + "}" * 20}, "metadata"),
        ({"name": "ok", "metadata": '{"a": "' + "x" * 4090 + '"}'}, "metadata"),
        ({"name": "ok", "surprise": "1"}, "surprise"),
        ({"name": "ok", "limit": "5"}, "limit"),
        ({}, "name"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_upload_invalid_query_is_422_and_stores_nothing(
    client, world, pgsql, storage, params, field
):
    response = await client.post(
        artifacts_path(world.run["id"]), data=b"bytes", params=params,
        headers=world.author.headers,
    )  # fmt: skip

    problem = await assert_problem(response, 422, "validation_failed")
    assert [(error["in"], error["field"]) for error in problem["errors"]] == [("query", field)]
    assert_stored_as_before(pgsql, storage, world)


async def test_upload_name_with_nul_is_422(client, world, pgsql, storage):
    response = await client.post(
        f"{artifacts_path(world.run['id'])}?name=a%00b", data=b"x", headers=world.author.headers
    )

    problem = await assert_problem(response, 422, "validation_failed")
    assert problem["errors"][0]["type"] == "string_nul"
    assert_stored_as_before(pgsql, storage, world)


@pytest.mark.parametrize("content_type", ["text", "a/b c", "/json", "x" * 250 + "/" + "y" * 10])
async def test_upload_malformed_content_type_is_415(client, world, pgsql, storage, content_type):
    response = await client.post(
        artifacts_path(world.run["id"]), data=b"x", params={"name": "n"},
        headers={**world.author.headers, "Content-Type": content_type},
    )  # fmt: skip

    await assert_problem(response, 415, "unsupported_media_type")
    assert_stored_as_before(pgsql, storage, world)


async def test_upload_bad_idempotency_key_is_400(client, world, pgsql, storage):
    response = await client.post(
        artifacts_path(world.run["id"]), data=b"x", params={"name": "n"},
        headers={**world.author.headers, "Idempotency-Key": "k" * 256},
    )  # fmt: skip

    await assert_problem(response, 400, "invalid_idempotency_key")
    assert_stored_as_before(pgsql, storage, world)


def _form(*parts):
    form = aiohttp.FormData()
    for name, data, filename in parts:
        form.add_field(name, data, filename=filename, content_type="application/octet-stream")
    return form


@pytest.mark.parametrize(
    ("parts", "status", "code"),
    [
        ([("other", b"x", "a.bin")], 422, "validation_failed"),
        ([("file", b"x", "a.bin"), ("file", b"y", "b.bin")], 422, "validation_failed"),
        ([("file", b"x", "n" * 1025)], 422, "validation_failed"),
    ],
    ids=["no_file_part", "two_parts", "huge_file_name"],
)
async def test_upload_bad_form_is_refused_and_stores_nothing(
    client, world, pgsql, storage, parts, status, code
):
    response = await client.post(
        artifacts_path(world.run["id"]), data=_form(*parts), headers=world.author.headers
    )

    await assert_problem(response, status, code)
    assert_stored_as_before(pgsql, storage, world)


async def test_upload_form_file_without_any_name_is_422(client, world, pgsql, storage):
    body = b'--b0undary\r\nContent-Disposition: form-data; name="file"\r\n\r\nx\r\n--b0undary--\r\n'

    response = await client.post(
        artifacts_path(world.run["id"]), data=body,
        headers={**world.author.headers, "Content-Type": "multipart/form-data; boundary=b0undary"},
    )  # fmt: skip

    problem = await assert_problem(response, 422, "validation_failed")
    assert problem["errors"][0]["field"] == "name"
    assert_stored_as_before(pgsql, storage, world)


async def test_upload_form_without_boundary_is_400(client, world, pgsql, storage):
    response = await client.post(
        artifacts_path(world.run["id"]), data=b"--x\r\n", params={"name": "n"},
        headers={**world.author.headers, "Content-Type": "multipart/form-data"},
    )  # fmt: skip

    await assert_problem(response, 400, "malformed_multipart")
    assert_stored_as_before(pgsql, storage, world)


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "x"}, {"limit": "501"}, {"type": "a b"}, {"sort": "name"}],
)
async def test_list_artifacts_invalid_query_is_422(client, world, params):
    response = await client.get(
        artifacts_path(world.run["id"]), params=params, headers=world.author.headers
    )

    await assert_problem(response, 422, "validation_failed")


async def test_list_artifacts_forged_cursor_is_400(client, world):
    response = await client.get(
        artifacts_path(world.run["id"]),
        params={"cursor": "eyJjcmVhdGVkX2F0IjoxfQ"},  # {"created_at":1}
        headers=world.author.headers,
    )

    await assert_problem(response, 400, "invalid_cursor")


@pytest.mark.parametrize("route", ["get_artifact", "download_artifact"])
async def test_read_artifact_with_query_parameters_is_422(client, world, route):
    method, path, _ = _route_request(route, world)

    response = await client.request(method, path, params={"x": "1"}, headers=world.author.headers)

    await assert_problem(response, 422, "validation_failed")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"surprise": 1}', 422, "validation_failed"),
        (b"{not json", 400, "malformed_json"),
        (b"[]", 422, "validation_failed"),
    ],
)
async def test_approve_with_bad_body_is_refused(client, world, pgsql, body, status, code):
    response = await client.post(
        f"{artifact_path(world.artifact['id'])}/approve", data=body,
        headers={**world.author.headers, "Content-Type": "application/json"},
    )  # fmt: skip

    await assert_problem(response, status, code)
    assert artifact_rows(pgsql)[0]["approved_by"] is None


async def test_audit_lists_artifact_entries(client, world):
    owner_of_project = world.author
    response = await client.get(
        "/api/v1/audit",
        params={"project_id": str(world.project), "entity_type": "artifact"},
        headers=owner_of_project.headers,
    )

    page = await expect(response, 200)
    assert [(e["action"], e["entity_id"]) for e in page["items"]] == [
        ("artifact.created", world.artifact["id"])
    ]
