import uuid

import asyncpg
from pydantic import Field

from auth_service.domain.errors import AlreadyMember
from auth_service.domain.models import Member, Project, ProjectWithRole
from auth_service.models import ProjectCreate, ProjectUpdate
from backend_common.instants import Instant
from backend_common.pagination import CursorKey, Page, PageRequest
from backend_common.rbac import Membership, Role

# PostgreSQL text cannot hold NUL: a forged cursor carrying one is invalid, not a driver error.
_TEXT = r"^[^\x00]*$"


class ProjectKey(CursorKey):
    """Where a page of the caller's projects ends: they are listed by (name, id)."""

    name: str = Field(pattern=_TEXT)
    id: uuid.UUID


class MemberKey(CursorKey):
    """Where a page of a project's members ends: they are listed by (added_at, user_id)."""

    at: Instant  # with an offset, and in range once in UTC (a forged one is invalid, not a 500)
    id: uuid.UUID


# Serialises the project creates of one user until the transaction ends, so the count after it
# sees every project committed before (a statement's snapshot is taken when it starts: the count
# must be a statement of its own after the lock).
_LOCK_OWNER = "SELECT pg_advisory_xact_lock(hashtextextended('owned_projects:' || $1, 0))"
_COUNT_OWNED = "SELECT count(*) FROM project_members WHERE user_id = $1 AND role = 'owner'"

_PROJECT_COLUMNS = (
    "p.id, p.name, p.description, p.physical_only, p.created_by, p.created_at, p.updated_at"
)

_INSERT_PROJECT = """
    INSERT INTO projects (name, description, physical_only, created_by) VALUES ($1, $2, $3, $4)
    RETURNING id, name, description, physical_only, created_by, created_at, updated_at
"""
_GET_PROJECT = f"SELECT {_PROJECT_COLUMNS} FROM projects p WHERE p.id = $1"
_LOCK_PROJECT = "SELECT id FROM projects WHERE id = $1 FOR UPDATE"
_UPDATE_PROJECT = """
    UPDATE projects SET name = coalesce($2, name), description = coalesce($3, description),
                        physical_only = coalesce($4, physical_only)
    WHERE id = $1
    RETURNING id, name, description, physical_only, created_by, created_at, updated_at
"""
_DELETE_PROJECT = "DELETE FROM projects WHERE id = $1"
# Keyset over (name, id); q is a case-insensitive substring of the name; $6: that project only.
_LIST_FOR_USER = f"""
    SELECT {_PROJECT_COLUMNS}, m.role
    FROM project_members m JOIN projects p ON p.id = m.project_id
    WHERE m.user_id = $1
      AND ($2::text IS NULL OR strpos(lower(p.name), lower($2)) > 0)
      AND ($3::text IS NULL OR (p.name, p.id) > ($3, $4::uuid))
      AND ($6::uuid IS NULL OR p.id = $6)
    ORDER BY p.name, p.id
    LIMIT $5
"""

_MEMBER_COLUMNS = "m.project_id, m.user_id, u.username, m.role, m.added_at"
_GET_ROLE = "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2"
_GET_MEMBERSHIP = """
    SELECT m.role, p.physical_only
    FROM project_members m JOIN projects p ON p.id = m.project_id
    WHERE m.project_id = $1 AND m.user_id = $2
"""
_INSERT_MEMBER = """
    INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3)
"""
_GET_MEMBER = f"""
    SELECT {_MEMBER_COLUMNS}
    FROM project_members m JOIN users u ON u.id = m.user_id
    WHERE m.project_id = $1 AND m.user_id = $2
"""
_LIST_MEMBERS = f"""
    SELECT {_MEMBER_COLUMNS}
    FROM project_members m JOIN users u ON u.id = m.user_id
    WHERE m.project_id = $1
      AND ($2::timestamptz IS NULL OR (m.added_at, m.user_id) > ($2, $3::uuid))
    ORDER BY m.added_at, m.user_id
    LIMIT $4
"""
_SET_ROLE = "UPDATE project_members SET role = $3 WHERE project_id = $1 AND user_id = $2"
_DELETE_MEMBER = "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2"
_COUNT_OWNERS = "SELECT count(*) FROM project_members WHERE project_id = $1 AND role = 'owner'"


class ProjectRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def insert(self, data: ProjectCreate, *, created_by: uuid.UUID) -> Project:
        row = await self._conn.fetchrow(
            _INSERT_PROJECT, data.name, data.description, data.physical_only, created_by
        )
        return Project.model_validate(dict(row))

    async def get(self, project_id: uuid.UUID) -> Project | None:
        row = await self._conn.fetchrow(_GET_PROJECT, project_id)
        return Project.model_validate(dict(row)) if row else None

    async def count_owned_locked(self, user_id: uuid.UUID) -> int:
        """The projects the user owns, after locking their project creates until the
        transaction ends (needs a transaction)."""
        await self._conn.execute(_LOCK_OWNER, str(user_id))
        owned: int = await self._conn.fetchval(_COUNT_OWNED, user_id)
        return owned

    async def lock(self, project_id: uuid.UUID) -> bool:
        """Serialises membership changes of one project (the last-owner rule needs it)."""
        return await self._conn.fetchval(_LOCK_PROJECT, project_id) is not None

    async def update(self, project_id: uuid.UUID, changes: ProjectUpdate) -> Project | None:
        """Sets the fields `changes` gives (None leaves one as it is)."""
        row = await self._conn.fetchrow(
            _UPDATE_PROJECT, project_id, changes.name, changes.description, changes.physical_only
        )
        return Project.model_validate(dict(row)) if row else None

    async def delete(self, project_id: uuid.UUID) -> bool:
        """False if it was gone already."""
        return bool(await self._conn.execute(_DELETE_PROJECT, project_id) == "DELETE 1")

    async def list_for_user(
        self,
        user_id: uuid.UUID,
        *,
        q: str | None,
        only: uuid.UUID | None = None,
        page: PageRequest,
    ) -> Page[ProjectWithRole]:
        """The user's projects (only project `only`, when given)."""
        after = page.after(ProjectKey)
        rows = await self._conn.fetch(
            _LIST_FOR_USER,
            user_id,
            q,
            after.name if after else None,
            after.id if after else None,
            page.fetch,
            only,
        )
        return page.page(
            [ProjectWithRole.model_validate(dict(row)) for row in rows],
            key=lambda project: ProjectKey(name=project.name, id=project.id),
        )


class MemberRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def role(self, project_id: uuid.UUID, user_id: uuid.UUID) -> Role | None:
        role = await self._conn.fetchval(_GET_ROLE, project_id, user_id)
        return Role(role) if role else None

    async def membership(self, project_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
        row = await self._conn.fetchrow(_GET_MEMBERSHIP, project_id, user_id)
        return (
            Membership(role=Role(row["role"]), physical_only=row["physical_only"]) if row else None
        )

    async def insert(self, project_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> None:
        try:
            await self._conn.execute(_INSERT_MEMBER, project_id, user_id, role)
        except asyncpg.UniqueViolationError:
            raise AlreadyMember() from None

    async def get(self, project_id: uuid.UUID, user_id: uuid.UUID) -> Member | None:
        row = await self._conn.fetchrow(_GET_MEMBER, project_id, user_id)
        return Member.model_validate(dict(row)) if row else None

    async def list(self, project_id: uuid.UUID, *, page: PageRequest) -> Page[Member]:
        after = page.after(MemberKey)
        rows = await self._conn.fetch(
            _LIST_MEMBERS,
            project_id,
            after.at if after else None,
            after.id if after else None,
            page.fetch,
        )
        return page.page(
            [Member.model_validate(dict(row)) for row in rows],
            key=lambda member: MemberKey(at=member.added_at, id=member.user_id),
        )

    async def set_role(self, project_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> None:
        await self._conn.execute(_SET_ROLE, project_id, user_id, role)

    async def delete(self, project_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await self._conn.execute(_DELETE_MEMBER, project_id, user_id)

    async def count_owners(self, project_id: uuid.UUID) -> int:
        owners: int = await self._conn.fetchval(_COUNT_OWNERS, project_id)
        return owners
