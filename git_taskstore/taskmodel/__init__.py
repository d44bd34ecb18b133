"""The task model of agent loops, on top of the generic store: PRDs, task specs,
executions, dependencies and workflows (``models``), the operations that relate them and
keep their markdown bodies (``operations``), and what ``check`` asks of them (``checks``).

The core never imports this package; the CLI and the hooks plug its checks into
``Store.check(checks=taskmodel.CHECKS)``.
"""

from __future__ import annotations

from .checks import CHECKS
from .models import (
    DEPENDENCY_TYPES,
    EXECUTION_STATUSES,
    KINDS,
    MODELS,
    PRD,
    PRD_STATUSES,
    STATUSES,
    TASK_SPEC_STATUSES,
    Dependency,
    DependencyType,
    Execution,
    ExecutionStatus,
    PrdStatus,
    RepoState,
    TaskSpec,
    TaskSpecStatus,
    Workflow,
    model_for_id,
)
from .operations import SLUG_MAX_BYTES, StatusCount, TaskModel, slugify

__all__ = [
    "CHECKS",
    "DEPENDENCY_TYPES",
    "EXECUTION_STATUSES",
    "KINDS",
    "MODELS",
    "PRD",
    "PRD_STATUSES",
    "SLUG_MAX_BYTES",
    "STATUSES",
    "TASK_SPEC_STATUSES",
    "Dependency",
    "DependencyType",
    "Execution",
    "ExecutionStatus",
    "PrdStatus",
    "RepoState",
    "StatusCount",
    "TaskModel",
    "TaskSpec",
    "TaskSpecStatus",
    "Workflow",
    "model_for_id",
    "slugify",
]
