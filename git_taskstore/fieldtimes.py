"""When each field of a record last changed: written with every new version, read by the merge.

A merge must give each field the value of its newest write. The lines of one file cannot
always tell when a field changed: a line that carries an old value from another branch
reads as "changed back", and a value set, changed and set again (ABA) reads as unchanged.
So each version the store or the merge driver writes of a record that already exists
carries its field times, in one reserved key::

    {"id": "t1", "status": "done", "owner": "ann", "created_at": 100, "updated_at": 400,
     "_times": {"status": 400, "owner": 250}}

``_times`` lists each field changed since the record was created, with the version that
last changed it (a removed field too, with the version that removed it). A field it does
not list dates from ``created_at`` (0 without one), so a version that changes nothing
carries an empty ``_times``. A line without ``_times`` (a record's first version, or a
line written by another tool) dates each of its fields from its own version. A field a
record never had dates from 0. ``id``, ``updated_at`` and ``_times`` itself have no time.

Its entry ``deleted`` (a name no field can have) tells a record's lives apart: a record
written again after a delete is a new life, and carries the version of that delete from
then on; a tombstone carries the life it ended. A merge lets a delete end only the life
it saw (so an edit made beside the delete loses to it), and never lets fields of an
older life ride into a newer one.

The store replaces whatever ``_times`` a caller gives (it is bookkeeping, like
``updated_at``); an import keeps the lines as they are. A ``_times`` that is not an object
of integers is ignored, as if the line had none.
"""

from __future__ import annotations

from .jsonl import positive_int, same_json, version_of

TYPE_CHECKING = False  # the merge driver imports this module: typing is not worth its import
if TYPE_CHECKING:
    from typing import Any

TIMES_KEY = "_times"
UNTIMED_KEYS = frozenset(("id", "updated_at", TIMES_KEY))
# The entry of _times that says which life of an id a line belongs to: the version of the
# delete that life follows. "deleted" marks tombstones, so no field can be called so.
LIFE = "deleted"
_MISSING: Any = object()


def recorded(record: dict[str, Any]) -> dict[str, int] | None:
    """The record's ``_times``, or None if it has none (or one that is not valid)."""
    times = record.get(TIMES_KEY)
    if type(times) is not dict or not all(positive_int(t) for t in times.values()):
        return None
    return times


def created(record: dict[str, Any]) -> int:
    """When the fields ``_times`` does not list were set: the record's ``created_at``."""
    value = record.get("created_at")
    return value if type(value) is int and value > 0 else 0


def time_of(record: dict[str, Any], key: str, times: dict[str, int] | None) -> int:
    """When ``key`` last changed in ``record``, whose ``recorded()`` times are ``times``;
    0 for a field it never had (absent and not listed: no write set or removed it)."""
    if times is not None and key in times:
        return times[key]
    if key not in record:
        return 0
    return version_of(record) if times is None else created(record)


def with_times(
    previous: dict[str, Any] | None, record: dict[str, Any], now: int | None = None
) -> dict[str, Any]:
    """``record`` as the line to write for the version that follows ``previous``: a copy
    with its ``_times`` (``record`` itself if ``previous`` is None: a first version
    carries none). The fields it changes date from ``now``, by default its version (its
    updated_at: a record without one, whose class versions it by its own fields, gives
    the time of the write), and any ``_times`` of its own is replaced."""
    record.pop(TIMES_KEY, None)
    if previous is None:
        return record
    if previous.get("deleted") is True:
        # A new life: it follows this delete, which does not kill it in any merge.
        return {**record, TIMES_KEY: {LIFE: version_of(previous)}}
    if now is None:
        now = version_of(record)
    before = recorded(previous)
    keys = dict.fromkeys(previous)
    keys.update(dict.fromkeys(record))
    if before is not None:
        keys.update(dict.fromkeys(before))
    start = created(record)
    times: dict[str, int] = {}
    life = life_of(previous)
    if life:
        times[LIFE] = life
    for key in keys:
        if key in UNTIMED_KEYS or key == LIFE:
            continue
        old, new = previous.get(key, _MISSING), record.get(key, _MISSING)
        if old is _MISSING and new is _MISSING:
            when = before.get(key, 0) if before is not None else 0  # removed earlier
        elif old is _MISSING or new is _MISSING or not same_json(old, new):
            when = now
        else:
            when = time_of(previous, key, before)
        if when != start and when > 0:
            times[key] = when
    # Even empty: a version that carries _times dates what it does not list from
    # created_at, and one without from its own version.
    return {**record, TIMES_KEY: times}


def life_of(record: dict[str, Any]) -> int:
    """Which life of its id a line belongs to (a tombstone: the life it ended): the version
    of the delete that life follows, 0 for the first."""
    times = recorded(record)
    return times.get(LIFE, 0) if times is not None else 0


def tombstone_after(previous: dict[str, Any], tombstone: dict[str, Any]) -> dict[str, Any]:
    """``tombstone`` as the line that ends ``previous``'s life: marked with that life,
    so that a merge lets it kill that life and no later one."""
    life = life_of(previous)
    return {**tombstone, TIMES_KEY: {LIFE: life}} if life else tombstone


def public(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` as readers get it: without ``_times`` (removed in place)."""
    record.pop(TIMES_KEY, None)
    return record
