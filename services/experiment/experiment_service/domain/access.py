"""A run as its caller may see it: the rule every run-scoped resource shares."""

import uuid
from typing import Literal

import asyncpg

from backend_common.rbac import Caller, Role
from experiment_service.domain.errors import RunNotFound
from experiment_service.domain.models import Run
from experiment_service.repositories.runs import RunRepository


async def run_access(
    conn: asyncpg.Connection,
    caller: Caller,
    run_id: uuid.UUID,
    minimum: Role,
    *,
    lock: Literal["update", "share"] | None = None,
) -> tuple[Run, Role]:
    """The run, row-locked if asked, and the caller's role in its project (at least `minimum`).

    Outside the run's project the run does not exist for the caller: RunNotFound.
    """
    run = await RunRepository(conn).get(
        run_id, for_update=lock == "update", for_share=lock == "share"
    )
    if run is None:
        raise RunNotFound()
    return run, await caller.require(run.project_id, minimum, not_found=RunNotFound)
