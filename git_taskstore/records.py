"""Typed records and query filters.

A typed record is a dataclass that subclasses :class:`Record` and names its collection and
the fields worth an index::

    class Status(enum.StrEnum):
        OPEN = "open"
        DONE = "done"

    @dataclass
    class Task(Record):
        collection_name: ClassVar[str] = "tasks"
        indexed_fields: ClassVar[tuple[str, ...]] = ("status",)
        title: str = ""
        status: Status = Status.OPEN

Fields a record carries on disk that its class does not declare (written by a newer
release, another tool, or the Rust crate) are kept in ``extra_fields`` and written back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from .computed import Computed, check_declaration
from .errors import ValidationError
from .jsonl import version_of
from .names import validate_collection, validate_field
from .schema import compiled
from .writes import Rules

R = TypeVar("R", bound="Record")


@dataclass(kw_only=True)
class Record:
    """Base of typed records: an id and two timestamps in integer epoch milliseconds.

    A subclass's fields are checked against their type hints on every write and restored
    to them on every read (see :mod:`git_taskstore.schema`). Class options:

    - ``immutable``: once written, a record's fields never change (an update that changes
      one is refused), but for those named in ``set_once``;
    - ``set_once``: fields that may go from None to a value once, and never change again;
    - ``versioned_by``: the fields that say which version of a record is newer, the first
      one set winning. The default, ``("updated_at",)``, has the store stamp
      ``updated_at`` on every write; any other (``("created_at",)``, the default of an
      immutable class, or ``("completed_at", "created_at")``) has it write no
      ``updated_at`` at all, and ``record.updated_at`` reads as that derived version;
    - ``write_nulls``: write a field that is None (and None by default) as ``null``; by
      default it is left out of the line (but kept where the record's line has it).
    """

    collection_name: ClassVar[str]
    indexed_fields: ClassVar[tuple[str, ...]] = ()
    # Values derived from the fields, by name: filtered and sorted on like fields.
    computed_fields: ClassVar[Mapping[str, Computed]] = {}
    # Prefix of ids the store generates when a record is created with id "".
    id_prefix: ClassVar[str] = ""
    immutable: ClassVar[bool] = False
    set_once: ClassVar[tuple[str, ...]] = ()
    versioned_by: ClassVar[tuple[str, ...]] = ("updated_at",)
    write_nulls: ClassVar[bool] = False

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
        for option in ("set_once", "versioned_by"):
            for named in cls.__dict__.get(option, ()):
                validate_field(named)
        if cls.__dict__.get("immutable") and not any(
            "versioned_by" in vars(klass) for klass in cls.__mro__[:-2]
        ):
            # An immutable record has one version, from its creation.
            cls.versioned_by = ("created_at",)

    def validate(self) -> None:
        """Raise ValidationError if this record cannot be written; called on every write,
        before the fields are checked against their type hints (it may tidy them).
        Override it for what the hints cannot say (a title not blank, a count not
        negative)."""

    def check(self) -> None:
        """Raise ValidationError if this record cannot be written, as a write would, without
        writing: validate(), then its fields against their type hints."""
        validated([self])

    def to_dict(self) -> dict[str, Any]:
        """The record as it is written: its fields checked against their hints and
        converted to JSON's types (enum members to their values, dataclasses to objects),
        in the order declared, then the extra ones. ValidationError names a field that
        does not fit."""
        return compiled(type(self)).dump(self)

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        """The record a line holds, its fields restored to their hints (ValidationError
        names one that does not fit); ``updated_at`` is the version the store reads it
        as, for a line that has none too."""
        record: R = compiled(cls).build(data)
        if type(data.get("updated_at")) is not int:
            record.updated_at = version_in(data, cls.versioned_by)
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


def version_in(data: dict[str, Any], versioned_by: Sequence[str]) -> int:
    """The version of a record's line: its ``updated_at`` if it has one (the store orders
    lines by it), else the first of ``versioned_by`` that is set, else the store's rule."""
    for name in ("updated_at", *versioned_by):
        value = data.get(name)
        if type(value) is int and value > 0:
            return value
    return version_of(data)


_RULES: dict[tuple[type, bool], Rules] = {}


def rules_of(cls: type[Record], *, held: bool = False) -> Rules:
    """What the class asks of its records' writes, made once a class. ``held``: for a
    write that debounced mode holds back, which is stamped whatever the class says: held
    pending, it may reach the file after another process's later write of the record,
    and a version it shares with that write would let it win by coming later."""
    found = _RULES.get((cls, held))
    if found is None:
        versioned_by = cls.versioned_by
        fields = set(compiled(cls).fields)
        for option in ("set_once", "versioned_by"):
            unknown = [name for name in getattr(cls, option) if name not in fields]
            if unknown:
                raise ValidationError(
                    f"{cls.__name__}.{option} names {unknown[0]!r}, which is not a field of "
                    f"the class (it has {', '.join(sorted(fields))})"
                )
        found = _RULES[cls, held] = Rules(
            kind=cls.__name__,
            version=lambda data: version_in(data, versioned_by),
            stamped=held or "updated_at" in versioned_by,
            nullable=compiled(cls).nullable,
            immutable=cls.immutable,
            set_once=frozenset(cls.set_once),
        )
    return found


def validated(records: Sequence[Record]) -> list[dict[str, Any]]:
    """What a write of records of one class writes: each validate()d (which may tidy its
    fields), then dicts_of() them, which checks them against their hints. A validate()
    that trips over a field of the wrong type (TypeError, AttributeError) gives way to
    the type check, which names the field."""
    cls = type(records[0]) if records else Record
    if cls.validate is not Record.validate:  # 100,000 calls that do nothing: 8 ms
        for record in records:
            try:
                record.validate()
            except (TypeError, AttributeError):
                compiled(cls).dump(record)
                raise
    return dicts_of(records)


def dicts_of(records: Sequence[Record]) -> list[dict[str, Any]]:
    """``to_dict()`` of each record, all of one class: the compiled dump looked up once,
    unless the class overrides to_dict (its records are checked against their hints
    first all the same)."""
    if not records:
        return []
    cls = type(records[0])
    dump = compiled(cls).dump
    if cls.to_dict is not Record.to_dict:
        for record in records:
            dump(record)
        return [record.to_dict() for record in records]
    return [dump(record) for record in records]


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
        # An enum member matches the value it is written as.
        if isinstance(self.value, enum.Enum):
            object.__setattr__(self, "value", self.value.value)
        elif isinstance(self.value, list | tuple) and any(
            isinstance(item, enum.Enum) for item in self.value
        ):
            object.__setattr__(
                self,
                "value",
                [item.value if isinstance(item, enum.Enum) else item for item in self.value],
            )
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
