"""SQL for the filtered, keyset-paginated lists (experiments, runs, sensors, conversion
profiles) and exports, and the key their cursors carry."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol, TypeVar

from pydantic import Field

from backend_common.pagination import CursorKey, InvalidCursor, Page, PageRequest
from backend_common.sql import Query, escape_like
from experiment_service.domain.listing import ListFilter, SortOrder, TagsMatch
from experiment_service.repositories.run_conditions import condition_sql


class SortKey(CursorKey):
    """The sort order a page was read in, and the sort value and id of its last row."""

    sort: SortOrder
    value: Annotated[str, Field(pattern=r"^[^\x00]*$")]  # PostgreSQL text cannot hold NUL
    id: uuid.UUID


class _Row(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


RowT = TypeVar("RowT", bound=_Row)


def sort_key(row: _Row, sort: SortOrder) -> SortKey:
    value = getattr(row, sort.column)
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return SortKey(sort=sort, value=text, id=row.id)


def page_in(rows: Sequence[RowT], sort: SortOrder, page: PageRequest) -> Page[RowT]:
    """Rows read by `paged` cut to one page, with the cursor of the next."""
    return page.page(list(rows), key=lambda row: sort_key(row, sort))


def _after(page: PageRequest, sort: SortOrder) -> tuple[str | datetime, uuid.UUID] | None:
    """The (sort value, id) the page starts after; a cursor of another sort order is refused."""
    key = page.after(SortKey)
    if key is None:
        return None
    if key.sort != sort:
        raise InvalidCursor("The cursor belongs to another sort order.")
    if sort.column != "created_at":
        return key.value, key.id
    try:
        instant = datetime.fromisoformat(key.value)
        if instant.tzinfo is None:
            raise ValueError("an instant without an offset")
        return instant.astimezone(UTC), key.id
    except (ValueError, OverflowError):
        raise InvalidCursor() from None


def apply_filter(query: Query, flt: ListFilter, *, text_expr: str) -> None:
    """WHERE conditions for `flt`; `text_expr` is what `q` searches (matches a trigram index)."""
    if flt.project_id is not None:
        query.where(f"project_id = {query.param(flt.project_id)}")
    if flt.experiment_id is not None:
        query.where(f"experiment_id = {query.param(flt.experiment_id)}")
    if flt.experiment_ids:
        query.where(f"experiment_id = ANY({query.param(list(flt.experiment_ids))}::uuid[])")
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
    for condition in flt.conditions:
        query.where(condition_sql(query, condition))


def _order_sql(sort: SortOrder) -> str:
    direction = "DESC" if sort.descending else "ASC"
    return f"{sort.column} {direction}, id {direction}"


def page_sql(
    select: str, flt: ListFilter, sort: SortOrder, page: PageRequest, *, text_expr: str
) -> tuple[str, list[Any]]:
    """`select` narrowed to one page (with one extra row to tell whether another follows)."""
    query = Query()
    apply_filter(query, flt, text_expr=text_expr)
    return paged(select, query, sort, page), query.params


def paged(select: str, query: Query, sort: SortOrder, page: PageRequest) -> str:
    """`select` with the conditions of `query`, narrowed to `page` in `sort` order (plus one
    row)."""
    after = _after(page, sort)
    if after is not None:
        comparison = "<" if sort.descending else ">"
        query.where(
            f"({sort.column}, id) {comparison} ({query.param(after[0])}, {query.param(after[1])})"
        )
    return (
        f"{select} WHERE {query.where_sql} ORDER BY {_order_sql(sort)} "
        f"LIMIT {query.param(page.fetch)}"
    )


def all_sql(
    select: str, flt: ListFilter, sort: SortOrder, *, text_expr: str, limit: int
) -> tuple[str, list[Any]]:
    """`select` narrowed to the first `limit` matching rows, in `sort` order."""
    query = Query()
    apply_filter(query, flt, text_expr=text_expr)
    order = _order_sql(sort)
    return f"{select} WHERE {query.where_sql} ORDER BY {order} LIMIT {query.param(limit)}", (
        query.params
    )


def more_than_sql(
    select: str, flt: ListFilter, count: int, *, text_expr: str
) -> tuple[str, list[Any]]:
    """Whether more than `count` rows match (reads at most `count` + 1 of them)."""
    query = Query()
    apply_filter(query, flt, text_expr=text_expr)
    return f"SELECT EXISTS ({select} WHERE {query.where_sql} OFFSET {query.param(count)})", (
        query.params
    )
