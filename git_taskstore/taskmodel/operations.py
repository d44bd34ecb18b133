"""Operations of the task model over a Store: relations between records, markdown bodies.

PRD and task spec bodies live in ``.taskstore/prds/<slug>.md`` and
``.taskstore/task_specs/<slug>.md``, where git diffs and merges them like any text; the
record's ``file`` field holds that path relative to the store folder. Bodies are read
only when asked for, so a body edited on disk is what ``body()`` returns.

Relations are checked under the store's lock, so two processes cannot both create a
workflow with the same name; two clones working offline still can, and ``check``
reports duplicate names after the merge.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import log
from ..errors import AlreadyExistsError, NotFoundError, ValidationError
from ..files import atomic_write
from ..records import Filter, Op, Record
from ..schema import value_for
from ..store import Store
from .bodies import body_file
from .models import (
    MODELS,
    PRD,
    STATUSES,
    Dependency,
    Execution,
    TaskSpec,
    Workflow,
    model_for_id,
)

R = TypeVar("R", bound=Record)

BODY_FOLDERS: dict[type[Record], str] = {PRD: "prds", TaskSpec: "task_specs"}
_NOT_SLUG = re.compile(r"[^\w-]|_", re.UNICODE)
SLUG_MAX_BYTES = 100


def slugify(title: str) -> str:
    """ "Add OAuth Authentication" -> "add-oauth-authentication": lowercased, whitespace to
    hyphens, other characters that are not letters or digits dropped."""
    slug = "-".join(title.lower().split())
    slug = _NOT_SLUG.sub("", slug)
    slug = re.sub(r"-{2,}", "-", slug).strip("-")
    # a long title (a PRD
    # titled with its first sentence) made a file name over the file system's 255 bytes,
    # and create-prd died with a traceback (OSError: File name too long). Cut the slug at
    # SLUG_MAX_BYTES of UTF-8, on a character boundary; -2, -3... still fit after it.
    if len(slug.encode("utf-8")) > SLUG_MAX_BYTES:
        slug = slug.encode("utf-8")[:SLUG_MAX_BYTES].decode("utf-8", "ignore").rstrip("-")
    return slug or "untitled"


@dataclass(frozen=True)
class StatusCount:
    collection: str
    status: str
    count: int


class TaskModel:
    """The task model's operations on one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- finding ------------------------------------------------------------------------

    def find(self, record_id: str) -> Record | None:
        """The record with this id, whatever its type (its prefix says where to look)."""
        guess = model_for_id(record_id)
        order = [guess] if guess else []
        order += [m for m in MODELS if m is not guess]
        for model in order:
            if model is None or not os.path.exists(self.store.file_path(model.collection())):
                continue
            found = self.store.get(model, record_id)
            if found is not None:
                return found
        return None

    def require(self, model: type[R], record_id: str) -> R:
        found = self.store.get(model, record_id)
        if found is None:
            raise NotFoundError(f"no {_kind(model)} {record_id!r}")
        return found

    # --- creating -----------------------------------------------------------------------

    def create_prd(
        self,
        title: str,
        *,
        description: str = "",
        status: str = "draft",
        body: str | None = None,
    ) -> PRD:
        prd = PRD(title=title, description=description, status=value_for(PRD, "status", status))
        prd.check()
        return self._create_with_body(prd, title, body)

    def create_task_spec(
        self,
        prd_id: str,
        phase_name: str,
        *,
        description: str = "",
        status: str = "pending",
        workflow_name: str | None = None,
        assigned_to: str | None = None,
        body: str | None = None,
    ) -> TaskSpec:
        spec = TaskSpec(
            prd_id=prd_id,
            phase_name=phase_name,
            description=description,
            status=value_for(TaskSpec, "status", status),
            workflow_name=workflow_name,
            assigned_to=assigned_to,
        )
        spec.check()
        with self.store.locked():
            self.require(PRD, prd_id)
            if workflow_name is not None:
                self.workflow_by_name(workflow_name, required=True)
            return self._create_with_body(spec, phase_name, body)

    def create_execution(
        self,
        ts_id: str,
        *,
        worktree_path: str | None = None,
        branch_name: str | None = None,
        status: str = "running",
        current_phase: str | None = None,
    ) -> Execution:
        execution = Execution(
            ts_id=ts_id,
            worktree_path=worktree_path,
            branch_name=branch_name,
            status=value_for(Execution, "status", status),
            current_phase=current_phase,
            started_at=time.time_ns() // 1_000_000,
        )
        execution.check()
        with self.store.locked():
            self.require(TaskSpec, ts_id)
            return self.store.create(execution)

    def create_dependency(
        self,
        from_exec_id: str,
        *,
        to_exec_id: str | None = None,
        dependency_type: str = "notify",
        payload: Any = None,
    ) -> Dependency:
        dependency = Dependency(
            from_exec_id=from_exec_id,
            to_exec_id=to_exec_id,
            dependency_type=value_for(Dependency, "dependency_type", dependency_type),
            payload=payload,
        )
        dependency.check()
        with self.store.locked():
            self.require(Execution, from_exec_id)
            if to_exec_id is not None:
                self.require(Execution, to_exec_id)
            return self.store.create(dependency)

    def create_workflow(
        self, name: str, *, version: int = 1, description: str = "", content: str = ""
    ) -> Workflow:
        workflow = Workflow(name=name, version=version, description=description, content=content)
        workflow.validate()
        with self.store.locked():
            if self.workflow_by_name(name) is not None:
                raise AlreadyExistsError(f"a workflow named {name!r} already exists")
            return self.store.create(workflow)

    def workflow_by_name(self, name: str, *, required: bool = False) -> Workflow | None:
        found = self.store.list(Workflow, [Filter("name", Op.EQ, name)], limit=1)
        if not found and required:
            raise NotFoundError(f"no workflow named {name!r}")
        return found[0] if found else None

    # --- changing -----------------------------------------------------------------------

    def set_status(self, record_id: str, status: str) -> Record:
        record = self.find(record_id)
        if record is None:
            raise NotFoundError(f"no record {record_id!r}")
        model = type(record)
        if model not in STATUSES:
            raise ValidationError(f"a {_kind(model)} has no status")
        record.status = value_for(model, "status", status)  # type: ignore[attr-defined]
        if isinstance(record, Execution) and status in ("complete", "failed", "stopped"):
            record.completed_at = record.completed_at or time.time_ns() // 1_000_000
        return self.store.update(record)

    def delete_prd(self, prd_id: str, *, cascade: bool = False) -> list[Record]:
        """Delete a PRD; refused while it has task specs, unless cascade deletes them too.

        Returns the records deleted. Body files go with them (git keeps them).
        """
        with self.store.locked():
            prd = self.require(PRD, prd_id)
            specs = self.store.list(TaskSpec, [Filter("prd_id", Op.EQ, prd_id)])
            if specs and not cascade:
                raise ValidationError(
                    f"PRD {prd_id} still has {len(specs)} task spec(s) "
                    f"({', '.join(s.id for s in specs[:3])}{', ...' if len(specs) > 3 else ''}): "
                    "delete them first, or cascade (--cascade)"
                )
            deleted: list[Record] = [*specs, prd]
            for record in deleted:
                self.store.delete(type(record), record.id)
                self.remove_body(record)
            return deleted

    # --- bodies ---------------------------------------------------------------------------

    def body_path(self, record: Record) -> str | None:
        """The body file's path; None if the record names none; ValidationError if it
        names one outside its folder of the store (see bodies.py)."""
        relative = getattr(record, "file", None)
        if relative is None or relative == "":
            return None
        return body_file(self.store.path, type(record).collection(), record.id, relative)

    def body(self, record: Record) -> str | None:
        """The markdown body as it is on disk now; None if the record has none."""
        path = self.body_path(record)
        if path is None:
            return None
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            raise NotFoundError(
                f"the body of {record.id} ({getattr(record, 'file', '')}) is missing: "
                "restore it from git, or write it again"
            ) from None

    def set_body(self, record: Record, body: str) -> None:
        path = self.body_path(record)
        if path is None:
            raise ValidationError(f"{record.id} has no body file")
        atomic_write(path, body.encode("utf-8"))

    def _create_with_body(self, record: R, title: str, body: str | None) -> R:
        folder = BODY_FOLDERS[type(record)]
        with self.store.locked():
            relative = self._free_body_name(folder, slugify(title), type(record))
            path = os.path.join(self.store.path, relative)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            heading = " ".join(title.split())  # a title with newlines still makes one heading line
            atomic_write(path, (body if body is not None else f"# {heading}\n").encode("utf-8"))
            record.file = relative  # type: ignore[attr-defined]
            try:
                return self.store.create(record)
            except BaseException:
                os.unlink(path)  # the record was refused: leave no orphan body behind
                raise

    def _free_body_name(self, folder: str, slug: str, model: type[Record]) -> str:
        """``folder/slug.md``, or slug-2, slug-3... when taken (by a file or a record)."""
        n = 1
        while True:
            name = f"{folder}/{slug}.md" if n == 1 else f"{folder}/{slug}-{n}.md"
            # only files were looked at, so a record whose body file was
            # missing lost its name to the next record with the same title, and restoring
            # the first body from git then overwrote the second's.
            taken = os.path.exists(os.path.join(self.store.path, name)) or self.store.count(
                model, [Filter("file", Op.EQ, name)]
            )
            if not taken:
                return name
            n += 1

    def remove_body(self, record: Record) -> None:
        """Delete the body file of a deleted record; one named outside its folder is left
        alone, with a warning (the record goes all the same)."""
        try:
            path = self.body_path(record)
        except ValidationError as exc:
            log.warning("%s; left in place", exc)
            return
        if path is not None and os.path.exists(path):
            os.unlink(path)

    # --- counting -------------------------------------------------------------------------

    def status_counts(self) -> list[StatusCount]:
        """Live records per collection and status (collections without status: "-")."""
        out: list[StatusCount] = []
        for name in self.store.collections():
            counts = self.store.collection(name).count_by("status")
            # Records without a status ("-") come last, after the real statuses.
            for status, n in sorted(
                counts.items(), key=lambda item: (item[0] is None, str(item[0]))
            ):
                out.append(StatusCount(name, "-" if status is None else str(status), n))
        return out


def _kind(model: type[Record]) -> str:
    return {
        PRD: "PRD",
        TaskSpec: "task spec",
        Execution: "execution",
        Dependency: "dependency",
        Workflow: "workflow",
    }.get(model, model.__name__)
