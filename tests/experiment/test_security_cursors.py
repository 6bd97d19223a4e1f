"""Cursors are the client's to send back, so anyone can forge one: every paged list of the
experiment service answers a forged cursor (integers past the column's range, instants that
leave PostgreSQL's or Python's range once in UTC, wrong types, NUL and lone surrogates, other
shapes) with `400 invalid_cursor`, never a 500."""

import base64
import uuid

import pytest

from tests.experiment.factories import (
    create_experiment,
    create_run_in_status,
    expect,
    start_capture,
)
from tests.experiment.sensor_kit import create_sensor
from tests.experiment.webhook_kit import hook_url, subscribe
from tests.problems import assert_problem

ID = str(uuid.uuid4())
# Raw JSON, written by hand: some of it (2**63, lone surrogates) no encoder would write.
FORGED = [
    '{"id": 9223372036854775808}',
    '{"id": 100000000000000000000000000000}',
    '{"id": -9223372036854775809}',
    '{"id": -1}',
    '{"id": "1 OR 1=1"}',
    '{"id": 1.5}',
    '{"id": [1]}',
    '{"id": null}',
    '{"ordinal": 2147483648}',
    '{"ordinal": 9223372036854775808}',
    '{"ordinal": -1}',
    '{"sensor_id": "not-a-uuid"}',
    '{"sensor_id": 5}',
    f'{{"created_at": "0001-01-01T00:00:00+14:00", "id": "{ID}"}}',
    f'{{"created_at": "9999-12-31T23:59:59-14:00", "id": "{ID}"}}',
    f'{{"created_at": "2026-01-01T00:00:00", "id": "{ID}"}}',
    f'{{"created_at": 1e300, "id": "{ID}"}}',
    '{"created_at": "2026-01-01T00:00:00Z", "id": 7}',
    f'{{"sort": "created_at", "value": "0001-01-01T00:00:00+14:00", "id": "{ID}"}}',
    f'{{"sort": "-created_at", "value": "9999-12-31T23:59:59-14:00", "id": "{ID}"}}',
    f'{{"sort": "created_at", "value": "99999-01-01T00:00:00Z", "id": "{ID}"}}',
    f'{{"sort": "name", "value": "a\\u0000b", "id": "{ID}"}}',
    f'{{"sort": "name", "value": "\\ud800", "id": "{ID}"}}',
    f'{{"sort": "name", "value": 5, "id": "{ID}"}}',
    f'{{"sort": "bogus", "value": "x", "id": "{ID}"}}',
    f'{{"sort": "name", "value": "x", "id": "{ID}", "extra": 1}}',
    '{"id": "\\u0000"}',
    "[]",
    "1",
    '"cursor"',
    "{}",
]
CURSORS = [base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode() for text in FORGED] + [
    "%%%",
    "AAAA",
    base64.urlsafe_b64encode(b"\xff\xfe{").decode(),
]

ROUTES = [
    "list_experiments",
    "list_runs",
    "list_run_events",
    "list_capture_sessions",
    "list_capture_session_events",
    "list_sensors",
    "list_sensor_ingest_errors",
    "list_conversion_profiles",
    "list_run_sensors",
    "list_audit_entries",
    "list_webhooks",
    "list_webhook_deliveries",
]


@pytest.mark.parametrize("route", ROUTES)
async def test_forged_cursor_is_400_invalid_cursor(hooks, owner, project_id, receiver, route):
    experiment = await create_experiment(hooks, owner, project_id)
    run = await create_run_in_status(hooks, owner, experiment["id"], "running")
    session = await start_capture(hooks, owner, run["id"])
    sensor = await create_sensor(hooks, owner, project_id, name="probe")
    webhook = await subscribe(hooks, owner, project_id, receiver().url, ["sensor.created"])
    in_project = {"project_id": str(project_id)}
    path, params = {
        "list_experiments": ("/api/v1/experiments", in_project),
        "list_runs": ("/api/v1/runs", in_project),
        "list_run_events": (f"/api/v1/runs/{run['id']}/events", {}),
        "list_capture_sessions": (f"/api/v1/runs/{run['id']}/capture-sessions", {}),
        "list_capture_session_events": (
            f"/api/v1/runs/{run['id']}/capture-sessions/{session['id']}/events",
            {},
        ),
        "list_sensors": ("/api/v1/sensors", in_project),
        "list_sensor_ingest_errors": (f"/api/v1/sensors/{sensor['id']}/ingest-errors", {}),
        "list_conversion_profiles": (f"/api/v1/sensors/{sensor['id']}/conversion-profiles", {}),
        "list_run_sensors": (f"/api/v1/runs/{run['id']}/sensors", {}),
        "list_audit_entries": ("/api/v1/audit", in_project),
        "list_webhooks": ("/api/v1/webhooks", in_project),
        "list_webhook_deliveries": (f"{hook_url(webhook['id'])}/deliveries", {}),
    }[route]
    await expect(await hooks.get(path, params=params, headers=owner.headers), 200)

    wrong = []
    for text, cursor in zip([*FORGED, "%%%", "AAAA", "bad utf-8"], CURSORS, strict=True):
        response = await hooks.get(path, params={**params, "cursor": cursor}, headers=owner.headers)
        if response.status != 400:
            wrong.append((text, response.status, await response.text()))
            continue
        await assert_problem(response, 400, "invalid_cursor")
    assert wrong == []
