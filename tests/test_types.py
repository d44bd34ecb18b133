"""Typed records (issue 14): fields are checked against their type hints before a byte is
written, and restored to them on every read; enum members are filter values."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

from git_taskstore import Filter, Op, Record, Store, ValidationError


class Status(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"


class Kind(enum.Enum):
    SHELL = 1
    PYTHON = 2


@dataclass
class Limits:
    cpu: float = 1.0
    tags: list[str] = field(default_factory=list)


@dataclass
class Loop(Record):
    collection_name: ClassVar[str] = "loops"
    indexed_fields: ClassVar[tuple[str, ...]] = ("status",)

    status: Status = Status.RUNNING
    kind: Kind = Kind.SHELL
    iteration: int = 0
    score: float = 0.0
    done: bool = False
    parent: str | None = None
    tags: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    path: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    history: list[Limits] = field(default_factory=list)
    mode: Literal["fast", "safe"] = "safe"
    anything: Any = None


def lines_of(store: Store, collection: str) -> list[str]:
    path = store.file_path(collection)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()


def test_every_kind_of_field_is_written_as_json_and_read_back_as_declared(store: Store) -> None:
    loop = Loop(
        id="l1",
        status=Status.DONE,
        kind=Kind.PYTHON,
        iteration=3,
        score=2,  # an int where a float is declared: accepted, read back as a float
        parent="l0",
        tags=["a"],
        counts={"x": 1},
        path=("a", "b"),
        limits=Limits(cpu=0.5, tags=["gpu"]),
        history=[Limits(), Limits(cpu=2.0)],
        mode="fast",
        anything={"free": [1, "form"]},
    )
    store.create(loop)
    [line] = lines_of(store, "loops")
    assert '"status":"done"' in line and '"kind":2' in line and '"path":["a","b"]' in line
    assert '"limits":{"cpu":0.5,"tags":["gpu"]}' in line

    read = store.get(Loop, "l1")
    assert read is not None
    assert read.status is Status.DONE and read.kind is Kind.PYTHON
    assert type(read.score) is float and read.score == 2.0
    assert read.path == ("a", "b") and read.limits == Limits(cpu=0.5, tags=["gpu"])
    assert read.history == [Limits(), Limits(cpu=2.0)] and type(read.history[0]) is Limits
    assert read.counts == {"x": 1} and read.mode == "fast"
    assert read.anything == {"free": [1, "form"]}
    assert store.list(Loop)[0] == read


def test_an_enum_value_is_accepted_for_its_member_and_read_back_as_the_member(
    store: Store,
) -> None:
    store.create(Loop(id="l1", status="done", kind=2))  # type: ignore[arg-type]
    read = store.get(Loop, "l1")
    assert read is not None and read.status is Status.DONE and read.kind is Kind.PYTHON


BAD: list[Any] = [
    pytest.param("iteration", "3", "int", "str '3'", id="str-for-int"),
    pytest.param("iteration", True, "int", "bool True", id="bool-for-int"),
    pytest.param("iteration", 1.5, "int", "float 1.5", id="float-for-int"),
    pytest.param("score", "1", "float", "str '1'", id="str-for-float"),
    pytest.param("done", 1, "bool", "int 1", id="int-for-bool"),
    pytest.param("status", "zombie", "Status (one of running, done)", "str 'zombie'", id="enum"),
    pytest.param("kind", 3, "Kind (one of 1, 2)", "int 3", id="enum-value"),
    pytest.param("kind", True, "Kind", "bool True", id="bool-for-int-enum"),
    pytest.param("parent", 7, "str | None", "int 7", id="optional"),
    pytest.param("tags", ["a", 1], "list[str]", "list ['a', 1]", id="list-item"),
    pytest.param("tags", "a", "list[str]", "str 'a'", id="str-for-list"),
    pytest.param("counts", {"x": "1"}, "dict[str, int]", "dict {'x': '1'}", id="dict-value"),
    pytest.param("counts", {1: 1}, "dict[str, int]", "dict {1: 1}", id="dict-key"),
    pytest.param("path", ["a"], "tuple[str, ...]", "list ['a']", id="list-for-tuple"),
    pytest.param("limits", {"cpu": 1.0}, "Limits", "dict {'cpu': 1.0}", id="dict-for-dataclass"),
    pytest.param("history", [Limits(), 1], "list[Limits]", "list", id="nested-list"),
    pytest.param("mode", "quick", "one of 'fast', 'safe'", "str 'quick'", id="literal"),
]


@pytest.mark.parametrize(("name", "value", "expected", "given"), BAD)
def test_a_wrong_type_names_field_expected_and_given_and_writes_nothing(
    store: Store, name: str, value: Any, expected: str, given: str
) -> None:
    """Each write path refuses it: create, put, update, create_many, inside a batch."""
    store.create(Loop(id="l0"))
    before = lines_of(store, "loops")
    attempts = [
        lambda: store.create(Loop(id="l1", **{name: value})),
        lambda: store.put(Loop(id="l1", **{name: value})),
        lambda: store.update(Loop(id="l0", **{name: value})),
        lambda: store.create_many([Loop(id="l2"), Loop(id="l3", **{name: value})]),
        lambda: store.modify(Loop, "l0", lambda loop: setattr(loop, name, value)),
    ]
    for attempt in attempts:
        with pytest.raises(ValidationError) as caught:
            attempt()
        message = str(caught.value)
        assert f"Loop.{name} must be {expected}" in message, message
        assert f"got {given}" in message, message
        assert "\n" not in message
    with pytest.raises(ValidationError), store.batch():
        store.create(Loop(id="l4"))
        store.create(Loop(id="l5", **{name: value}))
    assert lines_of(store, "loops") == before
    assert [loop.id for loop in store.list(Loop)] == ["l0"]


def test_a_field_of_a_nested_dataclass_is_named(store: Store) -> None:
    with pytest.raises(ValidationError, match=r"Limits.cpu must be float, got str 'x'"):
        store.create(Loop(id="l1", limits=Limits(cpu="x")))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"Limits.tags must be list\[str\], got list"):
        store.create(Loop(id="l1", history=[Limits(tags=[1])]))  # type: ignore[list-item]
    assert lines_of(store, "loops") == []


def test_a_record_changed_after_it_was_made_is_checked_too(store: Store) -> None:
    """The quick path (the dict of a record made by __init__) must not wave through a
    field set to another type later, nor an attribute added in place of a field."""
    loop = Loop(id="l1")
    loop.iteration = "3"  # type: ignore[assignment]
    with pytest.raises(ValidationError, match="iteration must be int"):
        store.create(loop)
    loop.tags.append(3)  # type: ignore[arg-type]
    loop.iteration = 3
    with pytest.raises(ValidationError, match="tags must be list"):
        store.create(loop)
    loop = Loop(id="l1", iteration=5)
    del loop.iteration  # reads the class's default now
    loop.other = 1  # type: ignore[attr-defined]
    store.create(loop)
    [line] = lines_of(store, "loops")
    assert '"iteration":0' in line and '"other"' not in line


def test_a_line_that_does_not_fit_its_class_is_named_on_a_typed_read(store: Store) -> None:
    """Lines arrive through git, written by anyone: a typed read says which record and
    field, and the untyped API still reads it."""
    store.collection("loops").put({"id": "bad", "status": "zombie"})
    store.collection("loops").put({"id": "good", "status": "done"})
    with pytest.raises(ValidationError) as caught:
        store.get(Loop, "bad")
    message = str(caught.value)
    assert "Loop 'bad'" in message and "status holds str 'zombie'" in message, message
    assert "Status (one of running, done)" in message
    with pytest.raises(ValidationError, match="Loop 'bad'"):
        store.list(Loop)
    good = store.list(Loop, [Filter("status", Op.EQ, Status.DONE)])
    assert [loop.id for loop in good] == ["good"]
    untyped = store.collection("loops").get("bad")
    assert untyped is not None and untyped["status"] == "zombie"


def test_enum_members_are_filter_values(store: Store) -> None:
    store.create_many(
        [
            Loop(id="a", status=Status.DONE, kind=Kind.PYTHON),
            Loop(id="b", status=Status.RUNNING),
            Loop(id="c", status=Status.DONE),
        ]
    )
    assert [x.id for x in store.list(Loop, [Filter("status", Op.EQ, Status.DONE)])] == ["a", "c"]
    assert [x.id for x in store.list(Loop, [Filter("kind", Op.EQ, Kind.PYTHON)])] == ["a"]
    assert [x.id for x in store.list(Loop, [Filter("kind", Op.NE, Kind.PYTHON)])] == ["b", "c"]
    both = Filter("status", Op.IN, [Status.DONE, Status.RUNNING])
    assert store.count(Loop, [both]) == 3
    assert store.collection("loops").count([Filter("kind", Op.IN, (Kind.SHELL,))]) == 2


def test_fields_that_are_none_are_left_out_unless_the_line_has_them(store: Store) -> None:
    """A None field (None by default) adds no null to a line; a line that has a null
    keeps it, so a merge never reads its disappearance as a removal."""
    store.create(Loop(id="l1"))
    assert '"parent"' not in lines_of(store, "loops")[0]
    store.collection("loops").put({"id": "l2", "parent": None})
    loop = store.get(Loop, "l2")
    assert loop is not None and loop.parent is None
    loop.iteration = 1
    store.update(loop)
    assert '"parent":null' in lines_of(store, "loops")[-1]


def test_write_nulls_writes_them(store: Store) -> None:
    @dataclass
    class Noisy(Record):
        collection_name: ClassVar[str] = "noisy"
        write_nulls: ClassVar[bool] = True
        note: str | None = None

    store.create(Noisy(id="n1"))
    assert '"note":null' in lines_of(store, "noisy")[0]


def test_fields_the_class_does_not_declare_are_kept(store: Store) -> None:
    store.collection("loops").put({"id": "l1", "iteration": 2, "from_rust": {"x": 1}})
    loop = store.get(Loop, "l1")
    assert loop is not None and loop.extra_fields == {"from_rust": {"x": 1}}
    loop.iteration = 3
    store.update(loop)
    untyped = store.collection("loops").get("l1")
    assert untyped is not None
    assert (untyped["iteration"], untyped["from_rust"]) == (3, {"x": 1})


def test_a_type_the_store_cannot_keep_is_refused_on_first_use(store: Store) -> None:
    @dataclass
    class Odd(Record):
        collection_name: ClassVar[str] = "odd"
        pair: tuple[int, str] = (0, "")

    with pytest.raises(ValidationError, match=r"Odd.pair: fixed-length tuples"):
        store.create(Odd(id="o1"))
    assert store.collections() == []


def test_a_hint_that_cannot_be_resolved_is_not_checked(tmp_path: Path) -> None:
    """A class made in a function, naming a type local to it under postponed annotations:
    the store cannot evaluate the hint, so it keeps the value as it is."""

    class Local(enum.StrEnum):
        A = "a"

    @dataclass
    class Holder(Record):
        collection_name: ClassVar[str] = "holders"
        value: Local = Local.A
        count: int = 0

    with Store.open(tmp_path) as store:
        store.create(Holder(id="h1", value=Local.A))
        with pytest.raises(ValidationError, match=r"Holder\.count must be int"):
            store.create(Holder(id="h2", count="1"))  # type: ignore[arg-type]
        read = store.get(Holder, "h1")
        assert read is not None and read.value == "a"


def test_check_is_the_write_s_check_without_the_write(store: Store) -> None:
    with pytest.raises(ValidationError, match="iteration must be int"):
        Loop(id="l1", iteration="x").check()  # type: ignore[arg-type]
    Loop(id="l1").check()
    assert store.collections() == []


def test_a_batch_writes_what_was_checked_not_what_the_record_became(store: Store) -> None:
    """Found by review: an id written again inside a batch was serialised at the end of
    the block from a dict that shared its lists with the caller's record."""
    store.create(Loop(id="l1", tags=["a"]))
    loop = store.get(Loop, "l1")
    assert loop is not None
    with store.batch():
        loop.tags.append("ok")
        store.put(loop)
        loop.tags.append(42)  # type: ignore[arg-type]
        loop.counts["k"] = "s"  # type: ignore[assignment]
    read = store.get(Loop, "l1")
    assert read is not None and read.tags == ["a", "ok"] and read.counts == {}


