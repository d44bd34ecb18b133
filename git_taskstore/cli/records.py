"""Record commands: put, get, delete, list."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from .common import (
    WINDOW,
    creates_store,
    default_columns,
    emit_json,
    format_value,
    json_option,
    open_store,
    parse_where,
    print_table,
    store_option,
)

if TYPE_CHECKING:
    from ..store import Store


def _parse_records(text: str, source: str) -> list[dict[str, Any]]:
    """JSON lines (or one JSON document) into records; the first bad line is an error."""
    from ..errors import ValidationError
    from ..jsonl import loads

    # One JSON object spread over several lines (jq's default output, "$(cat rec.json)")
    # is one record: it used to be read line by line and refused as invalid JSON.
    if "\n" in text.strip():
        try:
            whole = loads(text)
        except ValueError:
            pass
        else:
            if isinstance(whole, dict):
                return [whole]
    lines = text.splitlines()
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        # Name the line wherever there are lines to count (stdin, a file of JSON lines for
        # `import --collection`); it used to be named for stdin only.
        where = source if source == "argument" and len(lines) == 1 else f"{source}:{number}"
        try:
            value = loads(line)
        except ValueError as exc:
            raise ValidationError(f"{where}: not valid JSON ({str(exc).split(':')[0]})") from None
        if not isinstance(value, dict):
            # JSON's names for the types, not Python's ("got str" became "got a string").
            kind = {list: "an array", str: "a string", bool: "a boolean"}.get(
                type(value), "null" if value is None else "a number"
            )
            raise ValidationError(f"{where}: a record must be a JSON object, got {kind}")
        records.append(value)
    return records


@click.command()
@click.argument("collection")
@click.argument("record", required=False, metavar="[JSON]")
@click.option(
    "--merge", is_flag=True, help="Update only the fields given; keep the record's other fields."
)
@store_option
@json_option
def put(
    collection: str, record: str | None, merge: bool, store_dir: str | None, as_json: bool
) -> int:
    """Create or replace records in COLLECTION.

    The record is the JSON argument, or JSON lines on stdin (one record per line). Every
    record needs an "id". created_at is kept from the stored version; updated_at is set
    to now, and always above the version it replaces. All records are checked before the
    first is written: one bad record writes nothing.

    \b
    git taskstore put tasks '{"id": "t-1", "title": "Add OAuth", "status": "open"}'
    git taskstore put tasks --merge '{"id": "t-1", "status": "done"}'
    cat tasks.jsonl | git taskstore put tasks
    """
    from ..errors import ValidationError
    from ..names import validate_collection

    validate_collection(collection)
    if record is not None:
        records = _parse_records(record, "argument")
    elif sys.stdin is None or sys.stdin.isatty():
        # No JSON argument and nothing piped in: a missing argument, so a usage error
        # (exit 2) like any other missing argument; it used to exit 1.
        raise click.UsageError(
            "nothing to put: give a JSON record as an argument, or JSON lines on stdin"
        )
    else:
        records = _parse_records(sys.stdin.read(), "stdin")
    if not records:
        raise ValidationError("nothing to put: the input holds no records")
    with open_store(store_dir, create=creates_store(store_dir)) as store:
        _check_model(store, collection, records, merge)
        written = store.collection(collection).put_many(records, merge=merge)
    if as_json:
        # An argument may hold several JSON lines: print them all (an array), not only the
        # first; one record from the argument stays an object.
        emit_json(written[0] if record is not None and len(written) == 1 else written)
    else:
        for item in written:
            click.echo(f"put {collection}/{item['id']}")
    return 0


def _check_model(store: Store, collection: str, records: list[dict[str, Any]], merge: bool) -> None:
    """A record put into a task-model collection (prds, task_specs, ...) passes that
    model's validation, as one written through create-prd does; with --merge, the record
    as it will be. Nothing is written if one fails."""
    from ..taskmodel import MODELS

    model = next((m for m in MODELS if m.collection() == collection), None)
    if model is None:
        return
    coll = store.collection(collection)
    for record in records:
        whole = {**(coll.get(str(record.get("id"))) or {}), **record} if merge else record
        model.from_dict(whole).check()


@click.command()
@click.argument("collection")
@click.argument("record_id", metavar="ID")
@store_option
@json_option
def get(collection: str, record_id: str, store_dir: str | None, as_json: bool) -> int:
    """Show one record of COLLECTION (exit 1 if there is none)."""
    from ..errors import NotFoundError

    with open_store(store_dir) as store:
        record = store.collection(collection).get(record_id)
    if record is None:
        raise NotFoundError(f"{collection}/{record_id} not found")
    if as_json:
        emit_json(record)
    else:
        width = max(len(k) for k in record)
        for key, value in record.items():
            click.echo(f"{key.ljust(width)}  {format_value(key, value, width=10_000)}")
    return 0


@click.command()
@click.argument("collection")
@click.argument("record_id", metavar="ID")
@click.option(
    "--cascade", is_flag=True, help="For a PRD: delete its task specs too (else refused)."
)
@store_option
@json_option
def delete(
    collection: str, record_id: str, cascade: bool, store_dir: str | None, as_json: bool
) -> int:
    """Delete a record: append a tombstone (the history stays in git).

    A PRD that still has task specs is refused unless --cascade; a PRD's or task spec's
    markdown body file goes with it.
    """
    from ..errors import NotFoundError

    with open_store(store_dir) as store:
        deleted = _delete(store, collection, record_id, cascade)
    if not deleted:
        raise NotFoundError(f"{collection}/{record_id} not found: nothing to delete")
    if as_json:
        emit_json({"collection": collection, "id": record_id, "deleted": True, "records": deleted})
    else:
        for name in deleted:
            click.echo(f"deleted {name}")
    return 0


def _delete(store: Store, collection: str, record_id: str, cascade: bool) -> list[str]:
    """Delete through the task model where it has rules (PRDs, bodies); "collection/id"s."""
    if collection not in ("prds", "task_specs"):
        gone = store.collection(collection).delete(record_id)
        return [f"{collection}/{record_id}"] if gone else []
    from ..taskmodel import PRD, TaskModel, TaskSpec

    model = TaskModel(store)
    if collection == "prds" and store.get(PRD, record_id) is not None:
        return [f"{r.collection()}/{r.id}" for r in model.delete_prd(record_id, cascade=cascade)]
    spec = store.get(TaskSpec, record_id) if collection == "task_specs" else None
    if not store.collection(collection).delete(record_id):
        return []
    if spec is not None:
        model.remove_body(spec)
    return [f"{collection}/{record_id}"]


@click.command("list")
@click.argument("collection")
@click.option(
    "--where",
    "-w",
    "where",
    multiple=True,
    metavar="EXPR",
    help="FIELD OP VALUE with = != > >= < <= ~ (contains, case-insensitive); repeat to AND. "
    'Values are JSON when they parse (3, true, null, "3"), else text; field=["a","b"] is IN.',
)
@click.option("--sort", metavar="FIELD", help="Sort by FIELD; -FIELD sorts descending.")
@click.option("--limit", type=WINDOW, help="At most N records.")
@click.option("--offset", type=WINDOW, default=0, help="Skip the first N records.")
@click.option("--fields", metavar="A,B,..", help="Columns to show (default: a few short fields).")
@click.option("--count", "count_only", is_flag=True, help="Print only the number of matches.")
@store_option
@json_option
def list_(
    collection: str,
    where: tuple[str, ...],
    sort: str | None,
    limit: int | None,
    offset: int,
    fields: str | None,
    count_only: bool,
    store_dir: str | None,
    as_json: bool,
) -> int:
    """List the live records of COLLECTION, in creation order unless sorted.

    \b
    git taskstore list tasks --where status=open --where 'priority>=2' --sort -priority
    git taskstore list tasks --where title~oauth --json
    """
    from ..names import validate_collection, validate_field
    from ..records import Op

    validate_collection(collection)
    filters = parse_where(where)
    if sort:
        # A bad --sort is a usage error (exit 2), like a bad --where; it used to escape as
        # a ValidationError and exit 1.
        try:
            validate_field(sort.removeprefix("-"))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--sort") from None
    with open_store(store_dir) as store:
        coll = store.collection(collection)
        # Equality filters are what lists are filtered by again and again: index those
        # fields once (kept in the cache) so the next query is a lookup, not a scan.
        wanted = {f.field for f in filters if f.op in (Op.EQ, Op.IN)}
        if wanted:
            coll.ensure_index(*sorted(wanted))
        if count_only:
            n = coll.count(filters)
            emit_json(n) if as_json else click.echo(str(n))
            return 0
        rows = coll.list(filters, sort=sort, limit=limit, offset=offset)
        missing = not rows and not _exists(store, collection)
    if missing:
        from ..errors import NotFoundError

        known = ", ".join(store.collections()) or "none yet"
        raise NotFoundError(f"no collection {collection!r} (collections: {known})")
    columns = [c.strip() for c in fields.split(",") if c.strip()] if fields else None
    if as_json:
        emit_json(rows if columns is None else [{c: r.get(c) for c in columns} for r in rows])
        return 0
    if not rows:
        click.echo(f"no records in {collection}" + (" match" if filters else ""), err=True)
        return 0
    print_table(rows, columns or default_columns(rows))
    return 0


def _exists(store: Store, collection: str) -> bool:
    """A collection exists once it has a file, or debounced writes waiting for one."""
    return os.path.exists(store.file_path(collection)) or collection in store.pending()
