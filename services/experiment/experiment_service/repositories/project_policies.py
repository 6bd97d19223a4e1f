"""Projects' raw-value policies as the service last learned them from members' answers."""

import uuid

import asyncpg

_LEARN = """
    INSERT INTO project_raw_policies (project_id, physical_only) VALUES ($1, $2)
    ON CONFLICT (project_id)
    DO UPDATE SET physical_only = excluded.physical_only, learned_at = now()
"""


class ProjectPolicyRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def learn(self, project_id: uuid.UUID, *, physical_only: bool) -> None:
        await self._conn.execute(_LEARN, project_id, physical_only)
