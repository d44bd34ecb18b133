"""SQL for a query: filters, sort, limit and offset over a collection's current versions.

A query runs over a *source*: a table or subquery with the columns ``id, data, updated_at,
deleted``, where ``data`` is the record's JSON line, and an *order* expression that lists
its rows in the store's order. Values only match values of the same JSON type: ``true`` is
not ``1``, and ``0`` is not less than ``"open"`` (SQLite alone would say both). Field names
are validated to ``[A-Za-z0-9_]`` before they get here, so they are pasted as they are; the
literal JSON path lets SQLite match an expression against the index defined on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import ValidationError
from .records import Filter, Op

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


def select(
    source: str,
    order: str,
    filters: Sequence[Filter],
    *,
    sort: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[str, list[Any]]:
    """The data of the live records that pass the filters, sorted, one page of them."""
    where, params = _where(filters)
    if sort:
        field = sort.lstrip("-")
        direction = "DESC" if sort.startswith("-") else "ASC"
        order = f"{field_expr(field)} {direction}, {order}"
    sql = f"SELECT data FROM {source} WHERE deleted = 0{where} ORDER BY {order}"
    if limit is not None or offset:
        sql += " LIMIT ? OFFSET ?"
        params += [-1 if limit is None else limit, offset]
    return sql, params


def count(source: str, filters: Sequence[Filter]) -> tuple[str, list[Any]]:
    """How many live records pass the filters."""
    where, params = _where(filters)
    return f"SELECT COUNT(*) FROM {source} WHERE deleted = 0{where}", params


def count_by(source: str, field: str) -> str:
    """Live records per (value, JSON type) of a field, most common first."""
    return (
        f"SELECT {field_expr(field)}, json_type(data, '$.{field}'), COUNT(*) FROM {source}"
        " WHERE deleted = 0 GROUP BY 1, 2 ORDER BY 3 DESC"
    )


def counts(source: str) -> str:
    """(live, deleted) records."""
    return f"SELECT COALESCE(SUM(deleted = 0), 0), COALESCE(SUM(deleted), 0) FROM {source}"


def _where(filters: Sequence[Filter]) -> tuple[str, list[Any]]:
    """``AND``-ed SQL of the filters, and their parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    for f in filters:
        expr = field_expr(f.field)
        value = f.value
        if f.op is Op.EQ:
            clauses.append(_equals(f.field, value, params))
        elif f.op is Op.NE:
            clauses.append(
                f"{expr} IS NOT NULL"
                if value is None
                else f"NOT COALESCE({_equals(f.field, value, params)}, 0)"
            )
        elif f.op is Op.CONTAINS:
            clauses.append(_contains(f.field, value, params))
        elif f.op is Op.IN:
            assert isinstance(value, list | tuple)
            clauses.append(_one_of(f.field, value, params))
        else:
            clauses.append(f"({expr} {_COMPARE[f.op]} ?{_same_type(f.field, value)})")
            params.append(value)
    return "".join(f" AND {clause}" for clause in clauses), params


def _equals(field: str, value: Any, params: list[Any]) -> str:
    """``field = value``, index-friendly: the indexed expression compared with ``?``."""
    expr = field_expr(field)
    if value is None:
        return f"{expr} IS NULL"
    if isinstance(value, bool) and field != "id":
        return f"json_type(data, '$.{field}') = '{'true' if value else 'false'}'"
    params.append(value)
    # json_extract returns text for strings and for arrays/objects (their JSON), and
    # integers for numbers and for true/false: only those look-alikes need the type check,
    # and leaving it off elsewhere keeps a count of a common value inside the index.
    ambiguous = (isinstance(value, str) and value[:1] in ("[", "{")) or (
        not isinstance(value, str) and value in (0, 1)
    )
    return f"({expr} = ?{_same_type(field, value) if ambiguous else ''})"


def _contains(field: str, value: Any, params: list[Any]) -> str:
    """A case-insensitive substring of text, or a member of an array."""
    if field == "id":
        params.append(_like(value))
        return "id LIKE ? ESCAPE '\\'"
    path = f"'$.{field}'"
    params += [value, _like(value)]
    return (
        f"(CASE json_type(data, {path}) WHEN 'array' THEN EXISTS"
        f" (SELECT 1 FROM json_each(data, {path}) WHERE value = ?)"
        f" ELSE {field_expr(field)} LIKE ? ESCAPE '\\' END)"
    )


def _one_of(field: str, values: Sequence[Any], params: list[Any]) -> str:
    """``field IN values``: one ``IN (...)`` per JSON type, so the usual single-type list
    stays one index-friendly clause."""
    expr = field_expr(field)
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
        parts.append(f"({expr} IN ({marks}){_same_type(field, members[0])})")
        params += members
    parts += [_equals(field, value, params) for value in singles]
    return f"({' OR '.join(parts)})" if parts else "0"


def _same_type(field: str, value: Any) -> str:
    """An AND clause that keeps only stored values of the same JSON type as ``value``."""
    if field == "id":
        return "" if isinstance(value, str) else " AND 0"
    return f" AND json_type(data, '$.{field}') IN ({_json_types(value)})"


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
