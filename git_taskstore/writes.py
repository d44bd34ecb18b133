"""Planning writes: from the records of each call to the rows that will be appended.

A write is a list of requests, one per call (put, put_many, delete...): its records
copied, stamped with the time of the call and serialised, which validates them. Planning
one collection's requests reads the current versions once (in chunks), applies the rules
of each mode, and gives every new version an ``updated_at`` above the version it
replaces. The same plan feeds an immediate append, a batch, or the pending table of
debounced mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING, Any

from . import jsonl
from .errors import AlreadyExistsError, NotFoundError, ValidationError
from .fieldtimes import LIFE, TIMES_KEY, recorded, tombstone_after, with_times

if TYPE_CHECKING:
    from .cache import Current, Row
    from .records import Record

MODES = ("put", "patch", "create", "update", "import", "delete")
# Modes whose records are stamped when given (see make_request).
STAMPED = frozenset(("put", "create", "update"))


@dataclass(frozen=True, slots=True)
class Rules:
    """What a typed record's class asks of the writes of its records (records.rules_of)."""

    kind: str  # the class's name, for messages
    # The version a record's line reads as, for a record the store does not stamp.
    version: Callable[[dict[str, Any]], int]
    stamped: bool = True  # the store stamps updated_at on every version
    # Fields left out of a line while None: kept as null where the current line has them
    # (a null that vanished would read as a removal to a merge, and beat older writes).
    nullable: tuple[str, ...] = ()
    immutable: bool = False  # once written, fields do not change...
    set_once: frozenset[str] = frozenset()  # ...but these, from None to a value, once

    def follow(self, rid: str, current: dict[str, Any], record: dict[str, Any]) -> None:
        """Complete ``record`` as the version after ``current`` (a live record), or raise
        ValidationError where it changes what may not change."""
        for name in self.nullable:
            if name not in record and current.get(name, 0) is None:
                record[name] = None
        if not (self.immutable or self.set_once):
            return
        for key in dict.fromkeys([*current, *record]):
            if key in _UNCHECKED:
                continue
            old, new = current.get(key), record.get(key)
            if _same(old, new) or (key == "created_at" and old is None):
                continue  # (a line without created_at gets the one the store gives it)
            if key in self.set_once:
                if old is None:
                    continue
                raise ValidationError(
                    f"{self.kind} {rid}: {key} is set once, and holds {old!r} already: "
                    "nothing was written"
                )
            if self.immutable:
                raise ValidationError(
                    f"{self.kind} {rid} is immutable: {key} cannot change from {old!r} to "
                    f"{new!r}; nothing was written"
                )


# Fields an immutable record's versions may differ in: the store's own bookkeeping.
_UNCHECKED = frozenset(("id", "updated_at", TIMES_KEY))
_NUMBERS = (int, float)


def _same(old: Any, new: Any) -> bool:
    """The same value to a reader: 3 and 3.0 are (a float field written as 3 reads back as
    3.0; jsonl.same_json tells them apart, as the bytes of a line do), True and 1 are not."""
    if type(old) is type(new) or (type(old) in _NUMBERS and type(new) in _NUMBERS):
        return bool(old == new)
    return False