def test_an_int_in_a_float_field_is_written_as_a_float(store: Store) -> None:
    store.create(Loop(id="l1", score=3))
    assert '"score":3.0' in lines_of(store, "loops")[0]


class Perm(enum.IntFlag):
    R = 1
    W = 2


class Color(enum.Enum):
    RED = (255, 0, 0)


@dataclass
class Flags(Record):
    collection_name: ClassVar[str] = "flags"
    perm: Perm = Perm.R


@dataclass
class Colors(Record):
    collection_name: ClassVar[str] = "colors"
    color: Color = Color.RED


def test_enums_whose_values_json_cannot_keep_are_refused(store: Store) -> None:
    """Found by review: they were written (3, [255, 0, 0]) and then no typed read of the
    collection worked."""
    with pytest.raises(ValidationError, match=r"Flags.perm: flags \(Perm\) are not kept"):
        store.create(Flags(id="f1"))
    with pytest.raises(ValidationError, match=r"Color.RED is \(255, 0, 0\)"):
        store.create(Colors(id="c1"))
    assert store.collections() == []


@dataclass
class Tidy(Record):
    collection_name: ClassVar[str] = "tidy"
    title: str = ""

    def validate(self) -> None:
        self.title = self.title.strip()  # trips over a title that is not a str
        if not self.title:
            raise ValidationError("Tidy needs a title")


