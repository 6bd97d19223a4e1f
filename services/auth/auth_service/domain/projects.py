"""Projects and membership: who may see and change what."""

import uuid
from collections.abc import Callable

import asyncpg

from auth_service.domain.errors import (
    ApiKeyNotAllowed,
    Forbidden,
    LastOwner,
    MemberNotFound,
    ProjectLimit,
    ProjectNotFound,
    UserNotFound,
)
from auth_service.domain.models import Member, Principal, ProjectWithRole, UserSummary
from auth_service.models import MemberAdd, ProjectCreate, ProjectUpdate
from auth_service.repositories.deletion_outbox import DeletionOutboxRepository
from auth_service.repositories.projects import MemberRepository, ProjectRepository
from auth_service.repositories.users import UserRepository
from backend_common.clock import Clock, utc_now
from backend_common.db import Database
from backend_common.pagination import Page, PageRequest
from backend_common.rbac import Membership, Role


async def _require_role(
    conn: asyncpg.Connection, project_id: uuid.UUID, caller: Principal, minimum: Role
) -> Role:
    """The caller's role (through an API key, as far as the key reaches); a project they are
    not in does not exist for them."""
    role = caller.role_in(project_id, await MemberRepository(conn).role(project_id, caller.user_id))
    if role is None:
        raise ProjectNotFound()
    if not role.at_least(minimum):
        raise Forbidden(f"This needs the {minimum} role; you are {role}.")
    return role


