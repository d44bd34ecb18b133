"""Task-model commands: create-*, set-status, list-*, show, describe."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

import click

from .common import (
    WINDOW,
    creates_store,
    emit_json,
    format_value,
    json_option,
    open_store,
    print_table,
    read_text,
    store_option,
)

if TYPE_CHECKING:
    from ..records import Record
    from ..taskmodel import TaskModel


def _model(store_dir: str | None, *, create: bool = False) -> TaskModel:
    from ..taskmodel import TaskModel

    return TaskModel(open_store(store_dir, create=create))


def _emit_created(record: Record, as_json: bool) -> int:
    if as_json:
        emit_json(record.to_dict())
    else:
        click.echo(record.id)
    return 0


def _show_record(record: Record, as_json: bool) -> None:
    data = record.to_dict()
    if as_json:
        emit_json({"type": type(record).__name__, **data})
        return
    width = max(len(k) for k in data)
    click.echo(f"{'type'.ljust(width)}  {type(record).__name__}")
    for key, value in data.items():
        click.echo(f"{key.ljust(width)}  {format_value(key, value, width=10_000)}")


def _table(rows: Sequence[Record], columns: Sequence[tuple[str, str]], as_json: bool) -> None:
    """columns: (field, header)."""
    if as_json:
        emit_json([r.to_dict() for r in rows])
        return
    if not rows:
        click.echo("nothing to list", err=True)
        return
    dicts: list[dict[str, Any]] = []
    for record in rows:
        data = record.to_dict()
        dicts.append({header: data.get(field) for field, header in columns})
    print_table(dicts, [header for _, header in columns])


body_option = click.option(
    "--body-file",
    type=click.File("rb"),
    metavar="FILE|-",
    help="The markdown body (- reads stdin); default: a heading with the title.",
)


@click.command("create-prd")
@click.argument("title")
@click.option("--description", default="", help="A one-line summary.")
@click.option(
    "--status",
    default="draft",
    show_default=True,
    help="draft, ready, active, in_progress, complete, failed or cancelled.",
)
@body_option
@store_option
@json_option
def create_prd(
    title: str,
    description: str,
    status: str,
    body_file: IO[bytes] | None,
    store_dir: str | None,
    as_json: bool,
) -> int:
    """Create a PRD titled TITLE, with its body in .taskstore/prds/<slug>.md; print its id."""
    from ..schema import value_for
    from ..taskmodel import PRD

    # A bad status or blank title was refused only after the store had been created, so a
    # failed create-prd before `init` left a .taskstore folder behind.
    PRD(title=title, description=description, status=value_for(PRD, "status", status)).check()
    body = read_text(body_file) if body_file is not None else None
    model = _model(store_dir, create=creates_store(store_dir))
    with model.store:
        prd = model.create_prd(title, description=description, status=status, body=body)
    return _emit_created(prd, as_json)


@click.command("create-task-spec")
@click.argument("prd_id")
@click.argument("phase")
@click.option("--description", default="", help="A one-line summary.")
@click.option(
    "--status",
    default="pending",
    show_default=True,
    help="pending, blocked, running, complete or failed.",
)
@click.option("--workflow", "workflow_name", metavar="NAME", help="The workflow it follows.")
@click.option("--assign", "assigned_to", metavar="WHO", help="Who (or which agent) runs it.")
@body_option
@store_option
@json_option
def create_task_spec(
    prd_id: str,
    phase: str,
    description: str,
    status: str,
    workflow_name: str | None,
    assigned_to: str | None,
    body_file: IO[bytes] | None,
    store_dir: str | None,
    as_json: bool,
) -> int:
    """Create a task spec for phase PHASE of PRD_ID (body in .taskstore/task_specs/); print
    its id. The PRD (and the workflow, if named) must exist."""
    body = read_text(body_file) if body_file is not None else None
    model = _model(store_dir)
    with model.store:
        spec = model.create_task_spec(
            prd_id,
            phase,
            description=description,
            status=status,
            workflow_name=workflow_name,
            assigned_to=assigned_to,
            body=body,
        )
    return _emit_created(spec, as_json)


@click.command("create-execution")
@click.argument("ts_id")
@click.option("--worktree", "worktree_path", metavar="PATH", help="Where it runs.")
@click.option("--branch", "branch_name", metavar="BRANCH", help="The branch it works on.")
@click.option("--phase", "current_phase", metavar="PHASE", help="Its current phase.")
@store_option
@json_option
def create_execution(
    ts_id: str,
    worktree_path: str | None,
    branch_name: str | None,
    current_phase: str | None,
    store_dir: str | None,
    as_json: bool,
) -> int:
    """Start an execution of task spec TS_ID (status running); print its id."""
    model = _model(store_dir)
    with model.store:
        execution = model.create_execution(
            ts_id,
            worktree_path=worktree_path,
            branch_name=branch_name,
            current_phase=current_phase,
        )
    return _emit_created(execution, as_json)


@click.command("create-workflow")
@click.argument("name")
@click.option(
    "--version",
    "version",
    type=WINDOW,
    default=1,
    show_default=True,
    help="Its version number.",
)
@click.option("--description", default="", help="A one-line summary.")
@click.option(
    "--content-file",
    type=click.File("rb"),
    metavar="FILE|-",
    help="Its content (- reads stdin).",
)
@store_option
@json_option
def create_workflow(
    name: str,
    version: int,
    description: str,
    content_file: IO[bytes] | None,
    store_dir: str | None,
    as_json: bool,
) -> int:
    """Create a workflow named NAME (names are unique); print its id."""
    from ..taskmodel import Workflow

    # validate before the store is created.
    Workflow(name=name, version=version, description=description).check()
    content = read_text(content_file) if content_file is not None else ""
    model = _model(store_dir, create=creates_store(store_dir))
    with model.store:
        workflow = model.create_workflow(
            name, version=version, description=description, content=content
        )
    return _emit_created(workflow, as_json)


@click.command("create-dependency")
@click.argument("from_exec_id")
@click.option(
    "--to",
    "to_exec_id",
    metavar="EXEC_ID",
    help="The execution it is for (default: a broadcast to all).",
)
@click.option(
    "--type", "dependency_type", default="notify", show_default=True, help="notify, query or share."
)
@click.option("--payload", metavar="JSON", help="Any JSON value it carries.")
@store_option
@json_option
def create_dependency(
    from_exec_id: str,
    to_exec_id: str | None,
    dependency_type: str,
    payload: str | None,
    store_dir: str | None,
    as_json: bool,
) -> int:
    """Record a dependency from execution FROM_EXEC_ID; print its id."""
    from ..errors import ValidationError
    from ..jsonl import loads

    value: Any = None
    if payload is not None:
        try:
            value = loads(payload)
        except ValueError:
            raise ValidationError(f"--payload is not valid JSON: {payload[:40]!r}") from None
    model = _model(store_dir)
    with model.store:
        dependency = model.create_dependency(
            from_exec_id, to_exec_id=to_exec_id, dependency_type=dependency_type, payload=value
        )
    return _emit_created(dependency, as_json)


@click.command("set-status")
@click.argument("record_id", metavar="ID")
@click.argument("status")
@store_option
@json_option
def set_status(record_id: str, status: str, store_dir: str | None, as_json: bool) -> int:
    """Set the status of a PRD, task spec or execution (its type is found from ID)."""
    model = _model(store_dir)
    with model.store:
        record = model.set_status(record_id, status)
    if as_json:
        emit_json(record.to_dict())
    else:
        click.echo(f"{record.id}: {status}")
    return 0


@click.command("list-prds")
@click.option("--status", help="Only PRDs with this status.")
@click.option("--limit", type=WINDOW, help="At most N.")
@store_option
@json_option
def list_prds(status: str | None, limit: int | None, store_dir: str | None, as_json: bool) -> int:
    """List PRDs, oldest first."""
    from ..records import Filter, Op
    from ..taskmodel import PRD

    filters = [Filter("status", Op.EQ, status)] if status else []
    with open_store(store_dir) as store:
        rows = store.list(PRD, filters, limit=limit)
    _table(
        rows,
        [
            ("id", "id"),
            ("status", "status"),
            ("title", "title"),
            ("review_passes", "reviews"),
            ("updated_at", "updated_at"),
        ],
        as_json,
    )
    return 0


@click.command("list-task-specs")
@click.argument("prd_id", required=False)
@click.option("--status", help="Only task specs with this status.")
@click.option("--limit", type=WINDOW, help="At most N.")
@store_option
@json_option
def list_task_specs(
    prd_id: str | None,
    status: str | None,
    limit: int | None,
    store_dir: str | None,
    as_json: bool,
) -> int:
    """List task specs (of PRD_ID, if given), oldest first."""
    from ..records import Filter, Op
    from ..taskmodel import TaskSpec

    filters = [Filter("prd_id", Op.EQ, prd_id)] if prd_id else []
    filters += [Filter("status", Op.EQ, status)] if status else []
    with open_store(store_dir) as store:
        rows = store.list(TaskSpec, filters, limit=limit)
    _table(
        rows,
        [
            ("id", "id"),
            ("prd_id", "prd"),
            ("phase_name", "phase"),
            ("status", "status"),
            ("assigned_to", "assigned"),
            ("updated_at", "updated_at"),
        ],
        as_json,
    )
    return 0


@click.command("list-executions")
@click.option("--status", help="Only executions with this status.")
@click.option("--limit", type=WINDOW, help="At most N, newest first.")
@store_option
@json_option
def list_executions(
    status: str | None, limit: int | None, store_dir: str | None, as_json: bool
) -> int:
    """List executions, most recently started first."""
    from ..records import Filter, Op
    from ..taskmodel import Execution

    filters = [Filter("status", Op.EQ, status)] if status else []
    with open_store(store_dir) as store:
        rows = store.list(Execution, filters, sort="-started_at", limit=limit)
    _table(
        rows,
        [
            ("id", "id"),
            ("ts_id", "task spec"),
            ("status", "status"),
            ("current_phase", "phase"),
            ("iteration_count", "iterations"),
            ("started_at", "started_at"),
            ("updated_at", "updated_at"),
        ],
        as_json,
    )
    return 0


@click.command()
@click.argument("args", nargs=-1, required=True, metavar="[KIND] ID")
@store_option
@json_option
def show(args: tuple[str, ...], store_dir: str | None, as_json: bool) -> int:
    """Show one record of the task model: `show ID` finds its type;
    `show prd|ts|execution|dep|workflow ID` names it."""
    from ..errors import NotFoundError
    from ..taskmodel import KINDS

    if len(args) > 2:
        raise click.UsageError("give an ID, or a KIND and an ID")
    if len(args) == 1 and args[0] in KINDS:
        raise click.UsageError(f"give the ID of the {args[0]} to show: show {args[0]} ID")
    model = _model(store_dir)
    with model.store:
        if len(args) == 2:
            kind, record_id = args
            if kind not in KINDS:
                raise click.BadParameter(
                    f"{kind!r} is not one of {', '.join(sorted(KINDS))}", param_hint="KIND"
                )
            record: Record | None = model.store.get(KINDS[kind], record_id)
        else:
            record_id = args[0]
            record = model.find(record_id)
    if record is None:
        raise NotFoundError(f"no record {record_id!r}")
    _show_record(record, as_json)
    return 0


@click.command()
@click.argument("record_id", metavar="ID")
@store_option
@json_option
def describe(record_id: str, store_dir: str | None, as_json: bool) -> int:
    """Print the markdown body of a PRD or task spec, as it is on disk now."""
    from ..errors import NotFoundError, ValidationError

    model = _model(store_dir)
    with model.store:
        record = model.find(record_id)
        if record is None:
            raise NotFoundError(f"no record {record_id!r}")
        body = model.body(record)
    if body is None:
        raise ValidationError(f"{record_id} has no markdown body")
    if as_json:
        emit_json({"id": record.id, "file": getattr(record, "file", None), "body": body})
    else:
        click.echo(body, nl=not body.endswith("\n"))
    return 0
