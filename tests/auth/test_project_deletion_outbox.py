"""A deleted project is announced to the experiment service (docs/operations.md, "Deleting a
project"): the outbox row is written in the deletion's transaction, sent with a service token,
retried with backoff while the experiment service fails, and no more once acknowledged; two
deliverers never send one announcement at once. The experiment service is the mockserver."""

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import jwt
import pytest

from auth_service.app import create_app
from auth_service.appkeys import DELETION_ANNOUNCER, SIGNING_KEYS
from tests.auth.conftest import AuthApi
from tests.plugins.waiting import eventually

PATH = "/experiment/internal/v1/project-deletions"
BASE = 5.0  # project_deletion_backoff_base


def outbox_row(pgsql: Any, project_id: str) -> dict[str, Any] | None:
    with pgsql["auth"].dict_cursor() as cursor:
        cursor.execute(
            "SELECT id::text, project_id::text, deleted_by::text, deleted_at, attempts,"
            " next_attempt_at, lease_token, last_status, last_error, acknowledged_at"
            " FROM project_deletion_outbox WHERE project_id = %s",
            (project_id,),
        )
        row = cursor.fetchone()
    return None if row is None else dict(row)


@pytest.fixture
def auth_app(pgsql, aiohttp_client, make_settings, clock):
    """An auth app on the test's clock; its deliverer runs only when the test says so (or in
    the background, with `project_deletion_delivery_enabled=True`)."""

    async def make(**overrides: Any) -> AuthApi:
        settings = make_settings("auth", project_deletion_backoff_base=BASE, **overrides)
        return AuthApi(await aiohttp_client(create_app(settings, clock=clock)))

    return make


@pytest.fixture
async def api(auth_app):
    return await auth_app()


def announce_due(api: AuthApi) -> Any:
    return api.client.app[DELETION_ANNOUNCER].announce_due()


@pytest.fixture
def experiment(mockserver):
    """The experiment service's internal route: answers `answers` in turn (then the last)."""

    class Route:
        def __init__(self) -> None:
            self.answers: list[int] = [200]
            self.calls: list[dict[str, Any]] = []

    route = Route()

    @mockserver.handler(PATH)
    def _record(request):
        route.calls.append(
            {"headers": dict(request.headers), "body": json.loads(request.get_data())}
        )
        status = route.answers[min(len(route.calls), len(route.answers)) - 1]
        if status >= 300:
            return mockserver.make_response(json={"code": "internal"}, status=status)
        body = route.calls[-1]["body"]
        return mockserver.make_response(
            json={**body, "recorded_at": body["deleted_at"], "finished_at": None}, status=status
        )

    return route


async def test_the_deletion_writes_its_announcement_in_its_transaction(
    api, user, project, clock, pgsql
):
    alice, bob = await user("alice"), await user("bob")
    created = await project(alice, editors=[bob])
    await api.problem("DELETE", f"/api/v1/projects/{created['id']}", bob, 403, "forbidden")
    assert outbox_row(pgsql, created["id"]) is None

    await api.delete(f"/api/v1/projects/{created['id']}", alice)
    row = outbox_row(pgsql, created["id"])
    assert row is not None
    assert row["deleted_by"] == alice.id
    assert row["deleted_at"] == clock.now
    assert row["next_attempt_at"] == clock.now
    assert row["attempts"] == 0
    assert row["acknowledged_at"] is None


@pytest.mark.unchecked_answers("the forced database failure answers 500, which no spec lists")
async def test_no_deletion_without_its_announcement(api, user, project, stored_project, pgsql):
    """The outbox insert failing rolls the deletion back: they are one transaction."""
    alice = await user("alice")
    created = await project(alice)
    with pgsql["auth"].cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'outbox down'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_outbox BEFORE INSERT ON project_deletion_outbox"
            " FOR EACH ROW EXECUTE FUNCTION refuse_outbox()"
        )
    try:
        response = await api.request("DELETE", f"/api/v1/projects/{created['id']}", alice)
        assert response.status == 500
        assert stored_project(created["id"]) is not None
        assert outbox_row(pgsql, created["id"]) is None
    finally:
        with pgsql["auth"].cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS refuse_outbox ON project_deletion_outbox")
            cursor.execute("DROP FUNCTION IF EXISTS refuse_outbox()")


