"""Projects and experiments named by id or by name, as people and scripts name them."""

import uuid
from typing import Any

from etp.client import Client
from etp.errors import EtpError, ExitCode, UsageError


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _by_name(items: list[dict[str, Any]], name: str, what: str) -> dict[str, Any] | None:
    exact = [item for item in items if item.get("name") == name]
    if len(exact) > 1:
        ids = ", ".join(str(item["id"]) for item in exact)
        raise EtpError(
            f"several {what}s are named {name!r}: {ids}; give the id",
            code=f"ambiguous_{what}",
            exit_code=ExitCode.CONFLICT,
        )
    return exact[0] if exact else None


def find_project(client: Client, ref: str) -> dict[str, Any]:
    """The project with this id, or the caller's one project with exactly this name."""
    if is_uuid(ref):
        project: dict[str, Any] = client.get(f"/api/v1/projects/{ref}")
        return project
    found = _by_name(list(client.paginate("/api/v1/projects", {"q": ref})), ref, "project")
    if found is None:
        raise EtpError(
            f"no project named {ref!r} among yours",
            code="project_not_found",
            exit_code=ExitCode.NOT_FOUND,
        )
    return found


def find_experiment(
    client: Client, ref: str, *, project: str | None = None, create: bool = False
) -> dict[str, Any]:
    """The experiment with this id, or the one with exactly this name in `project` (an id or a
    name); with `create`, a missing one is created there."""
    if is_uuid(ref):
        experiment: dict[str, Any] = client.get(f"/api/v1/experiments/{ref}")
        return experiment
    if project is None:
        raise UsageError("an experiment given by name needs its project (--project)")
    project_id = project if is_uuid(project) else find_project(client, project)["id"]
    listed = client.paginate("/api/v1/experiments", {"project_id": project_id, "q": ref})
    found = _by_name(list(listed), ref, "experiment")
    if found is not None:
        return found
    if not create:
        raise EtpError(
            f"no experiment named {ref!r} in the project",
            code="experiment_not_found",
            exit_code=ExitCode.NOT_FOUND,
        )
    created: dict[str, Any] = client.post(
        "/api/v1/experiments", {"project_id": project_id, "name": ref}
    )
    return created
