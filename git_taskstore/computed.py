"""Values derived from a record's fields, as SQL over its stored JSON line.

A record class names them in ``computed_fields``; filters and sorts then use them like
fields, and each has an expression index::

    computed_fields = {
        "acknowledged": is_set("acknowledged_at"),
        "effective_updated_at": first_set("completed_at", "created_at"),
    }

The cache is rebuilt from the JSONL files by processes that know no Python classes (the
hooks run a sync), so a computed value is an SQL expression over the column ``data``,
never a Python function. It is built from a rule and field names only, both validated:
no SQL text comes from a caller, and the cache stores the rule and the names, not SQL.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .errors import ValidationError
from .names import validate_field

# Rules whose value is a truth value: never null, stored by SQLite as 0 or 1.
_BOOLEAN = ("is_set", "is_unset")
RULES = (*_BOOLEAN, "first_set")


@dataclass(frozen=True)
class Computed:
    """A value derived from stored fields by one of :data:`RULES` (make one with
    :func:`is_set`, :func:`is_unset` or :func:`first_set`)."""

    rule: str
    fields: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValidationError(
                f"unknown computed rule {self.rule!r}: use one of {', '.join(RULES)}"
            )
        if not isinstance(self.fields, tuple) or not self.fields:
            raise ValidationError(f"{self.rule} takes field names, got {self.fields!r}")
        for name in self.fields:
            validate_field(name)
        if self.rule in _BOOLEAN and len(self.fields) != 1:
            raise ValidationError(f"{self.rule} takes one field, got {len(self.fields)}")

    @property
    def boolean(self) -> bool:
        """True for a truth value (compared with True and False only, never null)."""
        return self.rule in _BOOLEAN

    @property
    def sql(self) -> str:
        """The value, as SQL over the column ``data`` (its index is defined on it)."""
        # json_extract gives SQL NULL for a field that is missing and for a JSON null.
        extracts = [f"json_extract(data, '$.{name}')" for name in self.fields]
        if self.rule == "is_set":
            return f"({extracts[0]} IS NOT NULL)"
        if self.rule == "is_unset":
            return f"({extracts[0]} IS NULL)"
        return f"COALESCE({', '.join(extracts)})" if len(extracts) > 1 else extracts[0]

    @property
    def type_sql(self) -> str:
        """The value's JSON type as SQL, in json_type's names ('text', 'integer', 'real',
        'true', 'false', 'array', 'object'; NULL for none): queries compare values of
        one type only, as they do for stored fields."""
        if self.boolean:
            return f"(CASE WHEN {self.sql} THEN 'true' ELSE 'false' END)"
        # The type of the field COALESCE picks: the first whose type is not null.
        types = [f"NULLIF(json_type(data, '$.{name}'), 'null')" for name in self.fields]
        return f"COALESCE({', '.join(types)})" if len(types) > 1 else types[0]


def is_set(field: str) -> Computed:
    """True where the record holds ``field`` and it is not null."""
    return Computed("is_set", (field,))


def is_unset(field: str) -> Computed:
    """True where the record lacks ``field`` or holds null in it."""
    return Computed("is_unset", (field,))


def first_set(*fields: str) -> Computed:
    """The first of ``fields`` the record holds a non-null value in (null if none):
    ``first_set("completed_at", "created_at")``."""
    return Computed("first_set", fields)


def check_declaration(owner: str, computed: object, fields: Collection[str]) -> None:
    """ValidationError unless ``computed`` (a record class's ``computed_fields``) maps
    names of their own to Computed values over ``fields``, the class's fields: a typo
    in a field name would give a value that is never set, silently."""
    if not isinstance(computed, Mapping):
        raise ValidationError(f"{owner}.computed_fields must be a dict, got {computed!r}")
    for name, value in computed.items():
        validate_field(name)
        if not isinstance(value, Computed):
            raise ValidationError(
                f"{owner}.computed_fields[{name!r}] is {value!r}: make it with is_set(), "
                "is_unset() or first_set()"
            )
        if name in fields:
            raise ValidationError(
                f"{owner}.computed_fields: {name!r} is a field of {owner} already: give the "
                "computed value a name of its own"
            )
        for read in value.fields:
            if read not in fields:
                raise ValidationError(
                    f"{owner}.computed_fields[{name!r}] reads {read!r}, which {owner} does "
                    "not declare"
                )
