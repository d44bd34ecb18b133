"""query.py: filters, sort, limit and offset, as every read runs them."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from testing.stores import (
    ids,
    snapshot,
)

from git_taskstore import (
    Collection,
    Filter,
    Op,
    Store,
    ValidationError,
)

ROWS: list[dict[str, Any]] = [
    {
        "id": "r1",
        "title": "Fix Login bug",
        "status": "open",
        "priority": 3,
        "score": 1.5,
        "done": False,
        "owner": "ann",
        "tags": ["backend", "auth"],
    },
    {
        "id": "r2",
        "title": "Add OAuth",
        "status": "done",
        "priority": 1,
        "score": 2.25,
        "done": True,
        "owner": None,
        "tags": ["auth"],
    },
    {
        "id": "r3",
        "title": "Write docs",
        "status": "open",
        "priority": 2,
        "score": 0.5,
        "done": False,
        "tags": [],
    },
    {
        "id": "r4",
        "title": "100% coverage",
        "status": "blocked",
        "priority": 5,
        "score": -1.0,
        "done": False,
        "owner": "bob",
        "tags": ["tests"],
    },
    {
        "id": "r5",
        "title": "login_page",
        "status": "open",
        "priority": 4,
        "score": 3.0,
        "done": True,
        "owner": "ann",
    },
]


ROW_FIELDS = ("title", "status", "priority", "score", "done", "owner", "tags")


@pytest.fixture(params=["indexed", "not-indexed"])
def rows(request: pytest.FixtureRequest, store: Store) -> Collection:
    coll = store.collection("rows")
    if request.param == "indexed":
        coll.ensure_index(*ROW_FIELDS)
    coll.put_many(ROWS)
    # A deleted record must never match anything.
    coll.put({"id": "r6", "status": "open", "priority": 3, "owner": "ann", "tags": ["auth"]})
    coll.delete("r6")
    return coll


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([Filter("status", Op.EQ, "open")], ["r1", "r3", "r5"]),
        ([Filter("priority", Op.EQ, 3)], ["r1"]),
        ([Filter("score", Op.EQ, 2.25)], ["r2"]),
        ([Filter("score", Op.EQ, 3)], ["r5"]),
        ([Filter("done", Op.EQ, True)], ["r2", "r5"]),
        ([Filter("done", Op.EQ, False)], ["r1", "r3", "r4"]),
        ([Filter("owner", Op.EQ, None)], ["r2", "r3"]),
        ([Filter("id", Op.EQ, "r2")], ["r2"]),
        ([Filter("status", Op.NE, "open")], ["r2", "r4"]),
        ([Filter("owner", Op.NE, "ann")], ["r2", "r3", "r4"]),
        ([Filter("owner", Op.NE, None)], ["r1", "r4", "r5"]),
        ([Filter("done", Op.NE, True)], ["r1", "r3", "r4"]),
        ([Filter("priority", Op.GT, 3)], ["r4", "r5"]),
        ([Filter("priority", Op.GTE, 3)], ["r1", "r4", "r5"]),
        ([Filter("priority", Op.LT, 2)], ["r2"]),
        ([Filter("priority", Op.LTE, 2)], ["r2", "r3"]),
        ([Filter("score", Op.GT, 1.5)], ["r2", "r5"]),
        ([Filter("score", Op.LT, 0)], ["r4"]),
        ([Filter("score", Op.LTE, 0.5)], ["r3", "r4"]),
        ([Filter("title", Op.GT, "M")], ["r3", "r5"]),
        ([Filter("title", Op.LT, "B")], ["r2", "r4"]),
        ([Filter("id", Op.GTE, "r4")], ["r4", "r5"]),
        ([Filter("title", Op.CONTAINS, "login")], ["r1", "r5"]),
        ([Filter("title", Op.CONTAINS, "LOGIN")], ["r1", "r5"]),
        ([Filter("title", Op.CONTAINS, "%")], ["r4"]),
        ([Filter("title", Op.CONTAINS, "_")], ["r5"]),
        ([Filter("title", Op.CONTAINS, "n_p")], ["r5"]),
        ([Filter("id", Op.CONTAINS, "3")], ["r3"]),
        ([Filter("tags", Op.CONTAINS, "auth")], ["r1", "r2"]),
        ([Filter("tags", Op.CONTAINS, "tests")], ["r4"]),
        ([Filter("tags", Op.CONTAINS, "aut")], []),
        ([Filter("status", Op.IN, ["done", "blocked"])], ["r2", "r4"]),
        ([Filter("owner", Op.IN, ["bob", None])], ["r2", "r3", "r4"]),
        ([Filter("owner", Op.IN, [None])], ["r2", "r3"]),
        ([Filter("priority", Op.IN, (1, 5))], ["r2", "r4"]),
        ([Filter("score", Op.IN, [0.5, 3.0])], ["r3", "r5"]),
        ([Filter("done", Op.IN, [True])], ["r2", "r5"]),
        ([Filter("status", Op.IN, [])], []),
        ([Filter("id", Op.IN, ["r1", "r6", "zz"])], ["r1"]),
        ([Filter("missing_field", Op.EQ, None)], ["r1", "r2", "r3", "r4", "r5"]),
        ([Filter("missing_field", Op.EQ, "x")], []),
        (
            [Filter("status", Op.EQ, "open"), Filter("priority", Op.GTE, 3)],
            ["r1", "r5"],
        ),
        (
            [
                Filter("status", Op.EQ, "open"),
                Filter("owner", Op.EQ, "ann"),
                Filter("title", Op.CONTAINS, "bug"),
            ],
            ["r1"],
        ),
        ([Filter("status", Op.EQ, "open"), Filter("status", Op.EQ, "done")], []),
    ],
    ids=repr,
)
def test_filters(rows: Collection, filters: list[Filter], expected: list[str]) -> None:
    assert ids(rows.list(filters)) == expected
    assert rows.count(filters) == len(expected)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("priority", ["r2", "r3", "r1", "r5", "r4"]),
        ("-priority", ["r4", "r5", "r1", "r3", "r2"]),
        ("score", ["r4", "r3", "r1", "r2", "r5"]),
        ("-score", ["r5", "r2", "r1", "r3", "r4"]),
        ("title", ["r4", "r2", "r1", "r3", "r5"]),
        # Ties keep the store's order.
        ("status", ["r4", "r2", "r1", "r3", "r5"]),
        ("-status", ["r1", "r3", "r5", "r2", "r4"]),
        ("id", ["r1", "r2", "r3", "r4", "r5"]),
        ("-id", ["r5", "r4", "r3", "r2", "r1"]),
    ],
)
def test_sort(rows: Collection, sort: str, expected: list[str]) -> None:
    assert ids(rows.list(sort=sort)) == expected


def test_limit_and_offset(rows: Collection) -> None:
    assert ids(rows.list(sort="priority", limit=2)) == ["r2", "r3"]
    assert ids(rows.list(sort="priority", limit=2, offset=2)) == ["r1", "r5"]
    assert ids(rows.list(sort="priority", offset=4)) == ["r4"]
    assert ids(rows.list(sort="priority", offset=9)) == []
    assert rows.list(limit=0) == []
    assert ids(rows.list([Filter("status", Op.EQ, "open")], sort="-priority", limit=1)) == ["r5"]


def test_negative_limit_is_refused(store: Store, rows: Collection) -> None:
    before = snapshot(store.path)
    with pytest.raises(ValidationError, match="limit"):
        rows.list(limit=-1)
    assert snapshot(store.path) == before


@pytest.mark.parametrize(
    "make",
    [
        lambda: Filter("a.b", Op.EQ, 1),
        lambda: Filter("x", Op.IN, "ab"),
        lambda: Filter("x", Op.IN, [[1]]),  # type: ignore[list-item]
        lambda: Filter("x", Op.EQ, {"a": 1}),  # type: ignore[arg-type]
        lambda: Filter("x", Op.GT, None),
        lambda: Filter("x", Op.CONTAINS, None),
        lambda: Filter("x", "=", 1),  # type: ignore[arg-type]
    ],
)
def test_invalid_filters_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(ValidationError):
        make()


def test_sort_by_an_invalid_field_is_refused(store: Store, rows: Collection) -> None:
    before = snapshot(store.path)
    with pytest.raises(ValidationError, match="field name"):
        rows.list(sort="-a b")
    assert snapshot(store.path) == before


def test_list_of_a_collection_that_does_not_exist_is_empty(store: Store) -> None:
    assert store.collection("nothing").list() == []
    assert store.collection("nothing").count() == 0
    assert store.collection("nothing").get("a") is None
    assert store.collections() == []


@pytest.mark.parametrize("indexed", [False, True])
@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (Filter("v", Op.EQ, True), ["bool"]),
        (Filter("v", Op.EQ, 1), ["int", "float"]),
        (Filter("v", Op.EQ, "1"), ["text1"]),
        (Filter("v", Op.GT, 0), ["int", "float"]),  # text is not greater than a number
        (Filter("v", Op.LT, "z"), ["text1", "open"]),
        (Filter("v", Op.NE, 1), ["bool", "text1", "open", "missing", "null", "list"]),
        (Filter("v", Op.IN, ["open", 1, None]), ["int", "float", "open", "missing", "null"]),
        (Filter("v", Op.IN, [False]), []),
        (Filter("id", Op.IN, ["int", 2, True]), ["int"]),
    ],
)
def test_filters_never_match_across_json_types(
    tasks: Collection, flt: Filter, expected: list[str], indexed: bool
) -> None:
    if indexed:
        tasks.ensure_index("v")
    tasks.put_many(
        [
            {"id": "bool", "v": True},
            {"id": "int", "v": 1},
            {"id": "float", "v": 1.0},
            {"id": "text1", "v": "1"},
            {"id": "open", "v": "open"},
            {"id": "missing"},
            {"id": "null", "v": None},
            {"id": "list", "v": [1]},
        ]
    )
    assert [r["id"] for r in tasks.list([flt])] == expected


def test_nan_and_infinity_are_refused_not_written_as_null(tasks: Collection) -> None:
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValidationError, match="NaN or Infinity"):
            tasks.put({"id": "x", "nested": {"v": [1, bad]}})
    assert tasks.list() == []
    assert not os.path.exists(tasks.store.file_path("tasks"))


@pytest.mark.parametrize(
    "window",
    [
        {"offset": -5},
        {"limit": -1},
        {"limit": "2"},
        {"limit": True},
        {"offset": 2**63},
        {"limit": 1.0},
    ],
    ids=repr,
)
def test_limit_and_offset_are_whole_numbers_sqlite_takes(
    tasks: Collection, window: dict[str, Any]
) -> None:
    """(Mutation: drop check_window: offset=-5 is accepted, 2**63 raises OverflowError.)"""
    tasks.put({"id": "a"})
    with pytest.raises(ValidationError, match="must be a whole number from 0 to"):
        tasks.list(**window)
    assert [r["id"] for r in tasks.list(limit=2**63 - 1, offset=0)] == ["a"]
