"""List filters and keyset sort orders shared by experiments and runs (and their exports)."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from experiment_service.domain.run_queries import RunCondition


class SortOrder(StrEnum):
    CREATED_AT = "created_at"
    CREATED_AT_DESC = "-created_at"
    NAME = "name"
    NAME_DESC = "-name"

    @property
    def column(self) -> str:
        return self.value.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")


class TagsMatch(StrEnum):
    ANY = "any"
    ALL = "all"


@dataclass(frozen=True)
class ListFilter:
    project_id: uuid.UUID | None = None
    experiment_id: uuid.UUID | None = None
    # Runs only: any of these experiments (with project_id, which scopes them).
    experiment_ids: tuple[uuid.UUID, ...] = ()
    statuses: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    tags_match: TagsMatch = TagsMatch.ANY
    created_after: datetime | None = None
    created_before: datetime | None = None
    git_sha: str | None = None
    q: str | None = None
    # Runs only: on params and metric summaries (domain.run_queries), all of them.
    conditions: tuple[RunCondition, ...] = ()