@dataclass(slots=True)
class Request:
    """The records of one call (a put, a put_many, a delete...): one collection, one mode.

    ``records`` are validated copies of the caller's records and ``lines`` what each
    serialised to when it was given. Planning completes the records in place (so what a
    caller holds shows what was written) and appends to ``written`` those it wrote.
    ``typed`` holds the typed Records the dicts came from, if any: they get the timestamps
    once the write is done.
    """

    collection: str
    mode: str
    stamp: int  # the time the call was made, in ms
    records: list[dict[str, Any]]
    lines: list[str]
    # For stamped modes: whether each record gave a created_at of its own.
    own_created: list[bool] | None = None
    typed: list[Record] | None = None
    rules: Rules | None = None  # of the typed records' class
    written: list[dict[str, Any]] = field(default_factory=list)

    def joins(self, other: Request) -> bool:
        """Whether ``other`` can be added to this request (a batch holds runs of calls
        as one request: fewer objects for the cycle collector to walk again and again)."""
        return (
            self.collection == other.collection
            and self.mode == other.mode
            and self.stamp == other.stamp
            and (self.typed is None) == (other.typed is None)
            and self.rules is other.rules
        )

    def add(self, record: object) -> dict[str, Any]:
        """Copy, stamp and serialise one more record of this put, create or update (a
        loop of single puts inside a batch: kept to the least work a record needs).
        Raises ValidationError, and adds nothing, if the record cannot be written."""
        if type(record) is not dict:
            jsonl.line_of(record)  # raises, saying what is wrong
        if TOMBSTONE_KEY in record:  # type: ignore[operator]
            _refuse_tombstone_key(None)
        copy: dict[str, Any] = record.copy()  # type: ignore[attr-defined]
        copy.pop(TIMES_KEY, None)  # the store's own: planning sets it for a new version
        own = jsonl.positive_int(copy.get("created_at"))
        if not own:
            copy["created_at"] = self.stamp
        copy["updated_at"] = self.stamp
        line = jsonl.line_of(copy)
        self.records.append(copy)
        self.lines.append(line)
        self.own_created.append(own)  # type: ignore[union-attr]
        return copy

    def extend(self, other: Request) -> None:
        self.records += other.records
        self.lines += other.lines
        if self.own_created is not None and other.own_created is not None:
            self.own_created += other.own_created
        if self.typed is not None and other.typed is not None:
            self.typed += other.typed

    def truncate(self, size: int) -> None:
        """Drop the records after the first ``size``."""
        del self.records[size:], self.lines[size:]
        if self.own_created is not None:
            del self.own_created[size:]
        if self.typed is not None:
            del self.typed[size:]

    def stamp_typed(self) -> None:
        rules = self.rules
        for typed, record in zip(self.typed or (), self.records, strict=False):
            typed.created_at = record["created_at"]
            if rules is None or rules.stamped:
                typed.updated_at = record["updated_at"]
            else:  # the version the class derives (a stamp, where one was needed)
                typed.updated_at = record.get("updated_at") or rules.version(record)


def make_request(
    collection: str,
    mode: str,
    records: Sequence[object],
    stamp: int,
    typed: list[Record] | None = None,
    *,
    first: int = 1,
    rules: Rules | None = None,
) -> Request:
    """Copy and validate the records of one call (one bad record: ValidationError, and
    nothing to write).

    A put, create or update is stamped as it is given: updated_at, and created_at unless
    the record has a valid one of its own, are the time of the call. For a new id (the
    common case of a batch) the line serialised to validate the record is then the line
    to write; planning re-stamps only records whose id already holds a version. A refusal
    counts records from ``first``. The dicts of ``typed`` records (from to_dict()) are
    the request's own: they are stamped in place rather than copied. A class whose
    ``rules`` say it is not stamped gets no updated_at (but where planning finds that the
    line would read as older than the one it follows).
    """
    stamped = rules is None or rules.stamped
    own_created: list[bool] | None = None
    if mode == "patch":
        for number, record in enumerate(records, first):
            if isinstance(record, dict) and TOMBSTONE_KEY in record:
                _refuse_tombstone_key(number if len(records) > 1 or first > 1 else None)
    if mode in STAMPED:
        copies: list[Any] = []
        own_created = []
        copy, own = copies.append, own_created.append
        for record in records:
            if not isinstance(record, dict):
                copy(record)  # refused below, with the reason
                own(False)
                continue
            if TOMBSTONE_KEY in record:
                number = first + len(copies)
                _refuse_tombstone_key(number if len(records) > 1 or first > 1 else None)
            if typed is None:
                record = record.copy()
            record.pop(TIMES_KEY, None)  # the store's own: planning sets it for a new version
            created = record.get("created_at")
            if created.__class__ is int and created > 0:  # jsonl.positive_int, inline
                own(True)
            else:
                record["created_at"] = stamp
                own(False)
            if stamped:
                record["updated_at"] = stamp
            else:
                record.pop("updated_at", None)
            copy(record)
        lines = jsonl.lines_of(copies, first)
    else:
        lines = jsonl.lines_of(records, first)
        copies = [dict(record) for record in records]  # type: ignore[call-overload]
    return Request(collection, mode, stamp, copies, lines, own_created, typed, rules)


# The field that marks a tombstone. A record of the user's that carried it would be read
# as deleted by every rebuild and every other clone, however it was acknowledged.
TOMBSTONE_KEY = "deleted"


