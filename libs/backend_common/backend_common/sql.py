"""A small helper for SQL with optional filters: numbered parameters and AND-ed conditions."""

from typing import Any


class Query:
    """Collects `$n` parameters and WHERE conditions; column names never come from input."""

    def __init__(self) -> None:
        self.params: list[Any] = []
        self._conditions: list[str] = []

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def where(self, condition: str) -> None:
        self._conditions.append(condition)

    def assignments(self, changes: dict[str, Any], allowed: tuple[str, ...]) -> str:
        """`col = $n, ...` for the keys of `changes` that are in `allowed` (column names)."""
        return ", ".join(
            f"{name} = {self.param(changes[name])}" for name in allowed if name in changes
        )

    @property
    def where_sql(self) -> str:
        return " AND ".join(self._conditions) or "true"


def escape_like(text: str) -> str:
    """`text` with LIKE's wildcards and escape character taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
