"""History commands: log (every version of a record), diff (record-level changes)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from .common import emit_json, format_ms, format_value, json_option, store_option

if TYPE_CHECKING:
    from ..history import FieldChanges, LogEntry


def _store_and_top(store_dir: str | None) -> tuple[str, str]:
    """The store folder, and where to look for its repository: the folder holding it."""
    from ..paths import default_store_dir

    store = default_store_dir(explicit=store_dir)
    return store, os.path.dirname(store)


def _show(key: str, value: Any) -> str:
    # null and "" would both print as nothing: say which.
    if value is None:
        return "null"
    if value == "" and isinstance(value, str):
        return '""'
    return format_value(key, value)


def _change_lines(changes: FieldChanges, indent: str) -> list[str]:
    lines = [
        f"{indent}{k}: {_show(k, old)} -> {_show(k, new)}"
        for k, (old, new) in changes.changed.items()
    ]
    lines += [f"{indent}{k}: (unset) -> {_show(k, v)}" for k, v in changes.added.items()]
    lines += [f"{indent}{k}: {_show(k, v)} -> (unset)" for k, v in changes.removed.items()]
    return lines


def _entry_lines(entry: LogEntry) -> list[str]:
    merge = " (merge)" if len(entry.parents) > 1 else ""
    header = (
        f"{entry.commit[:7]}  {format_ms(entry.commit_time * 1000)} UTC  "
        f"{entry.author_name}  {entry.summary}{merge}"
    )
    lines = [header]
    if entry.action in ("created", "restored"):
        lines.append(f"  {entry.action}")
        lines += [f"  {k}: {_show(k, v)}" for k, v in entry.changes.added.items() if k != "id"]
    elif entry.action == "deleted":
        lines.append("  deleted")
    elif entry.action == "removed":
        lines.append("  removed: the file no longer holds the id")
    else:
        lines += _change_lines(entry.changes, "  ")
    return lines


@click.command()
@click.argument("record_id", metavar="ID")
@click.option(
    "--collection",
    "-c",
    metavar="NAME",
    help="The collection holding ID (default: the first collection at HEAD that has it, "
    "else the newest one in history).",
)
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=1),
    metavar="N",
    help="Show at most N versions (the newest).",
)
@store_option
@json_option
def log(
    record_id: str,
    collection: str | None,
    limit: int | None,
    store_dir: str | None,
    as_json: bool,
) -> int:
    """Show every committed version of record ID, newest first.

    One block per commit that changed the record's current version: short hash, commit
    date (UTC), author and summary, then the fields it changed against the commit's first
    parent (old -> new), or "created" / "deleted" (a tombstone). Merges appear only
    when the merged version is new. Uncommitted changes are not shown (see `diff`).

    \b
    git taskstore log t-1
    git taskstore log t-1 --collection tasks --limit 5 --json
    """
    from ..history import record_log

    store, top = _store_and_top(store_dir)
    entries = record_log(top, store, record_id, collection=collection, max_count=limit)
    if as_json:
        emit_json([e.to_json() for e in entries])
        return 0
    for index, entry in enumerate(entries):
        if index:
            click.echo("")
        click.echo("\n".join(_entry_lines(entry)))
    return 0


@click.command()
@click.argument("revs", nargs=-1, metavar="[REV [REV]]")
@click.option("--collection", "-c", metavar="NAME", help="Compare this collection only.")
@store_option
@json_option
def diff(
    revs: tuple[str, ...], collection: str | None, store_dir: str | None, as_json: bool
) -> int:
    """Show record-level changes between two states of the store.

    No REV: HEAD against the files on disk; one REV: REV against the files on disk; two:
    the first against the second (A..B also works). Per collection: "+ id" added,
    "- id" deleted (or tombstoned), "~ id" changed, with "field: old -> new" lines.

    \b
    git taskstore diff
    git taskstore diff HEAD~3
    git taskstore diff main feature --collection tasks --json
    """
    from ..history import record_diff

    if len(revs) == 1 and ".." in revs[0] and "..." not in revs[0]:
        left, right = revs[0].split("..", 1)
        revs = (left or "HEAD", right or "HEAD")
    if len(revs) > 2:
        raise click.UsageError(f"at most two revisions, got {len(revs)}: {' '.join(revs)}")
    rev_a = revs[0] if revs else "HEAD"
    rev_b = revs[1] if len(revs) == 2 else None
    store, top = _store_and_top(store_dir)
    result = record_diff(top, store, rev_a, rev_b, collection=collection)
    if as_json:
        emit_json({name: d.to_json() for name, d in result.items()})
        return 0
    if not result:
        against = rev_b if rev_b is not None else "the work tree"
        click.echo(f"no record changes between {rev_a} and {against}", err=True)
        return 0
    for index, (name, d) in enumerate(result.items()):
        if index:
            click.echo("")
        click.echo(
            f"{name}: {len(d.added)} added, {len(d.deleted)} deleted, {len(d.changed)} changed"
        )
        lines = [f"+ {i}" for i in d.added] + [f"- {i}" for i in d.deleted]
        for record_id, changes in d.changed.items():
            lines.append(f"~ {record_id}")
            lines += _change_lines(changes, "    ")
        click.echo("\n".join(lines))
    return 0