def test_validate_runs_first_and_what_it_tidies_is_written(store: Store) -> None:
    """Found by review: validate() ran after the record's dict was taken, so a field it
    tidied was returned tidy and written as it was."""
    assert store.put(Tidy(id="t1", title="  x  ")).title == "x"
    [created] = store.create_many([Tidy(id="t2", title=" y ")])
    assert created.title == "y"
    assert [r["title"] for r in store.collection("tidy").list()] == ["x", "y"]
    with pytest.raises(ValidationError, match=r"Tidy.title must be str, got int 3"):
        store.put(Tidy(id="t3", title=3))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="needs a title"):
        Tidy(id="t4").check()


@dataclass
class Plain(Record):
    collection_name: ClassVar[str] = "plain"
    name: str = ""
    size: int = 0
    note: str | None = None


def test_a_str_or_int_field_takes_an_enum_member_as_its_value(store: Store) -> None:
    """Found by review: a StrEnum member in a str field (which type checkers accept) was
    written as its string before types were checked, and must still be."""
    store.create(Plain(id="p1", name=Status.DONE, size=Kind.PYTHON.value, note=Status.RUNNING))  # type: ignore[arg-type]
    read = store.get(Plain, "p1")
    assert read is not None and (read.name, read.size, read.note) == ("done", 2, "running")
    assert type(read.name) is str
    with pytest.raises(ValidationError, match=r"Plain.size must be int, got Kind"):
        store.create(Plain(id="p2", size=Kind.PYTHON))  # type: ignore[arg-type]


@dataclass
class Step:
    name: str = ""
    extra_fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan(Record):
    collection_name: ClassVar[str] = "plans"
    steps: list[Step] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)


def test_a_nested_key_the_class_does_not_know_is_kept_or_refused_never_lost(
    store: Store,
) -> None:
    store.collection("plans").put(
        {"id": "p1", "steps": [{"name": "a", "timeout": 5}], "limits": {"cpu": 1.0}}
    )
    plan = store.get(Plan, "p1")
    assert plan is not None and plan.steps[0].extra_fields == {"timeout": 5}
    plan.steps.append(Step(name="b"))
    store.update(plan)
    assert store.collection("plans").get("p1")["steps"] == [  # type: ignore[index]
        {"name": "a", "timeout": 5},
        {"name": "b"},
    ]
    store.collection("plans").put({"id": "p2", "limits": {"cpu": 1.0, "gpu": 1}})
    with pytest.raises(ValidationError, match=r"Plan 'p2': limits holds dict"):
        store.get(Plan, "p2")
