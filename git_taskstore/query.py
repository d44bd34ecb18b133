"""SQL for a query: filters, sort, limit and offset over a collection's current versions.

A query runs over a *source*: a table or subquery with the columns ``id, data, updated_at,
deleted``, where ``data`` is the record's JSON line, and an *order* expression that lists
its rows in the store's order. Values only match values of the same JSON type: ``true`` is
not ``1``, and ``0`` is not less than ``"open"`` (SQLite alone would say both). Field names
are validated to ``[A-Za-z0-9_]`` before they get here, so they are pasted as they are; the
literal JSON path lets SQLite match an expression against the index defined on it.

A collection's computed values (:mod:`git_taskstore.computed`, by name) are queried like
fields: a filter or sort on one of those names uses its SQL expression, which its index is
defined on, in place of the stored field's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from .computed import Computed
from .errors import ValidationError
from .records import Filter, Op

# Computed values by name: none.
NONE: Mapping[str, Computed] = {}

# SQLite's LIMIT and OFFSET are 64-bit signed integers.
MAX_WINDOW = 2**63 - 1


def check_window(limit: object, offset: object) -> None:
    """ValidationError unless ``limit`` (or None) and ``offset`` are whole numbers from 0
    to 2**63 - 1."""
    for name, value in (("limit", limit), ("offset", offset)):
        if name == "limit" and value is None:
            continue
        if type(value) is not int or not 0 <= value <= MAX_WINDOW:
            raise ValidationError(
                f"{name} must be a whole number from 0 to {MAX_WINDOW}, got {value!r}"
            )


# SQL comparison of each ordering operator.
_COMPARE = {Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}


def field_expr(field: str) -> str:
    """The SQL expression of a record field (the one the field's index is defined on)."""
    return "id" if field == "id" else f"json_extract(data, '$.{field}')"


class _Column(NamedTuple):
    """What a filter or sort names: a stored field, the id, or a computed value."""

    value: str  # its SQL (the expression its index is defined on)
    type: str  # its JSON type as SQL, in json_type's names
    path: str | None  # its JSON path; None for the id and computed values
    boolean: bool  # a computed truth value: 0 or 1, never null


def _column(field: str, computed: Mapping[str, Computed]) -> _Column:
    found = computed.get(field)
    if found is not None:
        return _Column(found.sql, found.type_sql, None, found.boolean)
    if field == "id":
        return _Column("id", "'text'", None, False)
    path = f"'$.{field}'"
    return _Column(field_expr(field), f"json_type(data, {path})", path, False)


def select(
    source: str,
    order: str,
    filters: Sequence[Filter],
    *,
    sort: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    computed: Mapping[str, Computed] = NONE,
) -> tuple[str, list[Any]]:
    """The data of the live records that pass the filters, sorted, one page of them."""
    where, params = _where(filters, computed)
    if sort:
        field = sort.lstrip("-")
        direction = "DESC" if sort.startswith("-") else "ASC"
        order = f"{_column(field, computed).value} {direction}, {order}"
    sql = f"SELECT data FROM {source} WHERE deleted = 0{where} ORDER BY {order}"
    if limit is not None or offset:
        sql += " LIMIT ? OFFSET ?"
        params += [-1 if limit is None else limit, offset]
    return sql, params


def count(
    source: str, filters: Sequence[Filter], computed: Mapping[str, Computed] = NONE
) -> tuple[str, list[Any]]:
    """How many live records pass the filters."""
    where, params = _where(filters, computed)
    return f"SELECT COUNT(*) FROM {source} WHERE deleted = 0{where}", params


def count_by(source: str, field: str, computed: Mapping[str, Computed] = NONE) -> str:
    """Live records per (value, JSON type) of a field, most common first."""
    column = _column(field, computed)
    return (
        f"SELECT {column.value}, {column.type}, COUNT(*) FROM {source}"
        " WHERE deleted = 0 GROUP BY 1, 2 ORDER BY 3 DESC"
    )


def counts(source: str) -> str:
    """(live, deleted) records."""
    return f"SELECT COALESCE(SUM(deleted = 0), 0), COALESCE(SUM(deleted), 0) FROM {source}"


def _where(filters: Sequence[Filter], computed: Mapping[str, Computed]) -> tuple[str, list[Any]]:
    """``AND``-ed SQL of the filters, and their parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    for f in filters:
        column = _column(f.field, computed)
        value = f.value
        if f.op is Op.EQ:
            clauses.append(_equals(column, value, params))
        elif f.op is Op.NE:
            clauses.append(
                f"{column.value} IS NOT NULL"
                if value is None
                else f"NOT COALESCE({_equals(column, value, params)}, 0)"
            )
        elif f.op is Op.CONTAINS:
            clauses.append(_contains(f.field, column, value, params))
        elif f.op is Op.IN:
            assert isinstance(value, list | tuple)
            clauses.append(_one_of(column, value, params))
        else:
            clauses.append(f"({column.value} {_COMPARE[f.op]} ?{_same_type(column, value)})")
            params.append(value)
    return "".join(f" AND {clause}" for clause in clauses), params


def _equals(column: _Column, value: Any, params: list[Any]) -> str:
    """``field = value``, index-friendly: the indexed expression compared with ``?``."""
    if value is None:
        return f"{column.value} IS NULL"
    if isinstance(value, bool) and column.value != "id":
        if column.boolean:
            params.append(value)
            return f"{column.value} = ?"
        return f"{column.type} = '{'true' if value else 'false'}'"
    params.append(value)
    # json_extract returns text for strings and for arrays/objects (their JSON), and
    # integers for numbers and for true/false: only those look-alikes need the type check,
    # and leaving it off elsewhere keeps a count of a common value inside the index.
    ambiguous = (isinstance(value, str) and value[:1] in ("[", "{")) or (
        not isinstance(value, str) and value in (0, 1)
    )
    return f"({column.value} = ?{_same_type(column, value) if ambiguous else ''})"


def _contains(field: str, column: _Column, value: Any, params: list[Any]) -> str:
    """A case-insensitive substring of text, or a member of an array."""
    if column.value == "id":
        params.append(_like(value))
        return "id LIKE ? ESCAPE '\\'"
    if column.path is None:
        raise ValidationError(f"{field} is a computed value: CONTAINS works on stored fields only")
    params += [value, _like(value)]
    return (
        f"(CASE {column.type} WHEN 'array' THEN EXISTS"
        f" (SELECT 1 FROM json_each(data, {column.path}) WHERE value = ?)"
        f" ELSE {column.value} LIKE ? ESCAPE '\\' END)"
    )


def _one_of(column: _Column, values: Sequence[Any], params: list[Any]) -> str:
    """``field IN values``: one ``IN (...)`` per JSON type, so the usual single-type list
    stays one index-friendly clause."""
    groups: dict[str, list[Any]] = {}
    singles: list[Any] = []  # null and booleans: matched by type alone
    for value in values:
        if value is None or isinstance(value, bool):
            singles.append(value)
        else:
            groups.setdefault(_json_types(value), []).append(value)
    parts: list[str] = []
    for members in groups.values():
        marks = ", ".join("?" * len(members))
        parts.append(f"({column.value} IN ({marks}){_same_type(column, members[0])})")
        params += members
    parts += [_equals(column, value, params) for value in singles]
    return f"({' OR '.join(parts)})" if parts else "0"


def _same_type(column: _Column, value: Any) -> str:
    """An AND clause that keeps only stored values of the same JSON type as ``value``."""
    if column.value == "id":
        return "" if isinstance(value, str) else " AND 0"
    if column.boolean:
        # A truth value is only ever a boolean: no type to ask for.
        return "" if isinstance(value, bool) else " AND 0"
    return f" AND {column.type} IN ({_json_types(value)})"


def _json_types(value: Any) -> str:
    if isinstance(value, bool):
        return "'true', 'false'"
    if isinstance(value, int | float):
        return "'integer', 'real'"
    return "'text'"


def _like(value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