def _refuse_tombstone_key(number: int | None) -> None:
    where = f"record {number}: " if number is not None else ""
    raise ValidationError(
        f'{where}the field "deleted" is reserved for tombstones (delete() writes them): '
        'rename the field, e.g. "is_deleted"'
    )


def ids_of(requests: list[Request]) -> list[str]:
    """The ids of the requests' records, in order: what plan() needs looked up."""
    return [record["id"] for request in requests for record in request.records]


def plan(requests: list[Request], ids: list[str], currents: dict[str, Current]) -> list[Row]:
    """The rows one collection's requests make current, in the order of their lines.

    ``ids`` are ids_of(requests), and ``currents`` the current version of each of them
    that has one, as the cache holds it (planning completes the records in place: they
    are looked up first, so that a write that finds its lookup stale can look up again
    before anything is planned). An id written twice gives two rows, the later one at a
    version at least as great, so an upsert keeps the later. Raises AlreadyExistsError /
    NotFoundError before anything is decided to be written, so a refused operation leaves
    it all unwritten.
    """
    # Following each id's version through the plan is only needed for an id written
    # twice, and cost more than the rest of a 100,000-record plan.
    repeats = len(set(ids)) < len(ids)
    rows: list[Row] = []
    add_row, current_of = rows.append, currents.get
    end = 0
    for request in requests:
        collection, mode, stamp = request.collection, request.mode, request.stamp
        start, end = end, end + len(request.records)
        rules = request.rules
        stamped = rules is None or rules.stamped
        if (
            request.own_created is not None
            and stamped
            and not currents
            and not repeats
            and mode != "update"
        ):
            # No id of the write holds a version (a first load): every record is new, its
            # line the one it was given with, its version the stamp it was given.
            rows += zip(ids[start:end], request.lines, repeat(stamp), repeat(False))
            request.written = request.records
            continue
        if request.own_created is not None:
            # The hot loop of a 100,000-record batch: a new id keeps the line it was
            # given with, stamped.
            typed = request.typed is not None
            for n, (record, line, own_created) in enumerate(
                zip(request.records, request.lines, request.own_created, strict=True)
            ):
                rid = record["id"]
                row = current_of(rid)
                if typed and row is not None:
                    # Written again from the line checked when it was given: the dict
                    # shares its lists and objects with the caller's record, which may
                    # have changed them since (inside a batch, say).
                    record = request.records[n] = jsonl.loads(line)
                if not stamped:
                    assert rules is not None
                    line = _unstamped(collection, mode, record, own_created, row, stamp, rules)
                    updated = jsonl.version_of(record)
                    add_row((rid, line, updated, False))
                    if repeats:
                        currents[rid] = (line, updated, False)
                    continue
                if row is None or (row[2] and row[1] < stamp):
                    if mode == "update":
                        raise NotFoundError(f"{collection}/{rid} not found: nothing to update")
                    if row is not None:  # written again after a delete: a new life
                        line = jsonl.dumps(with_times(jsonl.loads(row[0]), record)).decode()
                else:
                    line = _restamp(collection, mode, record, own_created, row, stamp, rules)
                updated = record["updated_at"]
                add_row((rid, line, updated, False))
                if repeats:
                    currents[rid] = (line, updated, False)
            request.written = request.records  # all of them: a refusal raises
            continue
        written = request.written.append
        for record in request.records:
            rid = record["id"]
            row = current_of(rid)
            previous = None if row is None else jsonl.loads(row[0])
            current = None if row is None or row[2] else previous
            version = -1 if row is None else row[1]
            if not _next_version(mode, record, current, version, stamp):
                continue
            # A patch's new version carries its field times, a tombstone the life it ends;
            # an import is written as it is.
            if mode == "import":
                written_as = record
            elif mode == "delete":
                written_as = tombstone_after(current, record) if current else record
            else:
                written_as = with_times(previous, record)
            line = jsonl.dumps(written_as).decode()
            deleted = mode == "delete" or (mode == "import" and jsonl.is_tombstone(record))
            updated = jsonl.version_of(record) if mode == "import" else record["updated_at"]
            add_row((rid, line, updated, deleted))
            if repeats:
                currents[rid] = (line, updated, deleted)
            written(record)
    return rows


