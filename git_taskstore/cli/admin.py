"""Store commands: init, collections, stats, status, sync, compact, check."""

from __future__ import annotations

import os
from dataclasses import asdict

import click

from .common import emit_json, json_option, open_store, print_table, store_option


@click.command()
@click.option("--no-hooks", is_flag=True, help="Do not install the git hooks.")
@click.option(
    "--hooks-path",
    "allow_hooks_path",
    is_flag=True,
    help="Install the hooks into core.hooksPath's folder even though it is set.",
)
@store_option
@json_option
def init(no_hooks: bool, allow_hooks_path: bool, store_dir: str | None, as_json: bool) -> int:
    """Create the store and wire this clone to it (idempotent: twice is once).

    Inside git it also configures the merge driver in this clone's .git/config
    (merge.taskstore.*), declares it for the store's JSONL files in .gitattributes, and
    installs the git hooks. Run it again in every fresh clone: git does not copy config.
    """
    from ..git import find_repo
    from ..hooks import integrate
    from ..paths import default_store_dir, display_path

    path = default_store_dir(explicit=store_dir)
    existed = os.path.isdir(path)
    with open_store(store_dir, create=True) as store:
        changed = ["updated .gitignore"] if store.init_files() else []
    repo = find_repo(os.path.dirname(path))
    integration = None
    if repo is not None:
        integration = integrate(repo, path, hooks=not no_hooks, allow_hooks_path=allow_hooks_path)
        changed += integration.changed
    for warning in integration.warnings if integration else []:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        emit_json(
            {
                "store": path,
                "created": not existed,
                "changed": changed,
                "git": asdict(integration) if integration else None,
            }
        )
        return 0
    shown = display_path(path)
    click.echo(f"created an empty store in {shown}" if not existed else f"store {shown} is ready")
    for line in changed:
        click.echo(f"  {line}")
    if repo is None:
        click.echo("  (not in a git work tree: no merge driver or hooks)")
    return 0


def _refuse_outside(paths: tuple[str, ...]) -> None:
    """check reads what it is given: JSONL files of this work tree only, never a link."""
    from ..errors import ValidationError
    from ..paths import display_path, find_worktree, is_inside

    top = find_worktree(os.getcwd()) or os.getcwd()
    for path in paths:
        if not is_inside(path, top) or os.path.islink(path) or not path.endswith(".jsonl"):
            raise ValidationError(
                f"{display_path(path)} is not a JSONL file in this work tree: check reads "
                "only those"
            )


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
    """Counts per collection: live and deleted records, lines and bytes on disk, and live
    records per status for collections that have one."""
    with open_store(store_dir) as store:
        rows = [asdict(s) for s in store.stats()]
        for row in rows:
            by_status = store.collection(row["name"]).count_by("status")
            row["by_status"] = (
                {}
                if set(by_status) <= {None}
                else {("(none)" if k is None else str(k)): n for k, n in by_status.items()}
            )
    if as_json:
        emit_json(rows)
        return 0
    for row in rows:
        row["collection"] = row["name"]
        row["by status"] = ", ".join(f"{k} {n}" for k, n in row["by_status"].items())
    total = {
        "collection": "(total)",
        **{k: sum(r[k] for r in rows) for k in ("records", "deleted", "lines", "file_bytes")},
    }
    columns = ["collection", "records", "deleted", "lines", "file_bytes"]
    if any(r["by status"] for r in rows):
        columns.append("by status")
    print_table([*rows, total], columns)
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
    from ..git import find_repo
    from ..hooks import integration_status
    from ..paths import display_path

    with open_store(store_dir) as store:
        rows = [asdict(s) for s in store.status()]
        path = store.path
        in_memory = store.cache_in_memory
    repo = find_repo(os.path.dirname(path))
    integration = integration_status(repo, path) if repo is not None else None
    for warning in integration.warnings if integration else []:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        emit_json(
            {
                "store": path,
                "cache_in_memory": in_memory,
                "collections": rows,
                "git": asdict(integration) if integration else None,
            }
        )
        return 0
    click.echo(f"store: {display_path(path)}")
    if in_memory:
        click.echo("cache: in memory (the cache file cannot be written); counts read just now")
    if integration is None:
        click.echo("git: not in a git work tree")
    else:
        installed = [name for name, ok in integration.hooks.items() if ok]
        click.echo(f"merge driver: {'configured' if integration.driver else 'MISSING'}")
        click.echo(f".gitattributes: {'applies' if integration.attribute else 'MISSING'}")
        click.echo(
            f"hooks: {len(installed)}/{len(integration.hooks)} installed in "
            f"{display_path(integration.hooks_dir)}"
            + (f" (core.hooksPath = {integration.hooks_path})" if integration.hooks_path else "")
        )
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
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@store_option
@json_option
def check(paths: tuple[str, ...], store_dir: str | None, as_json: bool) -> int:
    """Validate every JSONL file and the cache; exit 1 naming file:line of each problem.

    With PATHs, only those JSONL files (what the pre-commit framework passes). Use it as
    a CI gate on merged results: hosted merges (web UIs) never run the merge driver, so
    a conflicted or broken file can only be caught here.
    """
    from ..maintenance import check_file

    if paths:
        _refuse_outside(paths)
        problems = [p for path in paths for p in check_file(path)]
        checked = f"{len(paths)} file(s)"
    else:
        from ..taskmodel import CHECKS

        with open_store(store_dir) as store:
            problems = list(store.check(checks=CHECKS))
            checked = f"{len(store.collections())} collection(s)"
    if as_json:
        emit_json({"ok": not problems, "problems": [asdict(p) for p in problems]})
    elif problems:
        for problem in problems:
            click.echo(str(problem))
        click.echo(f"{len(problems)} problem(s) found", err=True)
    else:
        click.echo(f"ok: {checked} checked")
    return 1 if problems else 0


@click.command()
@store_option
@json_option
def flush(store_dir: str | None, as_json: bool) -> int:
    """Export pending (debounced) writes to the JSONL files now.

    Writes made with a debounce (Store.open(..., debounce_ms=N) or TASKSTORE_DEBOUNCE_MS)
    are durable in the cache at once and reach the files after N ms without writes; this
    does it at once. The pre-commit hook runs it too.
    """
    with open_store(store_dir) as store:
        # opening the store exports what an earlier process left pending: count it.
        exported = sum(store.exported_at_open.values()) + store.flush()
    if as_json:
        emit_json({"exported": exported})
    else:
        click.echo(f"exported {exported} pending write(s)")
    return 0
