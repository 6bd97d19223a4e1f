"""Cursors are the client's to send back, so anyone can forge one: every paged list of the auth
service (projects, members, user search) answers a forged cursor (instants that leave
PostgreSQL's or Python's range once in UTC, naive instants, integers past any column, wrong
types, NUL and lone surrogates, extra fields, other shapes) with `400 invalid_cursor`, never a
500."""

import base64
import uuid

import pytest

from tests.problems import assert_problem

ID = str(uuid.uuid4())
# Raw JSON, written by hand: some of it (2**63, lone surrogates) no encoder would write.
FORGED = [
    # members: {"at": instant, "id": user id}
    f'{{"at": "0001-01-01T00:00:00+14:00", "id": "{ID}"}}',
    f'{{"at": "9999-12-31T23:59:59-14:00", "id": "{ID}"}}',
    f'{{"at": "9999-12-31T23:59:59.999999Z", "id": "{ID}"}}',
    f'{{"at": "99999-01-01T00:00:00Z", "id": "{ID}"}}',
    f'{{"at": "2026-01-01T00:00:00", "id": "{ID}"}}',
    f'{{"at": 1e300, "id": "{ID}"}}',
    f'{{"at": 9223372036854775808, "id": "{ID}"}}',
    f'{{"at": 0, "id": "{ID}"}}',
    f'{{"at": true, "id": "{ID}"}}',
    f'{{"at": "2026-01-01T00:00:00\\u0000Z", "id": "{ID}"}}',
    '{"at": "2026-01-01T00:00:00Z", "id": 7}',
    '{"at": "2026-01-01T00:00:00Z", "id": "not-a-uuid"}',
    f'{{"at": "2026-01-01T00:00:00Z", "id": "{ID}", "extra": 1}}',
    # projects: {"name": text, "id": project id}
    f'{{"name": "a\\u0000b", "id": "{ID}"}}',
    f'{{"name": "\\ud800", "id": "{ID}"}}',
    f'{{"name": 5, "id": "{ID}"}}',
    f'{{"name": 9223372036854775808, "id": "{ID}"}}',
    f'{{"name": ["x"], "id": "{ID}"}}',
    '{"name": "x", "id": 100000000000000000000000000000}',
    f'{{"name": "x", "id": "{ID}", "extra": 1}}',
    # users: {"u": lower(username)}
    '{"u": "a\\u0000"}',
    '{"u": "\\udfff"}',
    '{"u": 9223372036854775808}',
    '{"u": null}',
    '{"u": "x", "extra": 1}',
    # no key model's shape
    '{"id": "\\u0000"}',
    "[]",
    "1",
    '"cursor"',
    "null",
    "{}",
]
CURSORS = [base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode() for text in FORGED] + [
    "%%%",
    "AAAA",
    base64.urlsafe_b64encode(b"\xff\xfe{").decode(),
]


@pytest.mark.parametrize("route", ["list_projects", "list_members", "search_users"])
async def test_forged_cursor_is_400_invalid_cursor(api, user, project, route):
    alice = await user("alice")
    created = await project(alice, viewers=[await user("alfred")])
    path, params = {
        "list_projects": ("/api/v1/projects", {}),
        "list_members": (f"/api/v1/projects/{created['id']}/members", {}),
        "search_users": ("/api/v1/users", {"q": "al"}),
    }[route]
    await api.get(path, alice, params=params)

    wrong = []
    for text, cursor in zip([*FORGED, "%%%", "AAAA", "bad utf-8"], CURSORS, strict=True):
        response = await api.request("GET", path, alice, params={**params, "cursor": cursor})
        if response.status != 400:
            wrong.append((text, response.status, await response.text()))
            continue
        await assert_problem(response, 400, "invalid_cursor")
    assert wrong == []
