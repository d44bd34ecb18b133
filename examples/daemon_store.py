"""An agent-orchestration daemon's state on git-taskstore: loops, signals, events and tool
jobs, migrated from a home-made JSONL store whose rule was "the last line wins".

    python examples/daemon_store.py migrate LEGACY_DIR   # once, in the daemon's repository
    python examples/daemon_store.py work LOOP_ID N        # N iterations of a worker
"""

from __future__ import annotations

import enum
import sys
import time
from dataclasses import dataclass
from typing import ClassVar

from git_taskstore import Computed, Filter, Op, Record, Store, TaskstoreError, first_set, is_set


class Status(enum.StrEnum):
    RUNNING, PAUSED, DONE, FAILED = "running", "paused", "done", "failed"


class LoopType(enum.StrEnum):
    PLAN, BUILD, REVIEW = "plan", "build", "review"


@dataclass
class Loop(Record):
    collection_name: ClassVar[str] = "loops"
    indexed_fields: ClassVar[tuple[str, ...]] = ("status", "parent_id")
    status: Status = Status.RUNNING
    type: LoopType = LoopType.BUILD
    parent_id: str | None = None
    iteration: int = 0


@dataclass
class Signal(Record):  # immutable, but for its acknowledgement
    collection_name: ClassVar[str] = "signals"
    indexed_fields: ClassVar[tuple[str, ...]] = ("loop_id",)
    immutable: ClassVar[bool] = True
    set_once: ClassVar[tuple[str, ...]] = ("acknowledged_at",)
    computed_fields: ClassVar[dict[str, Computed]] = {"acknowledged": is_set("acknowledged_at")}
    loop_id: str = ""
    kind: str = ""
    acknowledged_at: int | None = None


@dataclass
class Event(Record):
    collection_name: ClassVar[str] = "events"
    immutable: ClassVar[bool] = True
    loop_id: str = ""
    message: str = ""


@dataclass
class ToolJob(Record):  # its version: completed_at, else created_at
    collection_name: ClassVar[str] = "tool_jobs"
    versioned_by: ClassVar[tuple[str, ...]] = ("completed_at", "created_at")
    computed_fields: ClassVar[dict[str, Computed]] = {
        "effective_updated_at": first_set("completed_at", "created_at")
    }
    loop_id: str = ""
    tool: str = ""
    completed_at: int | None = None
    result: str | None = None


def unacknowledged(store: Store, loop_id: str) -> list[Signal]:
    return store.list(
        Signal, [Filter("loop_id", Op.EQ, loop_id), Filter("acknowledged", Op.EQ, False)]
    )


def acknowledge(signal: Signal) -> None:
    # Run by modify() on the signal as it is now: another worker may have acknowledged it.
    signal.acknowledged_at = signal.acknowledged_at or time.time_ns() // 1_000_000


def work(store: Store, loop_id: str) -> None:
    """One iteration: acknowledge the loop's signals, log, run a tool, count."""
    for signal in unacknowledged(store, loop_id):
        store.modify(Signal, signal.id, acknowledge)
    store.create(Event(loop_id=loop_id, message="iteration"))
    job = store.create(ToolJob(loop_id=loop_id, tool="pytest"))
    job.completed_at, job.result = job.created_at + 1, "ok"
    store.update(job, expect_version=job.updated_at)
    store.modify(Loop, loop_id, lambda loop: setattr(loop, "iteration", loop.iteration + 1))


def migrate(store: Store, legacy_dir: str) -> None:
    store.install_git_integration()
    # "keep": a second run leaves what the daemon wrote since the first one alone.
    result = store.import_jsonl(legacy_dir, order="last-line-wins", existing="keep")
    for bad in result.bad_lines:
        print(f"skipped {bad.path}:{bad.line}: {bad.message}", file=sys.stderr)
    for cls in (Loop, Signal, Event, ToolJob):
        store.list(cls)  # every record read as its class: a value that does not fit raises
    print(f"{result.written} records imported")


if __name__ == "__main__":
    try:
        with Store.open(".") as store:  # run at the top of the daemon's repository
            if sys.argv[1] == "migrate":
                migrate(store, sys.argv[2])
            else:
                for _ in range(int(sys.argv[3])):
                    work(store, sys.argv[2])
    except TaskstoreError as exc:
        sys.exit(f"error: {exc}")
