import uuid
from datetime import datetime

from pydantic import BaseModel

from backend_common.rbac import Role


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
