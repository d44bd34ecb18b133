"""Moving data in and out: backup, export-json, import."""

from __future__ import annotations

import os
import sys
from typing import IO, Any

import click

from ..legacy import EXISTING
from .common import creates_store, emit_json, json_option, open_store, source_name, store_option


@click.command()
@click.argument("dest", type=click.Path(file_okay=True, dir_okay=True))
@store_option
@json_option
def backup(dest: str, store_dir: str | None, as_json: bool) -> int:
    """Copy the store's files (not the cache) into the new folder DEST.

    DEST opens as a store of its own: `git taskstore list --store DEST ...`.
    """
    from ..paths import display_path

    with open_store(store_dir) as store:
        copied = store.backup(dest)
    if as_json:
        emit_json({"dest": os.path.abspath(dest), "files": copied})
    else:
        click.echo(f"backed up {len(copied)} file(s) to {display_path(os.path.abspath(dest))}")
    return 0


@click.command("export-json")
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@store_option
def export_json(output: str | None, store_dir: str | None) -> int:
    """Print every live record as one JSON object: {"collection": [records...], ...}.

    `git taskstore import` reads it back.
    """
    import orjson

    from ..errors import StorePathError
    from ..files import atomic_write
    from ..paths import display_path, is_inside

    with open_store(store_dir) as store:
        if output and output != "-" and is_inside(output, store.path):
            raise StorePathError(
                f"{display_path(output)} is inside the store {display_path(store.path)}: "
                "the export would overwrite the store's own files; write it outside"
            )
        data = store.export_data()
    text = orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"
    if output and output != "-":
        atomic_write(output, text)
        total = sum(len(v) for v in data.values())
        click.echo(
            f"exported {total} record(s) from {len(data)} collection(s) to {output}", err=True
        )
    else:
        sys.stdout.buffer.write(text)
        sys.stdout.flush()
    return 0


@click.command("import")
@click.argument("file", metavar="FILE")
@click.option(
    "--collection",
    metavar="NAME",
    help="Read FILE as records of NAME: a JSON array or JSON lines (with --last-line-wins, "
    "JSON lines; the default there is FILE's name without .jsonl).",
)
@click.option(
    "--last-line-wins",
    is_flag=True,
    help="FILE (a JSONL file, or a folder of <collection>.jsonl files) comes from a store "
    "whose rule was: per id, the last line is current (a tombstone last: deleted). Each "
    "id's last line is imported byte for byte; bad lines are listed and skipped.",
)
@click.option(
    "--existing",
    type=click.Choice(EXISTING),
    help="With --last-line-wins, an id the store holds in another version: refuse (the "
    "default: nothing is written), keep the store's, or replace it with the file's (a new "
    "version, as put or delete writes it).",
)
@store_option
@json_option
@click.pass_context
def import_(
    ctx: click.Context,
    file: str,
    collection: str | None,
    last_line_wins: bool,
    existing: str | None,
    store_dir: str | None,
    as_json: bool,
) -> int:
    """Import records from FILE (- for stdin), keeping their timestamps.

    FILE is what export-json writes ({"collection": [records]}), or, with --collection,
    a JSON array or JSON lines. A record the store already holds in the same or a newer
    version (by updated_at) is skipped, as a merge would. Everything is checked before
    the first write.

    With --last-line-wins, FILE is the JSONL file (or a folder of them) of a store whose
    rule was "the last line of an id wins", whatever its timestamps say (lines without
    updated_at, clocks that went backwards): each id's last line becomes its only line
    here, unchanged (a tombstone last: nothing imported), and earlier lines are counted
    as superseded. Use it for such files only: read by the store's own rule, an earlier
    line with a greater updated_at would win.

    An import writes the store's files; commit them as any change (git add .taskstore,
    git commit).
    """
    if last_line_wins:
        return _import_last_line_wins(ctx, file, collection, existing, store_dir, as_json)
    if existing is not None:
        raise click.UsageError("--existing goes with --last-line-wins")
    if os.path.isdir(file):
        raise click.UsageError(
            f"{file} is a folder: import a folder of <collection>.jsonl files with "
            "--last-line-wins, or give one file"
        )
    from ..errors import ValidationError
    from ..jsonl import loads
    from ..names import validate_collection

    handle = _open(ctx, file)
    data = handle.read()
    source = source_name(handle)
    payload: Any
    if collection is not None:
        validate_collection(collection)
        try:
            payload = {collection: _records_of(loads(data))}
        except ValueError:
            from .records import _parse_records

            payload = {collection: _parse_records(data.decode("utf-8", "replace"), source)}
    else:
        try:
            payload = loads(data)
        except ValueError as exc:
            raise ValidationError(
                f"{source}: not valid JSON ({str(exc).split(':')[0]}); for JSON lines "
                "give --collection NAME"
            ) from None
        if not isinstance(payload, dict):
            raise ValidationError(
                f"{source}: expected an object of collections (as export-json writes); "
                "for an array of records give --collection NAME"
            )
    with open_store(store_dir, create=creates_store(store_dir)) as store:
        result = store.import_data(payload)
    if as_json:
        emit_json(
            {
                "written": result.written,
                "skipped": result.skipped,
                "collections": result.collections,
            }
        )
    else:
        click.echo(
            f"imported {result.written} record(s)"
            + (
                f", skipped {result.skipped} (the store holds them as new or newer)"
                if result.skipped
                else ""
            )
        )
    return 0


