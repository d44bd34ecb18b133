"""OpenSpec commands: ``openspec init|sync|status|history|resolve|done|undone|list|show``
and ``watch``."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from .common import (
    WINDOW,
    emit_json,
    format_ms,
    json_option,
    open_store,
    print_table,
    store_option,
)

if TYPE_CHECKING:
    from ..openspec.service import OpenSpecSync
    from ..openspec.syncrun import ChangeResult, SyncReport


@contextmanager
def _service(store_dir: str | None) -> Iterator[OpenSpecSync]:
    from ..openspec.service import OpenSpecSync

    with open_store(store_dir) as store:
        yield OpenSpecSync(store)


@click.group("openspec", context_settings={"help_option_names": ["-h", "--help"]})
def group() -> None:
    """Mirror OpenSpec change folders (openspec/changes/<id>/) as records, both ways.

    Each change is a record in openspec_changes and each task one in openspec_tasks;
    every sync is recorded in openspec_sync_history. A task ticked or a proposal section
    edited in the store is written into the markdown, changing only those bytes; an edit
    in the files reaches the records. When both sides changed the same task or section
    since they were last in sync, that is a conflict: shown by `status`, overwriting
    nothing until `resolve`. `git taskstore watch` keeps both sides in sync as they change.
    """


def _warn_report(report: SyncReport) -> None:
    for root in report.missing_roots:
        click.echo(
            f"warning: OpenSpec root {root}/changes is missing; nothing synced there", err=True
        )
    for skipped in report.skipped:
        click.echo(f"warning: skipped {skipped.folder}: {skipped.reason}", err=True)


def _print_results(results: list[ChangeResult]) -> None:
    quiet = True
    for result in results:
        if result.state == "in_sync" and not result.error:
            continue
        quiet = False
        parts = []
        if result.to_store:
            parts.append(f"files -> store: {', '.join(result.to_store)}")
        if result.to_files:
            parts.append(f"store -> files: {', '.join(result.to_files)}")
        if result.state == "deleted":
            parts.append("folder deleted: records removed")
        if result.conflicts:
            units = ", ".join(c["unit"] for c in result.conflicts)
            parts.append(
                f"CONFLICT on {units} (resolve with `git taskstore openspec resolve "
                f"{result.change} --files-wins|--store-wins`)"
            )
        if result.error:
            parts.append(f"error: {result.error}")
        if not parts:
            parts.append(result.state.replace("_", " "))
        click.echo(f"{result.change}: {'; '.join(parts)}")
    if quiet:
        click.echo(f"{len(results)} change(s) in sync")


def _code(results: list[ChangeResult]) -> int:
    return 1 if any(r.conflicts or r.error for r in results) else 0


@group.command("init")
@click.option(
    "--root",
    "roots",
    multiple=True,
    metavar="DIR",
    help="An OpenSpec folder (holding changes/), relative to the top of the work tree; "
    "repeat for several. Default: openspec.",
)
@click.option("--no-sync", is_flag=True, help="Only record the roots; do not sync now.")
@store_option
@json_option
def init(roots: tuple[str, ...], no_sync: bool, store_dir: str | None, as_json: bool) -> int:
    """Record the OpenSpec roots in .taskstore/openspec.json (commit it: every clone then
    syncs the same folders), then sync every change from its files."""
    from ..git import find_repo
    from ..hooks import declare_tasks_md
    from ..openspec.config import path_of
    from ..openspec.service import OpenSpecSync
    from ..paths import display_path

    with open_store(store_dir, create=True) as store:
        config = OpenSpecSync.init(store, roots or ("openspec",))
        top = os.path.dirname(store.path)
        repo = find_repo(top)
        declared = declare_tasks_md(repo, top, config.roots) if repo is not None else []
        report = None if no_sync else OpenSpecSync(store).sync(trigger="manual")
        settings = display_path(path_of(store.path))
    if as_json:
        emit_json(
            {
                "roots": config.roots,
                "attributes": declared,
                "sync": report.to_dict() if report else None,
            }
        )
        return 0 if report is None else _code(report.changes)
    click.echo(f"OpenSpec roots: {', '.join(config.roots)} (in {settings})")
    for pattern in declared:
        click.echo(f"  .gitattributes: {pattern} merges line by line (merge=taskstore)")
    if report is None:
        return 0
    _warn_report(report)
    _print_results(report.changes)
    return _code(report.changes)


@group.command("sync")
@click.argument("change", required=False)
@click.option(
    "--files-to-store", "direction", flag_value="files_to_store", help="Only files -> store."
)
@click.option(
    "--store-to-files", "direction", flag_value="store_to_files", help="Only store -> files."
)
@click.option(
    "--force",
    is_flag=True,
    help="With a direction: that side also wins the conflicts (what `resolve` does).",
)
@store_option
@json_option
def sync(
    change: str | None, direction: str | None, force: bool, store_dir: str | None, as_json: bool
) -> int:
    """Sync CHANGE (default: every change) both ways, or one way with a direction.

    Exits 1 when a change has a conflict or an error (printed; nothing overwritten).
    """
    if force and direction is None:
        raise click.UsageError("--force needs --files-to-store or --store-to-files")
    winner = None
    if force:
        winner = "files" if direction == "files_to_store" else "store"
    with _service(store_dir) as service:
        report = service.sync(change, direction=direction, winner=winner, trigger="manual")
    if as_json:
        emit_json(report.to_dict())
        return _code(report.changes)
    _warn_report(report)
    _print_results(report.changes)
    return _code(report.changes)


_STATE_WORDS = {
    "in_sync": "in sync",
    "files_changed": "files changed",
    "store_changed": "store changed",
    "both_changed": "files and store changed",
    "conflict": "conflict",
    "error": "error",
    "deleted": "folder deleted",
}


@group.command("status")
@click.argument("change", required=False)
@store_option
@json_option
def status(change: str | None, store_dir: str | None, as_json: bool) -> int:
    """Per change: in sync, files changed, store changed, conflict or error, and the
    last sync; and whether a watcher is running for this work tree."""
    from ..openspec.watch import running

    with _service(store_dir) as service:
        report = service.sync(change, dry_run=True)
        records = {r["id"]: r for r in service.changes()}
        watcher = running(service.store.path)
    rows: list[dict[str, Any]] = []
    for result in report.changes:
        record = records.get(result.change, {})
        conflicts = result.conflicts  # what holds now (an edit may have settled one)
        rows.append(
            {
                "change": result.change,
                "state": "conflict" if conflicts else result.state,
                "folder": result.folder,
                "tasks_done": record.get("tasks_done"),
                "tasks_total": record.get("tasks_total"),
                "synced_at": record.get("synced_at"),
                "conflicts": conflicts,
                "error": result.error or record.get("sync_error"),
            }
        )
    if as_json:
        emit_json({"changes": rows, "watcher": {"running": watcher is not None, "pid": watcher}})
        return 0
    _warn_report(report)
    if rows:
        table = [
            {
                "change": r["change"],
                "state": _STATE_WORDS.get(r["state"], r["state"]),
                "tasks": f"{r['tasks_done'] or 0}/{r['tasks_total'] or 0}",
                "last sync": format_ms(r["synced_at"]) if r["synced_at"] else "never",
                "problem": r["error"] or ", ".join(c["unit"] for c in r["conflicts"]),
            }
            for r in rows
        ]
        print_table(table, ["change", "state", "tasks", "last sync", "problem"])
        # The table cuts a long cell: each error in full, the reason being at its end.
        for r in rows:
            if r["error"]:
                click.echo(f"{r['change']}: error: {_one_line(r['error'])}")
    else:
        click.echo("no OpenSpec change found")
    click.echo(f"watcher: running (pid {watcher})" if watcher else "watcher: not running")
    return 0


@group.command("history")
@click.argument("change", required=False)
@click.option("--limit", type=WINDOW, default=20, show_default=True, help="Entries to show.")
@store_option
@json_option
def history(change: str | None, limit: int, store_dir: str | None, as_json: bool) -> int:
    """The sync history, newest first (also `git taskstore list openspec_sync_history`)."""
    with _service(store_dir) as service:
        entries = service.history(change, limit=limit)
    if as_json:
        emit_json(entries)
        return 0
    if not entries:
        click.echo("no sync recorded", err=True)
        return 0
    rows = [
        {
            "at": format_ms(e["at"]) if isinstance(e.get("at"), int) else e.get("at"),
            "change": e.get("change"),
            "direction": e.get("direction"),
            "trigger": e.get("trigger"),
            "result": (
                f"FAILED: {e.get('error')}" if not e.get("success") else e.get("error") or "ok"
            ),
            "units": ", ".join(e.get("units") or []),
        }
        for e in entries
    ]
    print_table(rows, ["at", "change", "direction", "trigger", "result", "units"])
    return 0


@group.command("resolve")
@click.argument("change")
@click.option("--files-wins", "winner", flag_value="files", help="Keep the files' values.")
@click.option("--store-wins", "winner", flag_value="store", help="Keep the store's values.")
@store_option
@json_option
def resolve(change: str, winner: str | None, store_dir: str | None, as_json: bool) -> int:
    """Settle CHANGE's conflicts: the files' or the store's value of each conflicting
    unit wins (the other is kept in the sync history)."""
    if winner is None:
        raise click.UsageError("say which side wins: --files-wins or --store-wins")
    with _service(store_dir) as service:
        result = service.resolve(change, winner)
    if as_json:
        emit_json(result.to_dict())
        return _code([result])
    if result.error and not result.resolved:
        # Nothing settled (the folder cannot be read, say): one error line, as any failure.
        click.echo(f"error: {change}: {_one_line(result.error)}", err=True)
        return 1
    if not result.resolved:
        click.echo(f"{change}: no conflict to resolve")
    else:
        units = ", ".join(c["unit"] for c in result.resolved)
        click.echo(f"{change}: the {winner} won {units} (the other values are in the history)")
    _print_results([result])
    return _code([result])


def _one_line(text: str) -> str:
    return " ".join(str(text).splitlines())


def _set_task(change: str, task: str, done: bool, store_dir: str | None, as_json: bool) -> int:
    with _service(store_dir) as service:
        result = service.set_task(change, task, done=done)
    if as_json:
        emit_json(result.to_dict())
        return _code([result])
    if result.error:  # the file cannot be read or written, or a value is refused
        click.echo(f"error: {change}: {_one_line(result.error)}", err=True)
        return 1
    units = [c["unit"] for c in result.conflicts]
    if f"task {task.strip()}" not in units:  # written, even if another unit conflicts
        click.echo(f"{change} {task}: {'done' if done else 'not done'}")
    if units:
        click.echo(
            f"error: {change}: CONFLICT on {', '.join(units)} (resolve with `git taskstore "
            f"openspec resolve {change} --files-wins|--store-wins`)",
            err=True,
        )
        return 1
    return 0


@group.command("done")
@click.argument("change")
@click.argument("task")
@store_option
@json_option
def done(change: str, task: str, store_dir: str | None, as_json: bool) -> int:
    """Mark TASK of CHANGE done, in the store and in tasks.md (`- [x]`).

    TASK is the task's key (its number, 1.2, or ~ and a digest of its text, as
    `openspec show` lists them) or #N, its place in `openspec instructions apply`.
    Marking a done task done changes nothing.
    """
    return _set_task(change, task, True, store_dir, as_json)


@group.command("undone")
@click.argument("change")
@click.argument("task")
@store_option
@json_option
def undone(change: str, task: str, store_dir: str | None, as_json: bool) -> int:
    """Mark TASK of CHANGE not done, in the store and in tasks.md (`- [ ]`)."""
    return _set_task(change, task, False, store_dir, as_json)


@group.command("list")
@store_option
@json_option
def list_(store_dir: str | None, as_json: bool) -> int:
    """The changes the store mirrors: status, tasks done, last sync."""
    with _service(store_dir) as service:
        records = service.changes()
    if as_json:
        emit_json([_summary(r) for r in records])
        return 0
    if not records:
        click.echo("no OpenSpec change in the store (run `git taskstore openspec sync`)", err=True)
        return 0
    rows = [
        {
            "change": r["id"],
            "status": r.get("status"),
            "tasks": f"{r.get('tasks_done') or 0}/{r.get('tasks_total') or 0}",
            "title": r.get("title"),
            "last sync": format_ms(r["synced_at"]) if r.get("synced_at") else "never",
        }
        for r in records
    ]
    print_table(rows, ["change", "status", "tasks", "title", "last sync"])
    return 0


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("hashes", "synced")}


@group.command("show")
@click.argument("change")
@click.option("--files", "with_files", is_flag=True, help="Include each file's raw text.")
@store_option
@json_option
def show(change: str, with_files: bool, store_dir: str | None, as_json: bool) -> int:
    """A change: title, status, sections, deltas, tasks and sync state."""
    with _service(store_dir) as service:
        record = {**_summary(service.show(change))}
        if with_files:
            record["files"] = service.files(change)
    if as_json:
        emit_json(record)
        return 0
    # A change whose files were never read (a sync error from the start) has neither.
    title = record.get("title") or record["id"]
    click.echo(f"{record['id']}: {title}  [{record.get('status') or 'not synced'}]")
    click.echo(f"folder: {record.get('folder')}")
    for name in ("why", "what_changes", "impact"):
        if record.get(name):
            click.echo(f"\n## {name.replace('_', ' ').title()}\n{record[name]}")
    # Shown as stored, which a stranger may have written: only well-formed entries.
    deltas = [d for d in _listed(record, "deltas") if isinstance(d, dict)]
    if deltas:
        click.echo("\nDeltas:")
        for d in deltas:
            click.echo(f"  {d.get('operation')!s:<8} {d.get('capability')}: {d.get('requirement')}")
    click.echo(f"\nTasks ({record.get('tasks_done') or 0}/{record.get('tasks_total') or 0}):")
    for task in record["tasks"]:
        key = str(task.get("key"))
        named = "" if str(task.get("text")).startswith(key) else f"  ({key})"
        click.echo(f"  [{'x' if task.get('done') else ' '}] {task.get('text')}{named}")
    conflicts = [c for c in _listed(record, "conflicts") if isinstance(c, dict)]
    if conflicts:
        click.echo(f"\nCONFLICT: {', '.join(str(c.get('unit')) for c in conflicts)}")
    if record.get("sync_error"):
        click.echo(f"\nsync error: {record['sync_error']}")
    for name, text in (record.get("files") or {}).items():
        click.echo(f"\n--- {name}\n{text}", nl=not text.endswith("\n"))
    return 0


def _listed(record: dict[str, Any], name: str) -> list[Any]:
    value = record.get(name)
    return value if isinstance(value, list) else []


@click.command("watch")
@click.option(
    "--debounce-ms",
    type=click.IntRange(min=0, max=60_000),
    default=100,
    show_default=True,
    help="Quiet time before a burst of saves is synced.",
)
@click.option(
    "--sweep-seconds",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="How often the periodic sweep syncs what events missed.",
)
@store_option
@json_option
def watch(debounce_ms: int, sweep_seconds: float, store_dir: str | None, as_json: bool) -> int:
    """Keep OpenSpec folders and the store in sync as either changes (foreground).

    An edit of a change's files reaches its records, and a record written by any
    process reaches the files, within a few hundred ms. A periodic sweep syncs what the
    events missed. Ctrl-C or SIGTERM stops it. With --json, one event per line:
    sync_started, sync_completed, sync_failed, conflict_detected (with change,
    direction, files), and watch_started, watch_stopped, warning, watcher_error.
    """
    from ..openspec.watch import Watcher

    def emit(event: dict[str, Any]) -> None:
        if as_json:
            sys.stdout.write(json.dumps(event) + "\n")
            sys.stdout.flush()
        else:
            click.echo(_describe_event(event), err=event["event"] in ("warning", "sync_failed"))

    # Not debounced, whatever the environment says: a write of the watcher must be in
    # the files before the other side's watchers (and git) read them.
    with open_store(store_dir, debounce_ms=0) as store:
        watcher = Watcher(store, emit=emit, debounce_ms=debounce_ms, sweep_s=sweep_seconds)
        # Ctrl-C and SIGTERM alike ask the watcher to stop once its running sync ends,
        # rather than interrupting it part-way.
        stop = lambda *_: watcher.stop.set()  # noqa: E731
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            watcher.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 0


def _describe_event(event: dict[str, Any]) -> str:
    name = event["event"]
    change = event.get("change")
    if name == "sync_completed":
        units = ", ".join(event.get("units") or []) or "records"
        arrow = "files -> store" if event.get("direction") == "files_to_store" else "store -> files"
        return f"{change}: {arrow}: {units}"
    if name == "conflict_detected":
        return f"{change}: CONFLICT on {', '.join(event.get('units') or [])}"
    if name == "sync_failed":
        return f"{change or 'sync'}: failed: {event.get('error')}"
    if name == "sync_started":
        return f"{change}: syncing ({event.get('trigger')})"
    if name == "watch_started":
        return f"watching {', '.join(event.get('roots') or [])} (pid {os.getpid()}); Ctrl-C stops"
    if name == "watch_stopped":
        return "stopped"
    return f"{name}: {event.get('message') or event.get('error') or ''}"
