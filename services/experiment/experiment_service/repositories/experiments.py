import uuid
from collections.abc import AsyncGenerator
from typing import Literal

import asyncpg

from backend_common.pagination import Page, PageRequest
from backend_common.sql import Query
from experiment_service.domain.listing import ListFilter, SortOrder
from experiment_service.domain.models import Experiment
from experiment_service.models import ExperimentCreate, ExperimentUpdate
from experiment_service.repositories.listing import all_sql, more_than_sql, page_in, page_sql

COLUMNS = (
    "id, project_id, name, description, tags, owner_id, status, experiment_type, metadata,"
    " created_at, updated_at"
)
_SELECT = f"SELECT {COLUMNS} FROM experiments"
TEXT_EXPR = "name || ' ' || description"
# Fields a PATCH may set; the keys are also the column names.
PATCHABLE = ("name", "description", "tags", "experiment_type", "metadata", "status")

_INSERT = f"""
    INSERT INTO experiments (project_id, name, description, tags, owner_id, experiment_type,
                             metadata)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    RETURNING {COLUMNS}
"""
_GET = f"SELECT {COLUMNS} FROM experiments WHERE id = $1"
_LOCKS = {None: "", "update": " FOR UPDATE", "share": " FOR SHARE"}
_GET_MANY = f"SELECT {COLUMNS} FROM experiments WHERE id = ANY($1)"
# Ordered by id so that concurrent batches lock in the same order and cannot deadlock.
_GET_MANY_FOR_UPDATE = f"{_GET_MANY} ORDER BY id FOR UPDATE"
# Deleting an experiment deletes its runs (and their capture sessions) with it.
_DELETE = """
    WITH doomed AS (SELECT count(*) AS runs FROM runs WHERE experiment_id = $1),
         gone AS (DELETE FROM experiments WHERE id = $1)
    SELECT runs FROM doomed
"""
_HAS_RUNNING_RUNS = (
    "SELECT EXISTS (SELECT 1 FROM runs WHERE experiment_id = $1 AND status = 'running')"
)


class ExperimentRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert(
        self, *, project_id: uuid.UUID, owner_id: uuid.UUID, data: ExperimentCreate
    ) -> Experiment:
        row = await self._conn.fetchrow(
            _INSERT,
            project_id,
            data.name,
            data.description,
            data.tags,
            owner_id,
            data.experiment_type,
            data.metadata,
        )
        return Experiment.model_validate(dict(row))

    async def get(
        self, experiment_id: uuid.UUID, *, lock: Literal["update", "share"] | None = None
    ) -> Experiment | None:
        """`lock="share"` keeps the experiment's status from changing until the transaction ends."""
        row = await self._conn.fetchrow(_GET + _LOCKS[lock], experiment_id)
        return Experiment.model_validate(dict(row)) if row else None

    async def get_many(
        self, experiment_ids: list[uuid.UUID], *, for_update: bool = False
    ) -> dict[uuid.UUID, Experiment]:
        sql = _GET_MANY_FOR_UPDATE if for_update else _GET_MANY
        rows = await self._conn.fetch(sql, experiment_ids)
        return {row["id"]: Experiment.model_validate(dict(row)) for row in rows}

    async def update(self, experiment_id: uuid.UUID, patch: ExperimentUpdate) -> Experiment:
        query = Query()
        assignments = query.assignments(patch.changes(), PATCHABLE)
        row = await self._conn.fetchrow(
            f"UPDATE experiments SET {assignments} "
            f"WHERE id = {query.param(experiment_id)} RETURNING {COLUMNS}",
            *query.params,
        )
        return Experiment.model_validate(dict(row))

    async def delete(self, experiment_id: uuid.UUID) -> int:
        """Deletes the experiment; returns how many runs went with it."""
        runs: int = await self._conn.fetchval(_DELETE, experiment_id)
        return runs

    async def has_running_runs(self, experiment_id: uuid.UUID) -> bool:
        running: bool = await self._conn.fetchval(_HAS_RUNNING_RUNS, experiment_id)
        return running

    async def find(self, flt: ListFilter, sort: SortOrder, page: PageRequest) -> Page[Experiment]:
        sql, params = page_sql(_SELECT, flt, sort, page, text_expr=TEXT_EXPR)
        rows = await self._conn.fetch(sql, *params)
        return page_in([Experiment.model_validate(dict(row)) for row in rows], sort, page)

    async def stream(
        self, flt: ListFilter, sort: SortOrder, *, limit: int
    ) -> AsyncGenerator[Experiment, None]:
        """The first `limit` matching rows, read through a server-side cursor (needs a
        transaction)."""
        sql, params = all_sql(_SELECT, flt, sort, text_expr=TEXT_EXPR, limit=limit)
        async for row in self._conn.cursor(sql, *params, prefetch=500):
            yield Experiment.model_validate(dict(row))

    async def more_than(self, flt: ListFilter, count: int) -> bool:
        sql, params = more_than_sql(_SELECT, flt, count, text_expr=TEXT_EXPR)
        more: bool = await self._conn.fetchval(sql, *params)
        return more
