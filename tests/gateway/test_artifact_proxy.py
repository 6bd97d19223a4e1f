"""Artifacts through the gateway, with the real experiment app behind it: uploads far past the
gateway's own body limit (which bounds only bodies it reads itself) stream through, with a length
or chunked, and downloads come back whole or by range, with the service's answers untouched."""

import hashlib
import os

import pytest

from experiment_service.app import create_app as create_experiment_app
from tests.experiment.factories import create_experiment, create_run, expect

MiB = 1024 * 1024


@pytest.fixture
async def through_gateway(pgsql, aiohttp_server, make_settings, start_gateway, tmp_path):
    """A gateway whose experiment service is the real app (artifacts in a folder, a 32 MiB cap)."""
    experiment = create_experiment_app(
        make_settings(
            "experiment", artifact_dir=tmp_path / "artifacts", artifact_max_bytes=32 * MiB
        )
    )
    server = await aiohttp_server(experiment)
    return await start_gateway(experiment_url=str(server.make_url("")).rstrip("/"))


@pytest.fixture
async def run(through_gateway, auth_stub, project_id):
    editor = auth_stub.member(project_id, "editor")
    experiment = await create_experiment(through_gateway, editor, project_id)
    return editor, await create_run(through_gateway, editor, experiment["id"])


async def test_upload_past_gateway_body_limit_streams_through_and_downloads_back(
    through_gateway, run
):
    editor, run_ = run
    data = os.urandom(20 * MiB)  # the gateway reads at most 1 MiB of a body itself

    async def chunked():
        for start in range(0, len(data), MiB):
            yield data[start : start + MiB]

    with_length = await through_gateway.post(
        f"/api/v1/runs/{run_['id']}/artifacts",
        data=data,
        params={"name": "a.bin"},
        headers={**editor.headers, "Content-Type": "application/octet-stream"},
    )
    without_length = await through_gateway.post(
        f"/api/v1/runs/{run_['id']}/artifacts",
        data=chunked(),
        params={"name": "b.bin"},
        headers=editor.headers,
    )

    for response in (with_length, without_length):
        artifact = await expect(response, 201)
        assert artifact["sha256"] == hashlib.sha256(data).hexdigest()
        whole = await through_gateway.get(
            f"/api/v1/artifacts/{artifact['id']}/content", headers=editor.headers
        )
        assert whole.status == 200
        assert await whole.read() == data
        part = await through_gateway.get(
            f"/api/v1/artifacts/{artifact['id']}/content",
            headers={**editor.headers, "Range": "bytes=1000-1999"},
        )
        assert part.status == 206
        assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
        assert await part.read() == data[1000:2000]
        cached = await through_gateway.get(
            f"/api/v1/artifacts/{artifact['id']}/content",
            headers={**editor.headers, "If-None-Match": whole.headers["ETag"]},
        )
        assert cached.status == 304


async def test_upload_past_service_cap_is_its_413_through_the_gateway(through_gateway, run):
    editor, run_ = run

    response = await through_gateway.post(
        f"/api/v1/runs/{run_['id']}/artifacts",
        data=os.urandom(33 * MiB),
        params={"name": "too-big"},
        headers=editor.headers,
    )

    assert response.status == 413
    assert (await response.json(content_type=None))["code"] == "artifact_too_large"
