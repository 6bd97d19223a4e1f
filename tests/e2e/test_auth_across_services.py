"""A user signs up at the real auth service and works in the real experiment service with it."""

import uuid


async def sign_up(auth) -> dict[str, str]:
    name = f"e2e{uuid.uuid4().hex[:8]}"
    password = "end to end password"
    registered = await auth.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.org", "password": password},
    )
    assert registered.status == 201, registered.text
    login = await auth.post("/api/v1/auth/login", json={"username": name, "password": password})
    assert login.status == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_token_from_auth_works_in_experiment_with_project_roles(daemons):
    owner = await sign_up(daemons["auth"])
    stranger = await sign_up(daemons["auth"])
    project = await daemons["auth"].post("/api/v1/projects", json={"name": "E2E"}, headers=owner)
    assert project.status == 201, project.text
    project_id = project.json()["id"]

    created = await daemons["experiment"].post(
        "/api/v1/experiments", json={"project_id": project_id, "name": "Tunnel"}, headers=owner
    )
    assert created.status == 201, created.text
    experiment_url = f"/api/v1/experiments/{created.json()['id']}"

    assert (await daemons["experiment"].get(experiment_url, headers=owner)).status == 200
    hidden = await daemons["experiment"].get(experiment_url, headers=stranger)
    assert hidden.status == 404
    assert hidden.json()["code"] == "experiment_not_found"


async def test_forged_token_is_refused_by_experiment(daemons):
    headers = {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}

    response = await daemons["experiment"].get(
        "/api/v1/experiments", params={"project_id": str(uuid.uuid4())}, headers=headers
    )

    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_api_key_works_through_the_gateway_until_revoked(daemons):
    """A script's key: made at auth, used through the gateway on experiment and auth routes."""
    owner = await sign_up(daemons["auth"])
    project = await daemons["auth"].post("/api/v1/projects", json={"name": "CI"}, headers=owner)
    project_id = project.json()["id"]
    created = await daemons["gateway"].post(
        "/api/v1/api-keys", json={"name": "ci", "project_id": project_id}, headers=owner
    )
    assert created.status == 201, created.text
    key = {"Authorization": f"Bearer {created.json()['key']}"}

    experiment = await daemons["gateway"].post(
        "/api/v1/experiments", json={"project_id": project_id, "name": "From CI"}, headers=key
    )
    projects = await daemons["gateway"].get("/api/v1/projects", headers=key)

    assert experiment.status == 201, experiment.text
    assert [p["id"] for p in projects.json()["items"]] == [project_id]
    revoked = await daemons["gateway"].delete(
        f"/api/v1/api-keys/{created.json()['id']}", headers=owner
    )
    assert revoked.status == 204
    refused = await daemons["gateway"].get("/api/v1/projects", headers=key)
    assert refused.status == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
