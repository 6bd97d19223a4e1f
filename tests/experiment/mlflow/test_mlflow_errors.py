"""The MLflow door's refusals: MLflow's error shape, codes and statuses (never problem+json,
never a 500), for bad bodies, tokens, other projects' data, roles, illegal moves and limits."""

import uuid

import pytest

from tests.api_key_kit import Person
from tests.experiment.mlflow.mlflow_kit import API, call, new_run, refused

BAD = "INVALID_PARAMETER_VALUE"


async def test_malformed_json_is_invalid_parameter_value(client, through):
    response = await client.post(
        API + "/experiments/create",
        data=b"{not json",
        headers={**through.headers, "Content-Type": "application/json"},
    )

    assert response.status == 400
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error_code"] == BAD
    assert "not valid JSON" in body["message"]


async def test_wrong_types_are_invalid_parameter_value(client, through):
    run = await new_run(client, through)

    message = await refused(
        client,
        through,
        "POST",
        "/runs/log-metric",
        400,
        BAD,
        json={"run_id": run["info"]["run_id"], "key": "loss", "value": "fast", "timestamp": 1},
    )
    assert "value" in message
    await refused(client, through, "POST", "/experiments/create", 400, BAD, json={"name": 5})


async def test_unknown_fields_are_ignored(client, through):
    created = await call(
        client,
        through,
        "POST",
        "/experiments/create",
        json={"name": "tunnel", "from_a_newer_client": {"x": 1}},
    )

    got = await call(
        client,
        through,
        "GET",
        "/experiments/get",
        params={"experiment_id": created["experiment_id"], "also_new": "1"},
    )
    assert got["experiment"]["name"] == "tunnel"


async def test_a_key_without_a_project_is_refused_saying_why(client, auth, alice):
    unbound = auth.through(alice, await auth.key(alice))

    for who in (unbound, alice):  # an access token names no project either
        message = await refused(
            client, who, "POST", "/experiments/create", 400, BAD, json={"name": "tunnel"}
        )
        assert "bound to a project" in message


async def test_a_missing_or_forged_token_is_unauthenticated(client):
    nobody = Person("nobody", {})
    forger = Person("forger", {"Authorization": "Bearer etpk_" + "0" * 32 + "_" + "A" * 43})

    await refused(
        client,
        nobody,
        "GET",
        "/experiments/get-by-name",
        401,
        "UNAUTHENTICATED",
        params={"experiment_name": "x"},
    )
    await refused(
        client,
        forger,
        "GET",
        "/experiments/get-by-name",
        401,
        "UNAUTHENTICATED",
        params={"experiment_name": "x"},
    )


async def test_another_projects_run_does_not_exist(client, auth, alice, through):
    elsewhere = await auth.project(alice)
    other_key = auth.through(alice, await auth.key(alice, project_id=elsewhere, role="editor"))
    theirs = await new_run(client, other_key)
    run_id = theirs["info"]["run_id"]

    await refused(
        client,
        through,
        "GET",
        "/runs/get",
        404,
        "RESOURCE_DOES_NOT_EXIST",
        params={"run_id": run_id},
    )
    await refused(
        client,
        through,
        "POST",
        "/runs/log-batch",
        404,
        "RESOURCE_DOES_NOT_EXIST",
        json={"run_id": run_id, "params": [{"key": "lr", "value": "1"}]},
    )
    await refused(
        client,
        through,
        "GET",
        "/experiments/get",
        404,
        "RESOURCE_DOES_NOT_EXIST",
        params={"experiment_id": theirs["info"]["experiment_id"]},
    )
    still = await call(client, other_key, "GET", "/runs/get", params={"run_id": run_id})
    assert still["run"]["data"]["params"] == []


async def test_a_viewer_key_cannot_write(client, auth, alice, project, through):
    run = await new_run(client, through)
    viewer = auth.through(alice, await auth.key(alice, project_id=project, role="viewer"))

    await refused(
        client,
        viewer,
        "POST",
        "/runs/log-metric",
        403,
        "PERMISSION_DENIED",
        json={
            "run_id": run["info"]["run_id"],
            "key": "loss",
            "value": 1,
            "timestamp": 1764806400000,
        },
    )
    await refused(
        client,
        viewer,
        "POST",
        "/experiments/create",
        403,
        "PERMISSION_DENIED",
        json={"name": "viewer's"},
    )
    await call(client, viewer, "GET", "/runs/get", params={"run_id": run["info"]["run_id"]})


