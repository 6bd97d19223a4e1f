"""Wire models of the auth API: requests (extra fields refused) and responses."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator

from auth_service.domain.models import (
    ApiKey,
    Member,
    NewApiKey,
    ProjectWithRole,
    TokenPair,
    User,
    UserSummary,
)
from auth_service.domain.passwords import password_problem
from backend_common.api_keys import KeyScope
from backend_common.instants import Instant
from backend_common.pagination import PageQuery
from backend_common.rbac import Role

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{2,31}$"
# Whitespace spelled out: `\s` means other characters to pydantic's regex engine, Python's and
# the ECMA-262 one the spec's `pattern` is read with (U+0085, U+FEFF). Same text as the spec's.
_SPACE = r"\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
EMAIL_PATTERN = rf"^[^@{_SPACE}]+@[^@{_SPACE}]+\.[^@{_SPACE}]+$"
# Long enough for any password we accept; longer input is refused before bcrypt sees it.
MAX_PASSWORD_INPUT = 1024


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _settable_password(password: str) -> str:
    problem = password_problem(password)
    if problem:
        raise ValueError(f"password {problem}")
    return password


NewPassword = Annotated[
    str, Field(max_length=MAX_PASSWORD_INPUT), AfterValidator(_settable_password)
]


class RegisterIn(Input):
    username: str = Field(pattern=USERNAME_PATTERN, description="3-32 letters, digits, . _ -")
    email: str = Field(max_length=254, pattern=EMAIL_PATTERN)
    password: NewPassword


class LoginIn(Input):
    username: str = Field(min_length=1, max_length=254, description="username or email")
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_INPUT)


class RefreshIn(Input):
    refresh_token: str = Field(min_length=1, max_length=256)


class PasswordChangeIn(Input):
    old_password: str = Field(min_length=1, max_length=MAX_PASSWORD_INPUT)
    new_password: NewPassword


class PasswordResetRequestIn(Input):
    email: str = Field(max_length=254, pattern=EMAIL_PATTERN)


class PasswordResetConfirmIn(Input):
    token: str = Field(min_length=1, max_length=256)
    new_password: NewPassword


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int

    @classmethod
    def from_domain(cls, pair: TokenPair) -> "TokenOut":
        return cls(**pair.model_dump())


class UserOut(BaseModel):
    id: uuid.UUID
    username: str
    email: str
    created_at: datetime

    @classmethod
    def from_domain(cls, user: User) -> "UserOut":
        return cls(**user.model_dump())


class MeProjectOut(BaseModel):
    id: uuid.UUID
    name: str
    role: Role


class MeOut(UserOut):
    projects: list[MeProjectOut]


class ProjectCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    physical_only: StrictBool = False


class ProjectUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    physical_only: StrictBool | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if self.name is None and self.description is None and self.physical_only is None:
            raise ValueError("give name, description or physical_only")
        return self


class ProjectListQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(default=None, min_length=1, max_length=200)


class ProjectOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    physical_only: bool
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    role: Role

    @classmethod
    def from_domain(cls, project: ProjectWithRole) -> "ProjectOut":
        return cls(**project.model_dump())


class MemberAdd(Input):
    user_id: uuid.UUID | None = None
    username: str | None = Field(default=None, min_length=1, max_length=32)
    role: Role

    @model_validator(mode="after")
    def _one_user(self) -> Self:
        if (self.user_id is None) == (self.username is None):
            raise ValueError("give exactly one of user_id and username")
        return self


class MemberUpdate(Input):
    role: Role


class MemberOut(BaseModel):
    project_id: uuid.UUID
    user_id: uuid.UUID
    username: str
    role: Role
    added_at: datetime

    @classmethod
    def from_domain(cls, member: Member) -> "MemberOut":
        return cls(**member.model_dump())


class MembershipOut(BaseModel):
    project_id: uuid.UUID
    user_id: uuid.UUID
    role: Role
    physical_only: bool


class UserSearchQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")

    q: str = Field(min_length=1, max_length=32)


class UserSummaryOut(BaseModel):
    id: uuid.UUID
    username: str

    @classmethod
    def from_domain(cls, user: UserSummary) -> "UserSummaryOut":
        return cls(id=user.id, username=user.username)


def _key_role(role: Role) -> Role:
    if role == Role.OWNER:
        raise ValueError("a key's role cap is viewer or editor")
    return role


def _in_the_future(instant: datetime) -> datetime:
    if instant <= datetime.now(UTC):
        raise ValueError("expires_at must be in the future")
    return instant


class ApiKeyCreate(Input):
    name: str = Field(min_length=1, max_length=100)
    expires_at: Annotated[Instant, AfterValidator(_in_the_future)] | None = None
    project_id: uuid.UUID | None = None
    role: Annotated[Role, AfterValidator(_key_role)] | None = None


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    preview: str
    project_id: uuid.UUID | None
    role: Role | None
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def from_domain(cls, key: ApiKey) -> "ApiKeyOut":
        return cls(**key.model_dump())


class ApiKeyCreatedOut(BaseModel):
    id: uuid.UUID
    name: str
    key: str
    preview: str
    project_id: uuid.UUID | None
    role: Role | None
    expires_at: datetime | None
    created_at: datetime

    @classmethod
    def from_domain(cls, key: NewApiKey) -> "ApiKeyCreatedOut":
        return cls(**key.model_dump(exclude={"last_used_at"}))


class ApiKeyGrantOut(BaseModel):
    """What a key presented to the introspection route grants."""

    id: uuid.UUID
    user_id: uuid.UUID
    project_id: uuid.UUID | None
    role: Role | None
    expires_at: datetime | None

    @classmethod
    def from_scope(cls, scope: KeyScope, *, user_id: uuid.UUID) -> "ApiKeyGrantOut":
        return cls(
            id=scope.key_id,
            user_id=user_id,
            project_id=scope.project_id,
            role=scope.role,
            expires_at=scope.expires_at,
        )
