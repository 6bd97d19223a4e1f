"""An experiment or a run as its caller may see it: the rule every resource in them shares.

A role check may ask the auth service over HTTP, so it runs before the transaction that changes
anything takes its row locks: first `run_role` (a plain read, then the check), then, inside the
transaction, `locked_run` (the run may have gone meanwhile; its project never changes).
"""

import uuid
from typing import Literal

import asyncpg

from backend_common.db import Database
from backend_common.rbac import Caller, Role
from experiment_service.domain.errors import ExperimentNotFound, RunNotFound
from experiment_service.domain.models import Experiment, Run
from experiment_service.repositories.experiments import ExperimentRepository
from experiment_service.repositories.runs import RunRepository


async def experiment_role(
    db: Database, caller: Caller, experiment_id: uuid.UUID, minimum: Role
) -> tuple[Experiment, Role]:
    """The experiment (read, not locked) and the caller's role in its project, at least
    `minimum`; the connection is released before the role check. Outside the experiment's
    project the experiment does not exist for the caller: ExperimentNotFound."""
    async with db.connection() as conn:
        experiment = await ExperimentRepository(conn).get(experiment_id)
    if experiment is None:
        raise ExperimentNotFound()
    role = await caller.require(experiment.project_id, minimum, not_found=ExperimentNotFound)
    return experiment, role


async def run_access(
    conn: asyncpg.Connection, caller: Caller, run_id: uuid.UUID, minimum: Role
) -> tuple[Run, Role]:
    """The run and the caller's role in its project (at least `minimum`), for reading.

    Outside the run's project the run does not exist for the caller: RunNotFound.
    """
    return await _checked(await RunRepository(conn).get(run_id), caller, minimum)


async def run_role(
    db: Database, caller: Caller, run_id: uuid.UUID, minimum: Role
) -> tuple[Run, Role]:
    """Like `run_access`, on a connection of its own that is released before the role check."""
    async with db.connection() as conn:
        run = await RunRepository(conn).get(run_id)
    return await _checked(run, caller, minimum)


async def _checked(run: Run | None, caller: Caller, minimum: Role) -> tuple[Run, Role]:
    if run is None:
        raise RunNotFound()
    return run, await caller.require(run.project_id, minimum, not_found=RunNotFound)


async def locked_run(
    conn: asyncpg.Connection, run_id: uuid.UUID, lock: Literal["update", "share"]
) -> Run:
    """The run, row-locked until the transaction ends; RunNotFound if it is gone."""
    run = await RunRepository(conn).get(
        run_id, for_update=lock == "update", for_share=lock == "share"
    )
    if run is None:
        raise RunNotFound()
    return run
