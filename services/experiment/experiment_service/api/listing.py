"""Turning list query models into domain filters, and pages into responses."""

from typing import Any

from aiohttp import web

from backend_common.http import json_response
from backend_common.pagination import Page
from experiment_service.domain.listing import ListFilter
from experiment_service.domain.run_queries import RunCondition
from experiment_service.models import ExperimentFilters, RunFilters


def list_filter(
    query: ExperimentFilters | RunFilters, conditions: tuple[RunCondition, ...] = ()
) -> ListFilter:
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
        conditions=conditions,
    )


def page_response(page: Page[Any]) -> web.Response:
    return json_response(page.as_json())
