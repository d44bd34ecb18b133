"""Moving data in and out: backup, export-json, import."""

from __future__ import annotations

import os
import sys
from typing import IO, Any

import click

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
@click.argument("file", type=click.File("rb"), metavar="FILE")
@click.option(
    "--collection",
    metavar="NAME",
    help="Read FILE as records of NAME: a JSON array or JSON lines.",
)
@store_option
@json_option
def import_(file: IO[bytes], collection: str | None, store_dir: str | None, as_json: bool) -> int:
    """Import records from FILE (- for stdin), keeping their timestamps.

    FILE is what export-json writes ({"collection": [records]}), or, with --collection,
    a JSON array or JSON lines. A record the store already holds in the same or a newer
    version (by updated_at) is skipped, as a merge would. Everything is checked before
    the first write.
    """
    from ..errors import ValidationError
    from ..jsonl import loads
    from ..names import validate_collection

    data = file.read()
    source = source_name(file)
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


def _records_of(value: Any) -> list[Any]:
    from ..errors import ValidationError

    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise ValidationError("expected a JSON array of records")
    return value
