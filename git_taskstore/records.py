"""Typed records and query filters.

A typed record is a dataclass that subclasses :class:`Record` and names its collection and
the fields worth an index::

    @dataclass
    class Task(Record):
        collection_name: ClassVar[str] = "tasks"
        indexed_fields: ClassVar[tuple[str, ...]] = ("status",)
        title: str = ""
        status: str = "open"

Fields a record carries on disk that its class does not declare (written by a newer
release, another tool, or the Rust crate) are kept in ``extra_fields`` and written back.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, TypeVar

from .computed import Computed, check_declaration
from .errors import ValidationError
from .names import validate_collection, validate_field

R = TypeVar("R", bound="Record")

_BASE_FIELDS = ("id", "created_at", "updated_at")


@dataclass(kw_only=True)
class Record:
    """Base of typed records: an id and two timestamps in integer epoch milliseconds."""

    collection_name: ClassVar[str]
    indexed_fields: ClassVar[tuple[str, ...]] = ()
    # Values derived from the fields, by name: filtered and sorted on like fields.
    computed_fields: ClassVar[Mapping[str, Computed]] = {}
    # Prefix of ids the store generates when a record is created with id "".
    id_prefix: ClassVar[str] = ""

    id: str = ""
    created_at: int = 0
    updated_at: int = 0
    extra_fields: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("collection_name")
        if name is not None:
            validate_collection(name)
        for indexed in cls.__dict__.get("indexed_fields", ()):
            validate_field(indexed)
        computed = cls.__dict__.get("computed_fields")
        if computed is not None:
            # The fields, from the annotations: the dataclass is not made yet.
            annotated = {n for klass in cls.__mro__ for n in vars(klass).get("__annotations__", {})}
            check_declaration(cls.__name__, computed, annotated)

    def validate(self) -> None:
        """Raise ValidationError if this record cannot be written; called on every write."""

    def to_dict(self) -> dict[str, Any]:
        """The record as it is written: declared fields first, then the extra ones."""
        return _as_dict(self, _fields_of(type(self)))

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        known = {f.name for f in dataclasses.fields(cls) if f.init and f.name != "extra_fields"}
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        try:
            record = cls(**kwargs)
        except TypeError as exc:
            raise ValidationError(f"cannot read {cls.__name__} {data.get('id')!r}: {exc}") from None
        record.extra_fields = extra
        return record

    @classmethod
    def collection(cls) -> str:
        try:
            return cls.collection_name
        except AttributeError:
            raise ValidationError(
                f"{cls.__name__} has no collection_name: declare "
                '`collection_name: ClassVar[str] = "..."` on the class'
            ) from None


class _Fields(NamedTuple):
    names: tuple[str, ...]  # the fields written, in the order declared
    get: Callable[[Any], tuple[Any, ...]]  # their values, in one call


_FIELDS: dict[type, _Fields] = {}


def _fields_of(cls: type) -> _Fields:
    """What to_dict needs of a record class, worked out once: asking dataclasses.fields()
    on every call was most of a 100,000-record create_many."""
    found = _FIELDS.get(cls)
    if found is None:
        names = tuple(f.name for f in dataclasses.fields(cls) if f.name != "extra_fields")
        get = operator.attrgetter(*names)
        # attrgetter of one name gives the value, not a 1-tuple
        found = _FIELDS[cls] = _Fields(names, get if len(names) > 1 else lambda r: (get(r),))
    return found


def _as_dict(record: Record, fields: _Fields) -> dict[str, Any]:
    state = record.__dict__
    if len(state) == len(fields.names) + 1:
        # Every field set (by __init__: in the order declared) and nothing else: the
        # instance's own dict is the record, at a fifth of the cost of asking each field.
        # (A field deleted and set again comes later in the line; JSON objects are
        # unordered, and nothing reads their order.)
        data = state.copy()
        del data["extra_fields"]
    else:
        data = dict(zip(fields.names, fields.get(record), strict=True))
    if record.extra_fields:
        for key, value in record.extra_fields.items():
            data.setdefault(key, value)
    return data


def dicts_of(records: Sequence[Record]) -> list[dict[str, Any]]:
    """``to_dict()`` of each record, all of one class: what the class needs is looked up
    once (a third of the cost of 100,000 to_dict() calls), unless it overrides to_dict."""
    if not records:
        return []
    cls = type(records[0])
    if cls.to_dict is not Record.to_dict:
        return [record.to_dict() for record in records]
    fields = _fields_of(cls)
    return [_as_dict(record, fields) for record in records]


class Op(enum.Enum):
    EQ = "="
    NE = "!="
    GT = ">"
    GTE = ">="
    LT = "<"
    LTE = "<="
    CONTAINS = "~"
    IN = "in"


Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Filter:
    """``field op value``; several filters are ANDed.

    CONTAINS is a case-insensitive (ASCII) substring match on text, or membership when the
    field holds an array. IN takes a list of values. ``None`` matches null or missing.
    """

    field: str
    op: Op
    value: Scalar | list[Scalar] | tuple[Scalar, ...]

    def __post_init__(self) -> None:
        validate_field(self.field)
        if not isinstance(self.op, Op):
            raise ValidationError(f"unknown filter operator {self.op!r}")
        if self.op is Op.IN:
            if not isinstance(self.value, list | tuple):
                raise ValidationError(f"IN takes a list of values, got {self.value!r}")
            for item in self.value:
                _check_scalar(self.field, item)
        else:
            _check_scalar(self.field, self.value)
            if self.op in (Op.GT, Op.GTE, Op.LT, Op.LTE, Op.CONTAINS) and self.value is None:
                raise ValidationError(f"{self.field}: {self.op.name} cannot compare with null")


def _check_scalar(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str | int | float | bool):
        raise ValidationError(
            f"{name}: filter values are strings, numbers, booleans or null, got {value!r}"
        )