async def test_delivery_is_retried_while_the_experiment_service_fails_and_stops_at_the_ack(
    api, user, project, clock, pgsql, experiment
):
    experiment.answers = [500, 503, 200]
    alice = await user("alice")
    created = await project(alice)
    await api.delete(f"/api/v1/projects/{created['id']}", alice)
    row = outbox_row(pgsql, created["id"])

    assert await announce_due(api) == 1
    failed = outbox_row(pgsql, created["id"])
    assert failed["attempts"] == 1
    assert failed["last_status"] == 500
    assert failed["acknowledged_at"] is None
    assert failed["lease_token"] is None
    first_wait = (failed["next_attempt_at"] - clock.now).total_seconds()
    assert 0.75 * BASE <= first_wait <= BASE
    assert await announce_due(api) == 0  # not due yet

    clock.advance(BASE)
    assert await announce_due(api) == 1
    second_wait = (outbox_row(pgsql, created["id"])["next_attempt_at"] - clock.now).total_seconds()
    assert 0.75 * 2 * BASE <= second_wait <= 2 * BASE  # doubled

    clock.advance(2 * BASE)
    assert await announce_due(api) == 1
    done = outbox_row(pgsql, created["id"])
    assert done["acknowledged_at"] == clock.now
    assert done["last_status"] == 200
    assert done["attempts"] == 3

    clock.advance(365 * 86400)
    assert await announce_due(api) == 0
    assert len(experiment.calls) == 3

    # Every try is the same announcement, with a service token for the internal audience.
    keys = api.client.app[SIGNING_KEYS]
    public = jwt.PyJWK(keys.jwks()["keys"][0])
    for call in experiment.calls:
        body = call["body"]
        assert set(body) == {"event_id", "project_id", "deleted_at"}
        assert body["event_id"] == row["id"]
        assert body["project_id"] == created["id"]
        assert datetime.fromisoformat(body["deleted_at"]) == row["deleted_at"]
        token = call["headers"]["Authorization"].removeprefix("Bearer ")
        claims = jwt.decode(
            token, key=public, algorithms=[public.algorithm_name], audience="etp-internal"
        )
        assert claims["sub"] == "auth"
        assert claims["scope"] == "project-deletions"
        assert claims["iss"] == "etp-auth"


async def test_an_unreachable_experiment_service_is_tried_again(
    auth_app, user, project, clock, pgsql, get_free_port
):
    api = await auth_app(experiment_url=f"http://127.0.0.1:{get_free_port()}")
    alice = await user("alice")
    created = await project(alice)
    await api.delete(f"/api/v1/projects/{created['id']}", alice)
    assert await announce_due(api) == 1
    row = outbox_row(pgsql, created["id"])
    assert row["last_status"] is None
    assert row["last_error"]
    assert row["acknowledged_at"] is None
    assert row["next_attempt_at"] > clock.now


async def test_two_deliverers_send_an_announcement_once(
    api, auth_app, user, project, pgsql, experiment
):
    other = await auth_app()
    alice = await user("alice")
    created = await project(alice)
    await api.delete(f"/api/v1/projects/{created['id']}", alice)
    claimed = await asyncio.gather(announce_due(api), announce_due(other))
    assert sorted(claimed) == [0, 1]
    assert len(experiment.calls) == 1
    assert outbox_row(pgsql, created["id"])["acknowledged_at"] is not None


async def test_a_dead_deliverers_claim_comes_back_after_its_lease(
    api, user, project, clock, pgsql, experiment
):
    alice = await user("alice")
    created = await project(alice)
    await api.delete(f"/api/v1/projects/{created['id']}", alice)
    with pgsql["auth"].cursor() as cursor:
        # What a deliverer that claimed the row and died leaves behind.
        cursor.execute(
            "UPDATE project_deletion_outbox SET lease_token = gen_random_uuid(),"
            " lease_until = %s, attempts = 1 WHERE project_id = %s",
            (clock.now + timedelta(seconds=60), created["id"]),
        )
    assert await announce_due(api) == 0
    clock.advance(61)
    assert await announce_due(api) == 1
    assert len(experiment.calls) == 1
    assert outbox_row(pgsql, created["id"])["attempts"] == 2


async def test_the_background_deliverer_announces_a_deletion_at_once(
    auth_app, user, project, pgsql, experiment
):
    api = await auth_app(project_deletion_delivery_enabled=True, project_deletion_poll_interval=60)
    alice = await user("alice")
    created = await project(alice)
    await api.delete(f"/api/v1/projects/{created['id']}", alice)
    await eventually(
        lambda: (outbox_row(pgsql, created["id"]) or {}).get("acknowledged_at") is not None,
        what="the deletion to be acknowledged",
    )
    assert len(experiment.calls) == 1
