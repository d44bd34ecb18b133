"""Git commands: install-hooks, uninstall-hooks, resolve, merge, hook-run."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from .common import emit_json, json_option, store_option

if TYPE_CHECKING:
    from ..git import Repo
    from ..hooks import InstallReport


def require_repo(store_dir: str | None) -> Repo:
    """The work tree that holds the store (--store, TASKSTORE_DIR, or the default one)."""
    from ..errors import TaskstoreError
    from ..git import find_repo
    from ..paths import default_store_dir, display_path

    store = default_store_dir(explicit=store_dir)
    # The store folder need not exist yet: ask git from the nearest folder that does.
    start = os.path.dirname(store)
    while not os.path.isdir(start) and os.path.dirname(start) != start:
        start = os.path.dirname(start)
    repo = find_repo(start)
    if repo is None:
        raise TaskstoreError(
            f"{display_path(store)} is not inside a git work tree: run this in a clone "
            "(or `git init`), or name a store in one with --store"
        )
    return repo


def print_report(report: InstallReport, as_json: bool) -> int:
    """Show a hooks report, as JSON or as lines; the exit code."""
    if as_json:
        emit_json(asdict(report))
    else:
        for line in report_lines(report, "installed"):
            click.echo(line)
    return 0


def report_lines(report: InstallReport, verb: str) -> list[str]:
    """Human lines for an InstallReport."""
    from ..paths import display_path

    where = display_path(report.hooks_dir)
    lines = []
    if report.kept_aside:
        lines.append(
            f"kept the existing {', '.join(report.kept_aside)} hook(s) as <name>.pre-taskstore; "
            "they still run first"
        )
    if report.written:
        lines.append(f"{verb} {', '.join(report.written)} in {where}")
    if report.removed:
        lines.append(f"removed {', '.join(report.removed)} from {where}")
    if report.restored:
        lines.append(f"put back the earlier {', '.join(report.restored)} hook(s)")
    if not lines:
        lines.append(f"hooks in {where} already up to date")
    return lines


@click.command("install-hooks")
@click.option(
    "--hooks-path",
    "allow_hooks_path",
    is_flag=True,
    help="Install into the folder core.hooksPath names (refused by default: another tool "
    "usually manages it).",
)
@store_option
@json_option
def install_hooks(allow_hooks_path: bool, store_dir: str | None, as_json: bool) -> int:
    """Write the five git hooks (idempotent; an existing hook is kept and still runs).

    pre-commit refuses conflicted or broken JSONL; post-merge, post-rewrite and
    post-checkout keep the cache fresh; pre-push runs `check`. They go where
    `git rev-parse --git-path hooks` says, so linked worktrees share them. They guard
    the store --store names (default: .taskstore at the top) and every store they
    guarded before.
    """
    from ..hooks import install_hooks as install
    from ..hooks import store_relpath
    from ..paths import default_store_dir

    repo = require_repo(store_dir)
    store = store_relpath(repo, default_store_dir(explicit=store_dir))
    report = install(repo, allow_hooks_path=allow_hooks_path, stores=[store])
    return print_report(report, as_json)


@click.command("uninstall-hooks")
@store_option
@json_option
def uninstall_hooks(store_dir: str | None, as_json: bool) -> int:
    """Remove git-taskstore's hooks and put back the ones that were there before.

    --store picks the repository: the one holding that store folder.
    """
    from ..hooks import uninstall_hooks as uninstall

    repo = require_repo(store_dir)
    report = uninstall(repo)
    return print_report(report, as_json)


@click.command()
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--ours", "strategy", flag_value="ours", help="Keep our side of each conflict.")
@click.option("--theirs", "strategy", flag_value="theirs", help="Keep their side.")
@click.option(
    "--newest",
    "strategy",
    flag_value="newest",
    default=True,
    help="Keep both sides' lines; the greater updated_at wins, theirs on a tie (default).",
)
@store_option
@json_option
def resolve(paths: tuple[str, ...], strategy: str, store_dir: str | None, as_json: bool) -> int:
    """Settle the merge conflicts in JSONL files of the store, leaving valid files.

    Without PATH, every file of the store that holds conflict markers. Then `git add`
    the files and finish the merge (`git commit`, or `git rebase --continue`).
    """
    from ..errors import ValidationError
    from ..files import atomic_write
    from ..jsonl import conflict_marker_line
    from ..layout import list_files
    from ..maintenance import problems_in
    from ..merge import resolve_conflicts
    from ..paths import default_store_dir, display_path, is_inside

    folder = default_store_dir(explicit=store_dir)
    for path in paths:
        # resolve rewrites what it is given: only JSONL files of the store, never a link.
        if not is_inside(path, folder) or os.path.islink(path) or not path.endswith(".jsonl"):
            raise ValidationError(
                f"{display_path(path)} is not a JSONL file of the store {display_path(folder)}: "
                "resolve settles only those (--store names another store)"
            )
    if not paths:
        if not os.path.isdir(folder):
            raise ValidationError(f"no store at {display_path(folder)}: nothing to resolve")
        listing = list_files(folder)
        candidates = [os.path.join(folder, name + ".jsonl") for name in listing.collections]
        candidates += listing.misnamed
        paths = tuple(p for p in candidates if conflict_marker_line(_read(p)) is not None)
    results = []
    # Everything is checked before the first file is written.
    settled: list[tuple[str, bytes, int]] = []
    for path in paths:
        try:
            text, blocks = resolve_conflicts(_read(path), strategy)
        except ValueError as exc:
            raise ValidationError(f"{display_path(path)}:{exc}") from None
        problems = problems_in(display_path(path), text)
        if problems:
            raise ValidationError(
                f"{problems[0]}: the file would still not be valid JSONL after resolving; "
                "edit it by hand"
            )
        settled.append((path, text, blocks))
    for path, text, blocks in settled:
        if blocks:
            atomic_write(path, text)
        results.append({"path": display_path(path), "conflicts": blocks, "strategy": strategy})
    if as_json:
        emit_json(results)
    elif not results:
        click.echo("no conflicts to resolve")
    else:
        for item in results:
            click.echo(
                f"{item['path']}: {item['conflicts']} conflict(s) resolved ({strategy}); "
                f"now `git add {item['path']}`"
            )
    return 0


def _read(path: str) -> bytes:
    from ..errors import ValidationError

    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from None


# What git hands these two goes through untouched: options are read only before the
# first argument, so a file or ref named like an option is never taken for one.
PASSTHROUGH = {"ignore_unknown_options": True, "allow_interspersed_args": False}


@click.command(context_settings=PASSTHROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="BASE OURS THEIRS [SIZE [PATH]]")
@store_option
def merge(args: tuple[str, ...], store_dir: str | None) -> int:
    """The merge driver git runs (same as git-taskstore-merge): merge BASE and THEIRS into
    OURS record by record; exit 0 when clean, 1 when a conflict remains.

    The driver reads and writes only the three files: --store (before BASE) is accepted
    as every command accepts it, and opens no store.
    """
    from ..driver import main as driver_main

    return driver_main(list(args))


@click.command("hook-run", context_settings=PASSTHROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="HOOK [ARGS]...")
@store_option
def hook_run(args: tuple[str, ...], store_dir: str | None) -> int:
    """Run what a git-taskstore hook does: hook-run HOOK [ARGS]... (call it from your own
    hooks when core.hooksPath is managed by another tool).

    --store (before HOOK) names the store the hook works on; the hook runner reads it
    from TASKSTORE_DIR, which it sets.
    """
    from ..hookrun import main as hook_main
    from ..paths import ENV_STORE

    if store_dir:
        os.environ[ENV_STORE] = os.path.abspath(store_dir)
    return hook_main(list(args))
