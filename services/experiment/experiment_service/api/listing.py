"""Turning list query models into domain filters and pages, and pages into responses."""

from collections.abc import Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from backend_common.http import json_response
from experiment_service.domain.listing import ListFilter, Page


def list_filter(query: Any) -> ListFilter:
    return ListFilter(
        project_id=query.project_id,
        experiment_id=getattr(query, "experiment_id", None),
        statuses=tuple(query.status),
        tags=tuple(query.tags),
        tags_match=query.tags_match,
        created_after=query.created_after,
        created_before=query.created_before,
        git_sha=getattr(query, "git_sha", None),
        q=query.q,
    )


def request_page(query: Any) -> Page:
    return Page.from_request(sort=query.sort, limit=query.limit, cursor=query.cursor)


def page_response(rows: Sequence[BaseModel], page: Page) -> web.Response:
    """Rows were fetched with one extra to tell whether a next page exists."""
    items = list(rows[: page.limit])
    next_cursor = page.cursor_after(items[-1]) if len(rows) > page.limit else None
    return json_response({"items": items, "next_cursor": next_cursor})