def _open(ctx: click.Context, file: str) -> IO[bytes]:
    """FILE opened as click.File would: a missing or unreadable file is the same usage
    error (exit 2) with or without --last-line-wins."""
    param = next(p for p in ctx.command.params if p.name == "file")
    handle: IO[bytes] = click.File("rb").convert(file, param, ctx)
    return handle


# Bad lines named one by one on stderr; --json lists every one.
SHOWN_BAD_LINES = 20


def _import_last_line_wins(
    ctx: click.Context,
    file: str,
    collection: str | None,
    existing: str | None,
    store_dir: str | None,
    as_json: bool,
) -> int:
    from .. import legacy
    from ..errors import ValidationError
    from ..names import validate_collection

    if file == "-" or not os.path.isdir(file):
        handle = _open(ctx, file)
        source = source_name(handle)
        if collection is None and source == "stdin":
            raise click.UsageError("--last-line-wins reads stdin with --collection NAME only")
        if source == "stdin":
            sources = [legacy.Source(validate_collection(collection or ""), source, handle.read())]
        else:
            sources = legacy.sources_at(file, collection)
    else:
        if collection is not None:
            raise click.UsageError(
                "--collection goes with a file: a folder's <collection>.jsonl files name "
                "their collections"
            )
        sources = legacy.sources_at(file)
    with open_store(store_dir, create=creates_store(store_dir)) as store:
        result = legacy.import_sources(store, sources, existing=existing or "refuse")
    if as_json:
        emit_json(result.as_json())
        return 0
    for item in result.collections.values():
        counts = [f"{item.imported} imported"] + [
            f"{count} {what}"
            for count, what in (
                (item.deleted, "deleted (last line a tombstone: not imported)"),
                (item.unchanged, "unchanged (the store holds them so already)"),
                (item.replaced, "replaced (written as new versions)"),
                (item.kept, "kept as the store holds them"),
                (item.superseded, "earlier line(s) superseded"),
                (len(item.bad_lines), "bad line(s) skipped"),
            )
            if count
        ]
        click.echo(f"{item.collection}: {', '.join(counts)} ({item.source}, {item.lines} lines)")
    bad = result.bad_lines
    for problem in bad[:SHOWN_BAD_LINES]:
        click.echo(f"warning: {problem}; line skipped", err=True)
    if len(bad) > SHOWN_BAD_LINES:
        click.echo(
            f"warning: {len(bad) - SHOWN_BAD_LINES} more bad line(s) skipped "
            "(--json lists every one)",
            err=True,
        )
    if len(result.collections) > 1:
        click.echo(
            f"wrote {result.written} record(s) into "
            f"{len(result.collections)} collections, {len(bad)} bad line(s) skipped"
        )
    unread = [c for c in result.collections.values() if c.lines and c.lines == len(c.bad_lines)]
    if unread:
        # Nothing of it was a record: the wrong file, or not JSON lines in UTF-8.
        raise ValidationError(
            f"{unread[0].source}: not one of its {unread[0].lines} line(s) is a record "
            "(see the warnings): is it a JSONL file in UTF-8, each line an object with a "
            'string "id"?'
        )
    return 0


def _records_of(value: Any) -> list[Any]:
    from ..errors import ValidationError

    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise ValidationError("expected a JSON array of records")
    return value
