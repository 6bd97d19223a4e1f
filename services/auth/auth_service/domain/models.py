import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel

from backend_common.api_keys import KeyScope
from backend_common.rbac import Role


@dataclass(frozen=True)
class Principal:
    """Who calls: a user, signed in (an access token) or through an API key (`key`: what the
    key may reach)."""

    user_id: uuid.UUID
    key: KeyScope | None = None

    def role_in(self, project_id: uuid.UUID, role: Role | None) -> Role | None:
        """The user's `role` in the project as this caller may use it (None: not at all)."""
        if role is None or self.key is None:
            return role
        return self.key.cap(role) if self.key.reaches(project_id) else None


class User(BaseModel):
    id: uuid.UUID
    username: str
    email: str
    created_at: datetime


class UserSummary(BaseModel):
    """What anyone signed in may learn about another user (to add them to a project)."""

    id: uuid.UUID
    username: str


class UserCredentials(User):
    password_hash: str


class Project(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    physical_only: bool
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class ProjectWithRole(Project):
    role: Role


class Member(BaseModel):
    project_id: uuid.UUID
    user_id: uuid.UUID
    username: str
    role: Role
    added_at: datetime


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    expires_in: int


class StoredRefreshToken(BaseModel):
    id: uuid.UUID
    family_id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime
    spent_at: datetime | None
    revoked_at: datetime | None


class ApiKey(BaseModel):
    """An API key as its owner sees it (never the secret)."""

    id: uuid.UUID
    name: str
    preview: str
    project_id: uuid.UUID | None
    role: Role | None
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None


class NewApiKey(ApiKey):
    """A key just created: the one time its secret exists outside its holder."""

    key: str


class StoredApiKey(BaseModel):
    """What checking a presented key needs."""

    id: uuid.UUID
    user_id: uuid.UUID
    key_hash: bytes
    project_id: uuid.UUID | None
    role: Role | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def scope(self) -> KeyScope:
        return KeyScope(
            key_id=self.id, project_id=self.project_id, role=self.role, expires_at=self.expires_at
        )