class Projects:
    def __init__(
        self,
        db: Database,
        *,
        max_owned: int = 100,
        clock: Clock = utc_now,
        announce: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._max_owned = max_owned
        self._clock = clock
        self._announce = announce

    async def create(self, *, caller: Principal, data: ProjectCreate) -> ProjectWithRole:
        """A key bound to a project or capped to a role creates none (its user would own it)."""
        if caller.key is not None and caller.key.restricted:
            raise ApiKeyNotAllowed(
                "An API key bound to a project or capped to a role cannot create projects."
            )
        caller_id = caller.user_id
        async with self._db.transaction() as conn:
            projects = ProjectRepository(conn)
            # The quota bounds what one account creates; an owner added by another is not refused.
            if await projects.count_owned_locked(caller_id) >= self._max_owned:
                raise ProjectLimit(f"A user owns at most {self._max_owned} projects.")
            project = await projects.insert(data, created_by=caller_id)
            await MemberRepository(conn).insert(project.id, caller_id, Role.OWNER)
        return ProjectWithRole(**project.model_dump(), role=Role.OWNER)

    async def list_mine(
        self, *, caller: Principal, q: str | None, page: PageRequest
    ) -> Page[ProjectWithRole]:
        """The caller's projects; through a key bound to one, that one, each with the role the
        caller acts with."""
        key = caller.key
        async with self._db.connection() as conn:
            projects = await ProjectRepository(conn).list_for_user(
                caller.user_id, q=q, only=key.project_id if key else None, page=page
            )
        if key is None:
            return projects
        return projects.map(lambda p: p.model_copy(update={"role": key.cap(p.role)}))

    async def get(self, *, caller: Principal, project_id: uuid.UUID) -> ProjectWithRole:
        async with self._db.connection() as conn:
            role = await _require_role(conn, project_id, caller, Role.VIEWER)
            project = await ProjectRepository(conn).get(project_id)
        if project is None:
            raise ProjectNotFound()
        return ProjectWithRole(**project.model_dump(), role=role)

    async def update(
        self, *, caller: Principal, project_id: uuid.UUID, changes: ProjectUpdate
    ) -> ProjectWithRole:
        """Editors change the name and description; only owners the raw-value policy."""
        async with self._db.transaction() as conn:
            minimum = Role.EDITOR if changes.physical_only is None else Role.OWNER
            role = await _require_role(conn, project_id, caller, minimum)
            project = await ProjectRepository(conn).update(project_id, changes)
        if project is None:
            # Deleted by an owner since the role check.
            raise ProjectNotFound()
        return ProjectWithRole(**project.model_dump(), role=role)

    async def delete(self, *, caller: Principal, project_id: uuid.UUID) -> None:
        """The deletion is announced to the experiment service through the outbox, written in
        the same transaction (docs/operations.md, "Deleting a project")."""
        async with self._db.transaction() as conn:
            await _require_role(conn, project_id, caller, Role.OWNER)
            if await ProjectRepository(conn).delete(project_id):
                await DeletionOutboxRepository(conn).insert(
                    project_id, deleted_by=caller.user_id, deleted_at=self._clock()
                )
        self._announce()

    async def membership(self, *, caller: Principal, project_id: uuid.UUID) -> Membership:
        """The caller's role (through an API key, as far as the key reaches) and the project's
        raw-value policy."""
        async with self._db.connection() as conn:
            membership = await MemberRepository(conn).membership(project_id, caller.user_id)
        if caller.key is not None:
            membership = caller.key.limit(project_id, membership)
        if membership is None:
            raise ProjectNotFound()
        return membership

    async def list_members(
        self, *, caller: Principal, project_id: uuid.UUID, page: PageRequest
    ) -> Page[Member]:
        async with self._db.connection() as conn:
            await _require_role(conn, project_id, caller, Role.VIEWER)
            return await MemberRepository(conn).list(project_id, page=page)

    async def add_member(
        self, *, caller: Principal, project_id: uuid.UUID, data: MemberAdd
    ) -> Member:
        """Adds the user `data` names by id or by username."""
        async with self._db.transaction() as conn:
            members = await self._lock_for_membership_change(conn, project_id, caller)
            users = UserRepository(conn)
            user = await (
                users.get(data.user_id)
                if data.user_id
                else users.get_by_username(data.username or "")
            )
            if user is None:
                raise UserNotFound()
            await members.insert(project_id, user.id, data.role)
            member = await members.get(project_id, user.id)
        assert member is not None
        return member

    async def change_role(
        self, *, caller: Principal, project_id: uuid.UUID, user_id: uuid.UUID, role: Role
    ) -> Member:
        async with self._db.transaction() as conn:
            members = await self._lock_for_membership_change(conn, project_id, caller)
            member = await members.get(project_id, user_id)
            if member is None:
                raise MemberNotFound()
            if member.role == Role.OWNER and role != Role.OWNER:
                await self._keep_an_owner(members, project_id)
            await members.set_role(project_id, user_id, role)
        return member.model_copy(update={"role": role})

    async def remove_member(
        self, *, caller: Principal, project_id: uuid.UUID, user_id: uuid.UUID
    ) -> None:
        """Owners remove anyone; any member may remove themselves (leave)."""
        async with self._db.transaction() as conn:
            leaving = user_id == caller.user_id
            members = await self._lock_for_membership_change(
                conn, project_id, caller, minimum=Role.VIEWER if leaving else Role.OWNER
            )
            member = await members.get(project_id, user_id)
            if member is None:
                raise MemberNotFound()
            if member.role == Role.OWNER:
                await self._keep_an_owner(members, project_id)
            await members.delete(project_id, user_id)

    async def search_users(
        self, *, caller: Principal, q: str, page: PageRequest
    ) -> Page[UserSummary]:
        """Prefix search among the users the caller shares a project with (through a key bound
        to a project: that project); anyone else is found only by their exact username (which
        registration reveals anyway), so the list of all users cannot be walked."""
        async with self._db.connection() as conn:
            return await UserRepository(conn).search(
                prefix=q,
                visible_to=caller.user_id,
                within=caller.key.project_id if caller.key else None,
                page=page,
            )

    @staticmethod
    async def _lock_for_membership_change(
        conn: asyncpg.Connection,
        project_id: uuid.UUID,
        caller: Principal,
        *,
        minimum: Role = Role.OWNER,
    ) -> MemberRepository:
        # The project row lock serialises membership changes, so two owners demoting each other
        # at once cannot leave the project without an owner.
        if not await ProjectRepository(conn).lock(project_id):
            raise ProjectNotFound()
        await _require_role(conn, project_id, caller, minimum)
        return MemberRepository(conn)

    @staticmethod
    async def _keep_an_owner(members: MemberRepository, project_id: uuid.UUID) -> None:
        if await members.count_owners(project_id) <= 1:
            raise LastOwner()
