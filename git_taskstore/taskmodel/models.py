"""The task model of agent loops: PRDs, task specs, executions, dependencies, workflows.

A product requirement document (PRD) is split into task specifications; each is run by
executions, which coordinate through dependencies and follow workflows. Each model is a
typed :class:`Record` in its own collection; ``validate()`` checks what one record can
check alone (relations between records are checked by :mod:`git_taskstore.taskmodel.operations`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ValidationError
from ..records import Record


class PrdStatus(enum.StrEnum):
    DRAFT = "draft"
    READY = "ready"
    ACTIVE = "active"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TaskSpecStatus(enum.StrEnum):
    PENDING = "pending"
    BLOCKED = "blocked"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


class ExecutionStatus(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETE = "complete"
    FAILED = "failed"
    STOPPED = "stopped"


class DependencyType(enum.StrEnum):
    NOTIFY = "notify"
    QUERY = "query"
    SHARE = "share"


PRD_STATUSES = tuple(PrdStatus)
TASK_SPEC_STATUSES = tuple(TaskSpecStatus)
EXECUTION_STATUSES = tuple(ExecutionStatus)
DEPENDENCY_TYPES = tuple(DependencyType)


@dataclass
class _Model(Record):
    """The task model's records keep the shape the Rust crate writes: null fields too."""

    write_nulls: ClassVar[bool] = True


def _required(kind: str, field: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{kind} needs a non-blank {field}")


def _count(kind: str, field: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"{kind} {field} must be a whole number >= 0, got {value!r}")


@dataclass
class PRD(_Model):
    """A product requirement document; its body is a markdown file (``file``)."""

    collection_name: ClassVar[str] = "prds"
    indexed_fields: ClassVar[tuple[str, ...]] = ("status",)
    id_prefix: ClassVar[str] = "prd-"

    title: str = ""
    description: str = ""
    status: PrdStatus = PrdStatus.DRAFT
    review_passes: int = 0
    file: str | None = None

    def validate(self) -> None:
        _required("a PRD", "title", self.title)
        _count("PRD", "review_passes", self.review_passes)


@dataclass
class TaskSpec(_Model):
    """One phase of a PRD, to be run by executions; its body is a markdown file."""

    collection_name: ClassVar[str] = "task_specs"
    indexed_fields: ClassVar[tuple[str, ...]] = ("prd_id", "status", "assigned_to")
    id_prefix: ClassVar[str] = "ts-"

    prd_id: str = ""
    phase_name: str = ""
    description: str = ""
    status: TaskSpecStatus = TaskSpecStatus.PENDING
    workflow_name: str | None = None
    assigned_to: str | None = None
    file: str | None = None

    def validate(self) -> None:
        _required("a task spec", "prd_id", self.prd_id)
        _required("a task spec", "phase_name", self.phase_name)


@dataclass
class Execution(_Model):
    """One run of a task spec in a worktree."""

    collection_name: ClassVar[str] = "executions"
    indexed_fields: ClassVar[tuple[str, ...]] = ("ts_id", "status")
    id_prefix: ClassVar[str] = "exec-"

    ts_id: str = ""
    worktree_path: str | None = None
    branch_name: str | None = None
    status: ExecutionStatus = ExecutionStatus.RUNNING
    current_phase: str | None = None
    iteration_count: int = 0
    error_message: str | None = None
    started_at: int = 0
    completed_at: int | None = None

    def validate(self) -> None:
        _required("an execution", "ts_id", self.ts_id)
        _count("execution", "iteration_count", self.iteration_count)


@dataclass
class Dependency(_Model):
    """A message between executions; ``to_exec_id`` None is a broadcast."""

    collection_name: ClassVar[str] = "dependencies"
    indexed_fields: ClassVar[tuple[str, ...]] = ("from_exec_id", "to_exec_id")
    id_prefix: ClassVar[str] = "dep-"

    from_exec_id: str = ""
    to_exec_id: str | None = None
    dependency_type: DependencyType = DependencyType.NOTIFY
    payload: Any = None
    resolved_at: int | None = None

    def validate(self) -> None:
        _required("a dependency", "from_exec_id", self.from_exec_id)


@dataclass
class Workflow(_Model):
    """A named, versioned procedure that task specs follow; names are unique."""

    collection_name: ClassVar[str] = "workflows"
    indexed_fields: ClassVar[tuple[str, ...]] = ("name",)
    id_prefix: ClassVar[str] = "wf-"

    name: str = ""
    version: int = 1
    description: str = ""
    content: str = ""

    def validate(self) -> None:
        _required("a workflow", "name", self.name)
        _count("workflow", "version", self.version)


@dataclass
class RepoState(_Model):
    """What the orchestrator last synced from a repository; the id is the repo path."""

    collection_name: ClassVar[str] = "repo_state"

    repo_path: str = ""
    last_synced_commit: str | None = None

    def __post_init__(self) -> None:
        # the id is
        # the repo path (README), but nothing set it, so create() gave every RepoState a
        # random id and put() of the same repo made a second record instead of updating.
        if not self.id:
            self.id = self.repo_path

    def validate(self) -> None:
        _required("a repo state", "repo_path", self.repo_path)


MODELS: tuple[type[Record], ...] = (PRD, TaskSpec, Execution, Dependency, Workflow, RepoState)
# The names `show KIND ID` accepts.
KINDS: dict[str, type[Record]] = {
    "prd": PRD,
    "ts": TaskSpec,
    "task-spec": TaskSpec,
    "execution": Execution,
    "exec": Execution,
    "dep": Dependency,
    "dependency": Dependency,
    "workflow": Workflow,
    "wf": Workflow,
}
STATUSES: dict[type[Record], tuple[str, ...]] = {
    PRD: PRD_STATUSES,
    TaskSpec: TASK_SPEC_STATUSES,
    Execution: EXECUTION_STATUSES,
}


def model_for_id(record_id: str) -> type[Record] | None:
    """The model whose generated ids carry this id's prefix, if any."""
    for model in MODELS:
        if model.id_prefix and record_id.startswith(model.id_prefix):
            return model
    return None
