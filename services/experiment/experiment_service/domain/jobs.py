"""The background jobs as operators see them (GET /api/v1/jobs): the jobs of every service on
this database, with their schedule and last run, and each one's history.

Jobs are global, not a project's, so no project role reaches them: only the users named in
EXPERIMENT_OPERATORS do, with their own token or an API key without a project or role limit.
"""

import uuid
from collections.abc import Iterable

from backend_common.db import Database
from backend_common.pagination import Page, PageRequest
from backend_common.rbac import Caller
from backend_common.repositories.jobs import JobRepository, JobRun, JobState
from experiment_service.domain.errors import JobNotFound, NotAnOperator

MAX_NAME = 100


class Jobs:
    def __init__(self, db: Database, operators: Iterable[uuid.UUID]) -> None:
        self._db = db
        self._operators = frozenset(operators)

    def _require_operator(self, caller: Caller) -> None:
        scope = caller.claims.api_key
        if caller.user_id not in self._operators or (scope is not None and scope.restricted):
            raise NotAnOperator()

    async def list_page(self, caller: Caller, page: PageRequest) -> Page[JobState]:
        self._require_operator(caller)
        async with self._db.connection() as conn:
            return await JobRepository(conn).find(page)

    async def runs(self, caller: Caller, name: str, page: PageRequest) -> Page[JobRun]:
        """The job's runs, newest first."""
        self._require_operator(caller)
        async with self._db.connection() as conn:
            jobs = JobRepository(conn)
            if len(name) > MAX_NAME or not await jobs.exists(name):
                raise JobNotFound()
            return await jobs.runs(name, page)
