import uuid
from collections.abc import AsyncGenerator
from typing import Any

import asyncpg

from backend_common.pagination import Page, PageRequest
from backend_common.sql import Query
from experiment_service.domain.listing import ListFilter, SortOrder
from experiment_service.domain.models import Run, StatusChange
from experiment_service.domain.run_queries import ValueSort
from experiment_service.models import RunCreate, RunUpdate
from experiment_service.repositories.listing import (
    all_sql,
    apply_filter,
    more_than_sql,
    page_in,
    page_sql,
)
from experiment_service.repositories.run_conditions import (
    ValueSortKey,
    cursor_value,
    value_after,
    value_order,
    value_select,
)

COLUMNS = (
    "id, experiment_id, project_id, name, params, git_sha, env, tags, notes, metadata, status,"
    " started_at, finished_at, duration_seconds, failure_reason, created_by, created_at,"
    " updated_at"
)
_SELECT = f"SELECT {COLUMNS} FROM runs"
TEXT_EXPR = "name || ' ' || notes"
# Fields an update may set; the keys are also the column names.
UPDATABLE = (
    "name",
    "params",
    "git_sha",
    "env",
    "tags",
    "notes",
    "metadata",
    "status",
    "started_at",
    "finished_at",
    "duration_seconds",
    "failure_reason",
)

# Takes the project from the experiment and share-locks it, so it cannot be archived meanwhile;
# inserts nothing when the experiment is missing or archived.
_INSERT_INTO_OPEN_EXPERIMENT = f"""
    WITH experiment AS (
        SELECT id, project_id FROM experiments
        WHERE id = $1 AND status <> 'archived'
        FOR SHARE
    )
    INSERT INTO runs (experiment_id, project_id, name, params, git_sha, env, tags, notes,
                      metadata, created_by)
    SELECT id, project_id, $2, $3, $4, $5, $6, $7, $8, $9 FROM experiment
    RETURNING {COLUMNS}
"""
# Serialises the run creates of one experiment until the transaction ends, so the count after it
# sees every run committed before (a statement's snapshot is taken when it starts: the count must
# be a statement of its own after the lock).
_LOCK_EXPERIMENT_RUNS = "SELECT pg_advisory_xact_lock(hashtextextended('runs:' || $1, 0))"
_COUNT_IN_EXPERIMENT = "SELECT count(*) FROM runs WHERE experiment_id = $1"
_GET = f"SELECT {COLUMNS} FROM runs WHERE id = $1"
_GET_FOR_UPDATE = f"SELECT {COLUMNS} FROM runs WHERE id = $1 FOR UPDATE"
_GET_FOR_SHARE = f"SELECT {COLUMNS} FROM runs WHERE id = $1 FOR SHARE"
_GET_MANY = f"SELECT {COLUMNS} FROM runs WHERE id = ANY($1)"
# Ordered by id so that concurrent batches lock in the same order and cannot deadlock.
_GET_MANY_FOR_UPDATE = f"SELECT {COLUMNS} FROM runs WHERE id = ANY($1) ORDER BY id FOR UPDATE"
# Deleting a run deletes its capture sessions with it.
_DELETE = """
    WITH doomed AS (SELECT count(*) AS sessions FROM capture_sessions WHERE run_id = $1),
         gone AS (DELETE FROM runs WHERE id = $1)
    SELECT sessions FROM doomed
"""


class RunRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert_into_open_experiment(
        self, *, experiment_id: uuid.UUID, created_by: uuid.UUID, data: RunCreate
    ) -> Run | None:
        """The new run, or None when the experiment is missing or archived."""
        row = await self._conn.fetchrow(
            _INSERT_INTO_OPEN_EXPERIMENT,
            experiment_id,
            data.name,
            data.params,
            data.git_sha,
            data.env,
            data.tags,
            data.notes,
            data.metadata,
            created_by,
        )
        return Run.model_validate(dict(row)) if row else None

    async def count_in_locked_experiment(self, experiment_id: uuid.UUID) -> int:
        """The experiment's runs, after locking its run creates until the transaction ends
        (needs a transaction)."""
        await self._conn.execute(_LOCK_EXPERIMENT_RUNS, str(experiment_id))
        count: int = await self._conn.fetchval(_COUNT_IN_EXPERIMENT, experiment_id)
        return count

    async def get(
        self, run_id: uuid.UUID, *, for_update: bool = False, for_share: bool = False
    ) -> Run | None:
        sql = _GET_FOR_UPDATE if for_update else _GET_FOR_SHARE if for_share else _GET
        row = await self._conn.fetchrow(sql, run_id)
        return Run.model_validate(dict(row)) if row else None

    async def get_many(
        self, run_ids: list[uuid.UUID], *, for_update: bool = False
    ) -> dict[uuid.UUID, Run]:
        rows = await self._conn.fetch(_GET_MANY_FOR_UPDATE if for_update else _GET_MANY, run_ids)
        return {row["id"]: Run.model_validate(dict(row)) for row in rows}

    async def update(
        self,
        run_id: uuid.UUID,
        *,
        patch: RunUpdate | None = None,
        status: StatusChange | None = None,
        tags: list[str] | None = None,
    ) -> Run:
        """Sets the fields the patch names, the new status with its instants, new tags."""
        changes: dict[str, object] = {} if patch is None else patch.changes()
        if status is not None:
            changes.update(status.columns())
        if tags is not None:
            changes["tags"] = tags
        query = Query()
        assignments = query.assignments(changes, UPDATABLE)
        row = await self._conn.fetchrow(
            f"UPDATE runs SET {assignments} WHERE id = {query.param(run_id)} RETURNING {COLUMNS}",
            *query.params,
        )
        return Run.model_validate(dict(row))

    async def delete(self, run_id: uuid.UUID) -> int:
        """Deletes the run; returns how many capture sessions went with it."""
        sessions: int = await self._conn.fetchval(_DELETE, run_id)
        return sessions

    async def find(
        self, flt: ListFilter, sort: SortOrder | ValueSort, page: PageRequest
    ) -> Page[Run]:
        if isinstance(sort, ValueSort):
            return await self._find_by_value(flt, sort, page)
        sql, params = page_sql(_SELECT, flt, sort, page, text_expr=TEXT_EXPR)
        rows = await self._conn.fetch(sql, *params)
        return page_in([Run.model_validate(dict(row)) for row in rows], sort, page)

    async def _find_by_value(
        self, flt: ListFilter, sort: ValueSort, page: PageRequest
    ) -> Page[Run]:
        sql, params = _by_value_sql(flt, sort, limit=page.fetch, page=page)
        rows = await self._conn.fetch(sql, *params)
        cut = page.page(
            rows,
            key=lambda row: ValueSortKey(
                sort=sort.text, value=cursor_value(sort, row["sort_value"]), id=row["id"]
            ),
        )
        return cut.map(lambda row: Run.model_validate(dict(row)))

    async def stream(
        self, flt: ListFilter, sort: SortOrder | ValueSort, *, limit: int
    ) -> AsyncGenerator[Run, None]:
        """The first `limit` matching rows, read through a server-side cursor (needs a
        transaction)."""
        if isinstance(sort, ValueSort):
            sql, params = _by_value_sql(flt, sort, limit=limit)
        else:
            sql, params = all_sql(_SELECT, flt, sort, text_expr=TEXT_EXPR, limit=limit)
        async for row in self._conn.cursor(sql, *params, prefetch=500):
            yield Run.model_validate(dict(row))

    async def more_than(self, flt: ListFilter, count: int) -> bool:
        sql, params = more_than_sql(_SELECT, flt, count, text_expr=TEXT_EXPR)
        more: bool = await self._conn.fetchval(sql, *params)
        return more


def _by_value_sql(
    flt: ListFilter, sort: ValueSort, *, limit: int, page: PageRequest | None = None
) -> tuple[str, list[Any]]:
    """The matching runs in a value sort, after the page's cursor, at most `limit`."""
    query = Query()
    select = value_select(COLUMNS, sort, query)
    apply_filter(query, flt, text_expr=TEXT_EXPR)
    after = None if page is None else value_after(query, sort, page)
    if after is not None:
        query.where(after)
    sql = (
        f"{select} WHERE {query.where_sql} ORDER BY {value_order(sort)} LIMIT {query.param(limit)}"
    )
    return sql, query.params
