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
from dataclasses import dataclass
from typing import Any

from . import jsonl
from .errors import AlreadyExistsError, NotFoundError
from .jsonl import Winner

MODES = ("put", "patch", "create", "update", "import", "delete")


@dataclass(slots=True)
class Op:
    """One requested write. ``record`` is the caller's (validated, copied) dict; planning
    completes it in place, so what the caller holds shows what was written."""

    collection: str
    record: dict[str, Any]
    mode: str
    written: bool = False
    typed: Any = None  # the typed Record this op writes, if any: gets the timestamps


# (data of the current version, its version, deleted) as the cache holds it.
Current = tuple[str, int, bool]


def plan(
    collection: str,
    ops: list[Op],
    currents: dict[str, Current],
    stamp: int,
) -> tuple[list[bytes], dict[str, Winner]]:
    """The lines to append for one collection's operations, and the versions they make.

    Raises AlreadyExistsError / NotFoundError before anything is decided to be written, so
    a refused operation leaves the whole write unwritten.
    """
    versions: dict[str, tuple[dict[str, Any] | None, int]] = {}
    lines: list[bytes] = []
    winners: dict[str, Winner] = {}
    # Hot loop (100,000 ops in a batch): names bound locally, and the version of a new
    # line read from what _next_version set rather than worked out again (version_of),
    # except for imports, which keep the record's own timestamps.
    dumps, loads, version_of = jsonl.dumps, jsonl.loads, jsonl.version_of
    add_line = lines.append
    for op in ops:
        rid = op.record["id"]
        if rid in versions:
            current, version = versions[rid]
        else:
            row = currents.get(rid)
            if row is None:
                current, version = None, -1
            else:
                current = None if row[2] else loads(row[0])
                version = row[1]
        record = _next_version(collection, op, current, version, stamp)
        if record is None:
            continue
        # a right-sized copy. orjson >= 3.12 returns bytes whose buffer keeps ~4 KiB
        # whatever the line's length: held until the batch ends, 100,000 lines took
        # 400 MB instead of 30 (plus ~2% of the time of a batch).
        raw = bytes(memoryview(dumps(record)))
        add_line(raw)
        mode = op.mode
        deleted = mode == "delete"
        new_version = version_of(record) if mode == "import" else record["updated_at"]
        versions[rid] = (None if deleted else record, new_version)
        winners[rid] = Winner(new_version, 0, raw, deleted)
        op.written = True
        if op.typed is not None:
            op.typed.created_at = record["created_at"]
            op.typed.updated_at = record["updated_at"]
    return lines, winners


def _next_version(
    collection: str, op: Op, current: dict[str, Any] | None, version: int, stamp: int
) -> dict[str, Any] | None:
    record, mode = op.record, op.mode
    if mode == "put" and current is None:
        # The common case of a batch (a new record), first: the general path below would
        # end the same way, after four more tests.
        created = record.get("created_at")
        if not isinstance(created, int) or isinstance(created, bool) or created <= 0:
            record["created_at"] = stamp
        record["updated_at"] = max(stamp, version + 1)
        return record
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
        previous = current.get("created_at") if current else None
        record["created_at"] = previous if isinstance(previous, int) and previous > 0 else stamp
    # Never at or below the version this one replaces, whatever the clock says.
    record["updated_at"] = max(stamp, version + 1)
    return record


def by_collection(ops: list[Op]) -> dict[str, list[Op]]:
    grouped: dict[str, list[Op]] = {}
    for op in ops:
        grouped.setdefault(op.collection, []).append(op)
    return grouped


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
