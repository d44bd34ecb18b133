"""Planning writes: from requested operations to the lines that will be appended.

A write is a list of operations. Planning one collection's operations reads the current
versions once (in chunks), applies the rules of each mode, and gives every new version an
``updated_at`` above the version it replaces. The same plan feeds an immediate append, a
batch, or the pending table of debounced mode.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import jsonl
from .errors import AlreadyExistsError, NotFoundError

if TYPE_CHECKING:
    from .records import Record

MODES = ("put", "patch", "create", "update", "import", "delete")


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
    records: list[dict[str, Any]]
    lines: list[str]
    typed: list[Record] | None = None
    written: list[dict[str, Any]] = field(default_factory=list)

    def stamp_typed(self) -> None:
        for typed, record in zip(self.typed or (), self.records, strict=False):
            typed.created_at = record["created_at"]
            typed.updated_at = record["updated_at"]


# (data of the current version, its version, deleted) as the cache holds it.
Current = tuple[str, int, bool]
# (id, line, version, deleted): a row of a collection's table in the cache.
Row = tuple[str, str, int, bool]


def plan(requests: list[Request], currents: dict[str, Current], stamp: int) -> list[Row]:
    """The rows one collection's requests make current, in the order of their lines.

    ``currents`` holds the current version of each id (as the cache has it) and follows
    the plan: an id written twice gives two rows, the later one at a version at least as
    great, so an upsert keeps the later. Raises AlreadyExistsError / NotFoundError before
    anything is decided to be written, so a refused operation leaves it all unwritten.
    """
    rows: list[Row] = []
    # The hot loop of a 100,000-record batch: names bound locally, and put, create and
    # update of records without timestamps (the common case) handled inline, their line
    # made from the one serialised on validation.
    loads, dumps, current_of = jsonl.loads, jsonl.dumps, currents.get
    add_row = rows.append
    fresh_suffix = f',"created_at":{stamp},"updated_at":{stamp}}}'
    for request in requests:
        collection, mode = request.collection, request.mode
        stamping = mode in ("put", "create", "update")
        written = request.written.append
        for record, line in zip(request.records, request.lines, strict=True):
            rid = record["id"]
            row = current_of(rid)
            if stamping and "created_at" not in record and "updated_at" not in record:
                if row is None or row[2]:
                    if mode == "update":
                        raise NotFoundError(f"{collection}/{rid} not found: nothing to update")
                    created = stamp
                else:
                    if mode == "create":
                        raise AlreadyExistsError(
                            f"{collection}/{rid} already exists: use update (or `put`) to change it"
                        )
                    created = _created_at(loads(row[0]).get("created_at"), stamp)
                updated = stamp if row is None or stamp > row[1] else row[1] + 1
                record["created_at"] = created
                record["updated_at"] = updated
                # Both keys were absent, so they go last, in this order: the line is the
                # one serialised on validation with them added (what dumps would give).
                if created == updated == stamp:
                    line = line[:-1] + fresh_suffix
                else:
                    line = f'{line[:-1]},"created_at":{created},"updated_at":{updated}}}'
                deleted = False
            else:
                current = None if row is None or row[2] else loads(row[0])
                version = -1 if row is None else row[1]
                if _next_version(collection, mode, record, current, version, stamp) is None:
                    continue
                line = dumps(record).decode()
                deleted = mode == "delete"
                updated = jsonl.version_of(record) if mode == "import" else record["updated_at"]
            add_row((rid, line, updated, deleted))
            currents[rid] = (line, updated, deleted)
            written(record)
    return rows


def _created_at(previous: object, stamp: int) -> int:
    if isinstance(previous, int) and not isinstance(previous, bool) and previous > 0:
        return previous
    return stamp


def _next_version(
    collection: str,
    mode: str,
    record: dict[str, Any],
    current: dict[str, Any] | None,
    version: int,
    stamp: int,
) -> dict[str, Any] | None:
    """Complete ``record`` in place as the version that follows ``current``; None if
    there is nothing to write."""
    rid = record["id"]
    if mode == "delete":
        if current is None:
            return None
        record.clear()
        record.update(jsonl.tombstone(rid, max(stamp, version + 1)))
        return record
    if mode == "create" and current is not None:
        raise AlreadyExistsError(
            f"{collection}/{rid} already exists: use update (or `put`) to change it"
        )
    if mode == "update" and current is None:
        raise NotFoundError(f"{collection}/{rid} not found: nothing to update")
    if mode == "import":
        if jsonl.version_of(record) <= version:
            return None
        if "updated_at" not in record and "created_at" not in record:
            record["updated_at"] = max(stamp, version + 1)
        return record
    if mode == "patch" and current is not None:
        merged = {**current, **record}
        record.clear()
        record.update(merged)
    created = record.get("created_at")
    if not isinstance(created, int) or isinstance(created, bool) or created <= 0:
        record["created_at"] = _created_at(current.get("created_at") if current else None, stamp)
    # Never at or below the version this one replaces, whatever the clock says.
    record["updated_at"] = max(stamp, version + 1)
    return record


def by_collection(requests: list[Request]) -> dict[str, list[Request]]:
    grouped: dict[str, list[Request]] = {}
    for request in requests:
        grouped.setdefault(request.collection, []).append(request)
    return grouped


def request_ids(requests: list[Request]) -> list[str]:
    return [record["id"] for request in requests for record in request.records]


class Flusher:
    """Calls ``flush`` once ``delay`` seconds have passed without a new ``poke()``.

    One daemon thread for the store's life, woken by a condition: a debounced write only
    moves a deadline, so a burst of 10,000 writes starts no thread and no timer.
    """

    def __init__(self, delay: float, flush: Callable[[], object]) -> None:
        self.delay = delay
        self._flush = flush
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        with self._cond:
            self._deadline = time.monotonic() + self.delay
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="taskstore-flush", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._deadline = None
            self._cond.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        import logging

        with self._cond:
            while not self._stopped:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                delay = self._deadline - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                self._deadline = None
                self._cond.release()
                try:
                    self._flush()
                except Exception as exc:  # pending writes stay durable in the cache
                    logging.getLogger("git_taskstore").warning(
                        "pending writes not exported yet (%s); they stay in the cache", exc
                    )
                finally:
                    self._cond.acquire()
