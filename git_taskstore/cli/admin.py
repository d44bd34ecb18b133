"""Store commands: init, collections, stats, status, sync, compact, check."""

from __future__ import annotations

import os
from dataclasses import asdict

import click

from .common import emit_json, json_option, open_store, print_table, store_option


@click.command()
@store_option
@json_option
def init(store_dir: str | None, as_json: bool) -> int:
    """Create the store (idempotent: running it again changes nothing)."""
    from ..paths import default_store_dir, display_path

    path = default_store_dir(explicit=store_dir)
    existed = os.path.isdir(path)
    with open_store(store_dir, create=True) as store:
        changed = store.init_files()
    shown = display_path(path)
    if as_json:
        emit_json({"store": path, "created": not existed, "updated": changed})
    elif not existed:
        click.echo(f"created an empty store in {shown}")
    else:
        click.echo(f"store {shown} is ready" + (" (updated .gitignore)" if changed else ""))
    return 0


@click.command()
@store_option
@json_option
def collections(store_dir: str | None, as_json: bool) -> int:
    """List the collections (one JSONL file each) with their record counts."""
    with open_store(store_dir) as store:
        rows = [{"name": s.name, "records": s.records} for s in store.stats()]
    if as_json:
        emit_json(rows)
    elif rows:
        print_table(rows, ["name", "records"])
    else:
        click.echo("no collections yet: `git taskstore put COLLECTION JSON` creates one", err=True)
    return 0


@click.command()
@store_option
@json_option
def stats(store_dir: str | None, as_json: bool) -> int:
    """Counts per collection: live and deleted records, lines and bytes on disk."""
    with open_store(store_dir) as store:
        rows = [asdict(s) for s in store.stats()]
    if as_json:
        emit_json(rows)
        return 0
    for row in rows:
        row["collection"] = row["name"]
    total = {
        "collection": "(total)",
        **{k: sum(r[k] for r in rows) for k in ("records", "deleted", "lines", "file_bytes")},
    }
    print_table([*rows, total], ["collection", "records", "deleted", "lines", "file_bytes"])
    return 0


@click.command()
@store_option
@json_option
def status(store_dir: str | None, as_json: bool) -> int:
    """Per collection: records and whether the cache is fresh, without syncing.

    fresh: the cache matches the file; stale: the file changed (the next read catches
    up); new: not read yet; deleted: the file is gone; conflict: the file holds merge
    conflict markers.
    """
    from ..paths import display_path

    with open_store(store_dir) as store:
        rows = [asdict(s) for s in store.status()]
        path = store.path
    if as_json:
        emit_json({"store": path, "collections": rows})
        return 0
    click.echo(f"store: {display_path(path)}")
    for row in rows:
        row["collection"] = row["name"]
    if rows:
        print_table(rows, ["collection", "records", "freshness", "bad_lines"])
    return 0


@click.command()
@click.option("--full", is_flag=True, help="Rebuild every collection from its file.")
@store_option
@json_option
def sync(full: bool, store_dir: str | None, as_json: bool) -> int:
    """Bring the cache up to date with the JSONL files (reads do this on their own)."""
    with open_store(store_dir) as store:
        results = store.sync(full=full)
    if as_json:
        emit_json(
            [
                {
                    "collection": r.collection,
                    "action": r.action,
                    "lines_read": r.lines_read,
                    "bad_lines": len(r.bad_lines),
                }
                for r in results
            ]
        )
        return 0
    for r in results:
        detail = f" ({r.lines_read} lines)" if r.action in ("caught-up", "rebuilt") else ""
        click.echo(f"{r.collection}: {r.action}{detail}")
    return 0


@click.command()
@click.argument("collection", required=False)
@store_option
@json_option
def compact(collection: str | None, store_dir: str | None, as_json: bool) -> int:
    """Rewrite JSONL files to one line per record, atomically.

    Keeps the current version of every id (tombstones included, so merges with other
    branches still see deletes) and every line that does not parse. Commit the result.
    """
    with open_store(store_dir) as store:
        results = store.compact(collection)
    if as_json:
        emit_json([asdict(r) for r in results])
        return 0
    for r in results:
        kept = f", {r.bad_lines_kept} bad lines kept" if r.bad_lines_kept else ""
        click.echo(f"{r.collection}: {r.lines_before} -> {r.lines_after} lines{kept}")
    return 0


@click.command()
@store_option
@json_option
def check(store_dir: str | None, as_json: bool) -> int:
    """Validate every JSONL file and the cache; exit 1 naming file:line of each problem.

    Use it as a CI gate on merged results: hosted merges (web UIs) never run the merge
    driver, so a conflicted or broken file can only be caught here.
    """
    with open_store(store_dir) as store:
        problems = store.check()
        names = store.collections()
    if as_json:
        emit_json({"ok": not problems, "problems": [asdict(p) for p in problems]})
    elif problems:
        for problem in problems:
            click.echo(str(problem))
        click.echo(f"{len(problems)} problem(s) found", err=True)
    else:
        click.echo(f"ok: {len(names)} collection(s) checked")
    return 1 if problems else 0