async def test_an_illegal_status_move_is_a_conflict_not_a_500(client, through):
    run_id = (await new_run(client, through))["info"]["run_id"]
    ended = await call(
        client, through, "POST", "/runs/update", json={"run_id": run_id, "status": "FINISHED"}
    )
    assert ended["run_info"]["status"] == "FINISHED"

    again = await call(
        client, through, "POST", "/runs/update", json={"run_id": run_id, "status": "FINISHED"}
    )
    message = await refused(
        client,
        through,
        "POST",
        "/runs/update",
        409,
        "RESOURCE_CONFLICT",
        json={"run_id": run_id, "status": "RUNNING"},
    )

    assert again["run_info"]["end_time"] == ended["run_info"]["end_time"]
    assert "succeeded" in message
    await refused(
        client,
        through,
        "POST",
        "/runs/update",
        400,
        BAD,
        json={"run_id": run_id, "status": "PAUSED"},
    )


async def test_mlflows_batch_and_length_limits_hold(client, through):
    run_id = (await new_run(client, through))["info"]["run_id"]
    point = {"key": "loss", "value": 1.0, "timestamp": 1764806400000}
    over_limits = [
        ("/runs/log-batch", {"metrics": [point] * 1001}),
        ("/runs/log-batch", {"params": [{"key": f"p{i}", "value": "1"} for i in range(101)]}),
        (
            "/runs/log-batch",
            {"metrics": [point] * 950, "tags": [{"key": f"t{i}", "value": "1"} for i in range(51)]},
        ),
        ("/runs/log-parameter", {"key": "k" * 251, "value": "1"}),
        ("/runs/log-parameter", {"key": "k", "value": "v" * 6001}),
        ("/runs/set-tag", {"key": "k", "value": "v" * 8001}),
    ]
    for path, body in over_limits:
        await refused(client, through, "POST", path, 400, BAD, json={"run_id": run_id, **body})

    await call(
        client,
        through,
        "POST",
        "/runs/log-batch",
        json={"run_id": run_id, "metrics": [point] * 1000},
    )
    history = await call(
        client,
        through,
        "GET",
        "/metrics/get-history",
        params={"run_id": run_id, "metric_key": "loss"},
    )
    assert len(history["metrics"]) == 1000


async def test_a_param_keeps_its_first_value(client, through):
    run_id = (await new_run(client, through))["info"]["run_id"]
    param = {"run_id": run_id, "key": "lr", "value": "0.1"}
    await call(client, through, "POST", "/runs/log-parameter", json=param)
    await call(client, through, "POST", "/runs/log-parameter", json=param)

    message = await refused(
        client, through, "POST", "/runs/log-parameter", 400, BAD, json={**param, "value": "0.2"}
    )

    assert "Changing param values is not allowed" in message


@pytest.mark.unchecked_answers("MLflow's shape also for its routes ETP does not serve")
async def test_a_route_mlflow_has_and_etp_not_is_endpoint_not_found(client, through):
    await refused(
        client,
        through,
        "POST",
        "/registered-models/create",
        404,
        "ENDPOINT_NOT_FOUND",
        json={"name": "m"},
    )


async def test_unknown_ids_do_not_exist(client, through):
    await refused(
        client,
        through,
        "GET",
        "/runs/get",
        404,
        "RESOURCE_DOES_NOT_EXIST",
        params={"run_id": "not-a-run"},
    )
    await refused(
        client,
        through,
        "GET",
        "/runs/get",
        404,
        "RESOURCE_DOES_NOT_EXIST",
        params={"run_id": uuid.uuid4().hex},
    )
    await refused(
        client,
        through,
        "GET",
        "/experiments/get-by-name",
        404,
        "RESOURCE_DOES_NOT_EXIST",
        params={"experiment_name": "none such"},
    )


async def test_an_experiment_name_is_taken_once(client, through):
    await call(client, through, "POST", "/experiments/create", json={"name": "tunnel"})

    await refused(
        client,
        through,
        "POST",
        "/experiments/create",
        400,
        "RESOURCE_ALREADY_EXISTS",
        json={"name": "tunnel"},
    )


async def test_a_filter_this_api_cannot_read_is_refused_naming_it(client, through):
    run = await new_run(client, through)
    search = {"experiment_ids": [run["info"]["experiment_id"]]}

    for bad in (
        "metrics.loss > 'x'",
        "params.lr ~ 1",
        "attributes.artifact_uri = 'x'",
        "metrics.a > 1 OR metrics.b > 1",
    ):
        await refused(
            client, through, "POST", "/runs/search", 400, BAD, json={**search, "filter": bad}
        )
    message = await refused(
        client,
        through,
        "POST",
        "/runs/search",
        400,
        BAD,
        json={**search, "order_by": ["attributes.end_time"]},
    )
    assert "attributes.end_time" in message