def _restamp(
    collection: str,
    mode: str,
    record: dict[str, Any],
    own_created: bool,
    row: Current,
    stamp: int,
    rules: Rules | None,
) -> str:
    """The line of a put, create or update of an id that holds a version: created_at from
    that version unless the record gave its own, updated_at after it."""
    previous, _ = _follows(collection, mode, record, own_created, row, stamp, rules)
    # Never at or below the version this one replaces, whatever the clock says.
    record["updated_at"] = _after(row[1], stamp)
    return jsonl.dumps(with_times(previous, record)).decode()


def _unstamped(
    collection: str,
    mode: str,
    record: dict[str, Any],
    own_created: bool,
    row: Current | None,
    stamp: int,
    rules: Rules,
) -> str:
    """The line of a put, create or update of a record its class versions by its own
    fields: without updated_at, unless the store's order would read it as older than the
    version it follows (a line that has an updated_at); then it is stamped, as any other
    write. The fields it changes carry the time of the write in ``_times``, as every
    version after the first does: two branches' writes of one field merge by when they
    were made, not by a version they share."""
    if row is None:
        if mode == "update":
            raise NotFoundError(f"{collection}/{record['id']} not found: nothing to update")
        return jsonl.dumps(record).decode()
    previous, _ = _follows(collection, mode, record, own_created, row, stamp, rules)
    version = jsonl.version_of(record)
    if version < row[1] or (version == row[1] and "updated_at" in previous):
        # A tie with a stamped version (a write held back in debounced mode, say, which
        # may reach the file after this one) must not go to the line that comes later.
        record["updated_at"] = _after(row[1], stamp)
    # After every time the previous line holds, whatever the clock says.
    times = recorded(previous)
    latest = max((t for key, t in times.items() if key != LIFE), default=0) if times else 0
    return jsonl.dumps(with_times(previous, record, _after(latest, stamp))).decode()


def _follows(
    collection: str,
    mode: str,
    record: dict[str, Any],
    own_created: bool,
    row: Current,
    stamp: int,
    rules: Rules | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The previous line and the live record (None after a delete) of an id a put,
    create or update writes again; raises where the mode or the class's rules refuse."""
    previous = jsonl.loads(row[0])
    current = None if row[2] else previous
    rid = record["id"]
    if current is not None and mode == "create":
        raise AlreadyExistsError(
            f"{collection}/{rid} already exists: use update (or `put`) to change it"
        )
    if current is None and mode == "update":
        raise NotFoundError(f"{collection}/{rid} not found: nothing to update")
    if not own_created:
        record["created_at"] = _created_at(current.get("created_at") if current else None, stamp)
    if rules is not None and current is not None:
        rules.follow(rid, current, record)
    return previous, current


def _after(version: int, stamp: int) -> int:
    """The version of a write that follows ``version``: the time of the write, or just
    above ``version`` if the clock is behind it. The greatest 64-bit version (a line from
    far in the future) is followed by itself: the later line wins the tie."""
    return max(stamp, min(version + 1, jsonl.MAX_VERSION))


def _created_at(previous: object, stamp: int) -> int:
    return previous if jsonl.positive_int(previous) else stamp  # type: ignore[return-value]


def _next_version(
    mode: str,
    record: dict[str, Any],
    current: dict[str, Any] | None,
    version: int,
    stamp: int,
) -> bool:
    """Complete ``record`` of a patch, import or delete in place as the version that
    follows ``current``; False if there is nothing to write."""
    if mode == "delete":
        if current is None:
            return False
        rid = record["id"]
        record.clear()
        record.update(jsonl.tombstone(rid, _after(version, stamp)))
        return True
    if mode == "import":
        if jsonl.version_of(record) <= version:
            return False
        if "updated_at" not in record and "created_at" not in record:
            record["updated_at"] = _after(version, stamp)
        return True
    if current is not None:  # patch: the fields given, over the current version
        merged = {**current, **record}
        record.clear()
        record.update(merged)
    if not jsonl.positive_int(record.get("created_at")):
        record["created_at"] = _created_at(current.get("created_at") if current else None, stamp)
    record["updated_at"] = _after(version, stamp)
    return True


def by_collection(requests: list[Request]) -> dict[str, list[Request]]:
    grouped: dict[str, list[Request]] = {}
    for request in requests:
        grouped.setdefault(request.collection, []).append(request)
    return grouped
