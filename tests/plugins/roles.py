"""One runner for role matrices: a test parametrized over routes by the four kinds of caller.

    MATRIX = {"delete_run": {"owner": 204, "editor": 403, "viewer": 403, "stranger": 404}}

    @role_matrix(MATRIX)
    async def test_route_by_role(route, role, expected, caller_as): ...

`caller_as(role, project_id)` gives a member of the project in that role, or, for "stranger", a
signed-in user of no project.
"""

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pytest

ROLES = ("owner", "editor", "viewer", "stranger")
STRANGER = "stranger"


def role_matrix(matrix: Mapping[str, Mapping[str, Any]]) -> pytest.MarkDecorator:
    """Parametrizes `route, role, expected` over every cell of `{route: {role: expected}}`;
    every row must name the four roles, so none is forgotten."""
    cases = []
    for route, row in matrix.items():
        assert set(row) == set(ROLES), f"{route} names {sorted(row)}, not {sorted(ROLES)}"
        cases.extend(pytest.param(route, role, row[role], id=f"{route}-{role}") for role in ROLES)
    return pytest.mark.parametrize(("route", "role", "expected"), cases)


@pytest.fixture
def caller_as(auth_stub) -> Callable[[str, uuid.UUID], Any]:
    def make(role: str, project_id: uuid.UUID) -> Any:
        return auth_stub.user() if role == STRANGER else auth_stub.member(project_id, role)

    return make
