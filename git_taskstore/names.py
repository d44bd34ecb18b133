"""What a collection, a field and a record id may be called, and a collection's file name.

Asked by every command and every hook before anything else, so it imports nothing that
costs start-up time.
"""

from __future__ import annotations

import re

from .errors import ValidationError

MAX_ID_BYTES = 256
COLLECTION_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
FIELD_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
SUFFIX = ".jsonl"


def validate_collection(name: str) -> str:
    if not isinstance(name, str) or not COLLECTION_RE.fullmatch(name):
        raise ValidationError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '_' or '-'"
        )
    return name


def validate_field(name: str) -> str:
    if not isinstance(name, str) or not FIELD_RE.fullmatch(name):
        raise ValidationError(f"invalid field name {name!r}: use 1-64 letters, digits or '_'")
    return name


def plain_id(value: object) -> bool:
    """The common, valid id, told at the least cost: a string of 1-64 characters that is
    not all blank (64 characters cannot exceed 256 bytes of UTF-8). Anything else takes
    the long way (validate_id, parse_line), which says what is wrong, if anything."""
    return type(value) is str and 0 < len(value) <= MAX_ID_BYTES // 4 and not value.isspace()


def validate_id(value: object) -> str:
    if plain_id(value):
        return value  # type: ignore[return-value]
    if not isinstance(value, str):
        raise ValidationError(f"record id must be a string, got {type(value).__name__}: {value!r}")
    if not value.strip():
        raise ValidationError('record id is blank: give the record a non-empty "id"')
    if len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        raise ValidationError(
            f"record id is {len(value.encode('utf-8', 'surrogatepass'))} bytes long; "
            f"the limit is {MAX_ID_BYTES}"
        )
    return value
