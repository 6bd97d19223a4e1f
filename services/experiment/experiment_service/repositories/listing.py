"""SQL for the filtered, keyset-paginated lists (experiments, runs, sensors) and exports."""

from typing import Any

from backend_common.sql import Query, escape_like
from experiment_service.domain.listing import ListFilter, Page, SortOrder, TagsMatch


def _apply_filter(query: Query, flt: ListFilter, *, text_expr: str) -> None:
    """WHERE conditions for `flt`; `text_expr` is what `q` searches (matches a trigram index)."""
    if flt.project_id is not None:
        query.where(f"project_id = {query.param(flt.project_id)}")
    if flt.experiment_id is not None:
        query.where(f"experiment_id = {query.param(flt.experiment_id)}")
    if flt.statuses:
        query.where(f"status = ANY({query.param(list(flt.statuses))}::text[])")
    if flt.tags:
        operator = "&&" if flt.tags_match == TagsMatch.ANY else "@>"
        query.where(f"tags {operator} {query.param(list(flt.tags))}::text[]")
    if flt.created_after is not None:
        query.where(f"created_at >= {query.param(flt.created_after)}")
    if flt.created_before is not None:
        query.where(f"created_at < {query.param(flt.created_before)}")
    if flt.git_sha is not None:
        query.where(f"git_sha LIKE {query.param(flt.git_sha + '%')}")
    if flt.q is not None:
        query.where(f"({text_expr}) ILIKE {query.param('%' + escape_like(flt.q) + '%')}")


def _order_sql(sort: SortOrder) -> str:
    direction = "DESC" if sort.descending else "ASC"
    return f"{sort.column} {direction}, id {direction}"


def page_sql(select: str, flt: ListFilter, page: Page, *, text_expr: str) -> tuple[str, list[Any]]:
    """`select` narrowed to one page (with one extra row to tell whether another follows)."""
    query = Query()
    _apply_filter(query, flt, text_expr=text_expr)
    return paged(select, query, page), query.params


def paged(select: str, query: Query, page: Page) -> str:
    """`select` with the conditions of `query`, narrowed to `page` (plus one row)."""
    if page.after_id is not None:
        comparison = "<" if page.sort.descending else ">"
        query.where(
            f"({page.sort.column}, id) {comparison} "
            f"({query.param(page.after_value)}, {query.param(page.after_id)})"
        )
    return (
        f"{select} WHERE {query.where_sql} ORDER BY {_order_sql(page.sort)} "
        f"LIMIT {query.param(page.limit + 1)}"
    )


def all_sql(
    select: str, flt: ListFilter, sort: SortOrder, *, text_expr: str
) -> tuple[str, list[Any]]:
    """`select` narrowed to every matching row, in `sort` order."""
    query = Query()
    _apply_filter(query, flt, text_expr=text_expr)
    return f"{select} WHERE {query.where_sql} ORDER BY {_order_sql(sort)}", query.params
