"""What the git hooks do: ``python -m git_taskstore.hookrun [--hook-dir DIR] HOOK [ARGS...]``.

The installed hook is a shim (``resources/hook-tmpl``) that execs this with the folder it
lives in. First the hook that was there before us (``DIR/HOOK.pre-taskstore``) runs, with
the same arguments and the same stdin (pre-push and post-rewrite read theirs); when it
fails, its exit code is the hook's, and pre-commit and pre-push stop there. Then:

- post-merge, post-rewrite (git has no post-rebase: a rebase ends here with ``rebase``),
  post-checkout: bring the cache up to date; a branch checkout that leaves the store's
  files as they were does not even open the store.
- all but pre-push: when the store mirrors OpenSpec folders (``openspec.json``), sync
  them with the records if either changed (pre-commit stages what that sync wrote).
- pre-commit: refuse a staged JSONL file of the store that holds conflict markers or
  lines that do not parse, naming file and line (bypass: ``git commit --no-verify``).
- pre-push: run ``check`` on the store (files the cache read whole and found clean, and
  that have not changed since, are not read again); warn, or refuse when
  ``taskstore.prePushBlock`` is true.

Whatever else goes wrong (git-taskstore broken, a sync failing), a hook warns and exits 0:
git must keep working. No click here: hooks start as fresh processes on every checkout.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Sequence

TYPE_CHECKING = False  # typing is not worth its import to a hook; mypy reads it the same

if TYPE_CHECKING:
    from .git import Repo
    from .openspec.syncrun import SyncReport

HOOKS = ("pre-commit", "post-merge", "post-rewrite", "pre-push", "post-checkout")
# Hooks whose failure stops the git operation; the others only report.
BLOCKING_HOOKS = ("pre-commit", "pre-push")
# Hooks git feeds on stdin: the kept hook gets the same bytes.
STDIN_HOOKS = ("pre-push", "post-rewrite")
LEGACY_SUFFIX = ".pre-taskstore"
# Set while the kept hook runs: if it leads back here (a copy of our shim, a hook manager
# that runs the whole folder), the inner run does nothing instead of looping.
ENV_RUNNING_LEGACY = "TASKSTORE_RUNNING_LEGACY_HOOK"
NULL_COMMIT = "0" * 40


def _say(level: str, message: str) -> None:
    sys.stderr.write(f"git-taskstore: {level}: {message}\n")


# Set by the installed hook: the store folders `init` wired, from the top, separated.
ENV_HOOK_STORES = "TASKSTORE_HOOK_STORES"
STORE_SEPARATOR = ":"


def _store_dirs() -> list[str]:
    """The stores this hook guards: $TASKSTORE_DIR if set (hook-run --store), else those
    the hook was installed for, else the default one; only folders inside the work tree."""
    from .paths import ENV_STORE, default_store_dir, find_worktree, is_inside

    wired = [p for p in os.environ.get(ENV_HOOK_STORES, "").split(STORE_SEPARATOR) if p]
    if os.environ.get(ENV_STORE) or not wired:
        path = default_store_dir()
        return [path] if os.path.isdir(path) else []
    top = find_worktree(os.getcwd()) or os.getcwd()
    found = []
    for rel in wired:
        path = os.path.join(top, rel)
        if os.path.isdir(path) and is_inside(path, top) and path not in found:
            found.append(path)
    return found


def _is_store(store_dir: str) -> bool:
    # After a checkout of a commit from before the store existed, git leaves .taskstore/
    # behind (its cache files are untracked) without .version. Opening that as a store
    # would write .version and .gitignore, untracked files that make a checkout of any
    # branch with the store refuse ("would be overwritten"): hooks open only a real store.
    from .paths import VERSION_NAME

    return os.path.isfile(os.path.join(store_dir, VERSION_NAME))


def sync_store(store_dir: str) -> int:
    from .probe import cache_is_fresh

    if cache_is_fresh(store_dir):
        return 0
    from .store import Store

    with Store.open_dir(store_dir, create=False) as store:
        if not store.is_stale():
            return 0
        for result in store.sync():
            if result.action == "conflict":
                path = os.path.relpath(store.file_path(result.collection))
                _say(
                    "warning",
                    f"{path} holds conflict markers: run `git taskstore resolve "
                    f"{path}`, then `git add` it",
                )
    return 0


def sync_openspec(store_dir: str, repo: Repo | None = None) -> None:
    """Sync the OpenSpec folders the store mirrors (if it mirrors any) after git changed
    them; with ``repo`` (pre-commit), first make sure the sync reads what the commit will
    hold, then stage what it wrote: a commit holds files and records that agree."""
    from .openspec import CONFIG_NAME

    # PERF: most stores mirror no OpenSpec folder; their hooks import nothing more.
    if not os.path.lexists(os.path.join(store_dir, CONFIG_NAME)):
        return
    from .openspec import CHANGES, FILES, HISTORY, TASKS, config, lastsync

    top = os.path.dirname(store_dir)
    # PERF: stat alone tells whether anything moved; most commits and checkouts touch
    # no OpenSpec file and no OpenSpec record, and then the store is not opened.
    roots = config.load(store_dir).roots
    needed = lastsync.needs_sync(store_dir, top, roots)
    # A commit of OpenSpec files takes the records that describe them, written by an
    # earlier sync (`openspec done`, the watcher), even when nothing is left to sync.
    staged = repo is not None and _openspec_staged(repo, top, roots)
    if not needed and not staged:
        return
    if repo is not None and not _commit_holds_the_work_tree(repo, top, roots):
        return
    records = [os.path.join(store_dir, f"{n}.jsonl") for n in (CHANGES, TASKS, HISTORY, FILES)]
    report = None
    if needed:
        from .openspec.service import OpenSpecSync
        from .store import Store

        # Not debounced, whatever the environment says: what the sync writes must be in
        # the files when they are staged.
        with Store.open_dir(store_dir, create=False, debounce_ms=0) as store:
            report = OpenSpecSync(store).sync(trigger="hook")
        _warn_of(report)
    if repo is None:
        return
    from . import git

    written = (
        []
        if report is None
        else [os.path.join(top, p) for r in report.changes for p in r.files_written]
    )
    paths = [p for p in written + records if os.path.exists(p)]
    if paths:
        git.run_git("add", "--", *paths, cwd=repo.top)
    if written:
        _say("note", f"OpenSpec sync: staged {len(written)} file(s) it wrote, and the records")


def _openspec_staged(repo: Repo, top: str, roots: list[str]) -> bool:
    """Whether the commit changes a file under the OpenSpec roots."""
    from . import git

    folders = [os.path.relpath(os.path.join(top, r), repo.top) for r in roots]
    diff = git.run_git("diff", "--cached", "--quiet", "--", *folders, cwd=repo.top, check=False)
    return diff.returncode == 1


def _warn_of(report: SyncReport) -> None:
    for result in report.changes:
        if result.conflicts:
            units = ", ".join(c["unit"] for c in result.conflicts)
            _say(
                "warning",
                f"OpenSpec change {result.change}: conflict on {units}; see "
                f"`git taskstore openspec status`",
            )
        elif result.error:
            _say("warning", f"OpenSpec change {result.change}: {result.error}")


def _commit_holds_the_work_tree(repo: Repo, top: str, roots: list[str]) -> bool:
    """Whether the commit will hold the OpenSpec files as the work tree has them: then a
    sync reads what is committed, and staging what it writes adds nothing else. Not so
    for a commit of named paths (git commits a temporary index) or with unstaged edits
    or untracked files under the roots: the sync is left to the next commit, said."""
    from . import git

    index = os.path.basename(os.environ.get("GIT_INDEX_FILE", ""))
    if index.startswith("next-index"):
        _say("note", "OpenSpec not synced for a commit of named paths; `git commit` syncs it")
        return False
    folders = [os.path.relpath(os.path.join(top, r), repo.top) for r in roots]
    status = git.run_git("status", "--porcelain", "-z", "-uall", "--", *folders, cwd=repo.top)
    entries = iter(status.stdout.decode("utf-8", "replace").split("\0"))
    unstaged = []
    for entry in entries:
        if entry[:1] in ("R", "C"):
            next(entries, None)  # the path it was renamed or copied from
        # The work tree differs from the index, for a file the sync reads (an editor's
        # swap file or a killed write's temp file beside them does not count).
        if len(entry) > 3 and entry[1] != " " and _read_by_sync(entry[3:]):
            unstaged.append(entry[3:])
    if not unstaged:
        return True
    more = f" and {len(unstaged) - 3} more" if len(unstaged) > 3 else ""
    shown = ", ".join(unstaged[:3]) + more
    _say(
        "warning",
        f"OpenSpec files not staged ({shown}): records not synced into this commit; "
        "stage them, or run `git taskstore openspec sync`",
    )
    return False


def _read_by_sync(path: str) -> bool:
    from .openspec import MARKDOWN

    name = path.rsplit("/", 1)[-1]
    return name in (*MARKDOWN, ".openspec.yaml") or (name == "spec.md" and "/specs/" in path)


def pre_commit(store_dir: str) -> int:
    from . import git
    from .probe import has_pending

    repo = git.find_repo(os.getcwd())
    if repo is None:
        return 0
    prefix = os.path.relpath(store_dir, repo.top).replace(os.sep, "/")
    # PERF: the store is opened only to export pending writes; most commits have none.
    if _is_store(store_dir) and has_pending(store_dir):
        flush_pending(repo, store_dir, prefix)
    if _is_store(store_dir):
        try:
            sync_openspec(store_dir, repo)
        except Exception as exc:  # the check of the staged files below must still run
            _say("warning", f"OpenSpec sync skipped: {type(exc).__name__}: {exc}")
    paths = [p for p in git.staged_files(repo, prefix) if p.endswith(".jsonl")]
    if not paths:
        return 0
    staged = git.staged_contents(repo, paths)
    if _stage_appended(repo, staged):
        staged = git.staged_contents(repo, paths)
    from .maintenance import problems_in

    problems = []
    for path, data in staged.items():
        problems.extend(problems_in(path, data))
    if not problems:
        return 0
    for problem in problems:
        sys.stderr.write(f"error: {problem}\n")
    sys.stderr.write(
        "git-taskstore: commit refused: the staged JSONL above would break the store "
        "(fix the lines, or `git taskstore resolve` conflicts, then `git add`; "
        "bypass with `git commit --no-verify`)\n"
    )
    return 1


def _stage_appended(repo: Repo, staged: dict[str, bytes]) -> bool:
    """Stage the lines appended to a staged JSONL file since it was staged: a debounced
    write exported between `git add` and `git commit` (or any write in that gap) goes
    into the commit with the lines staged before it. A file changed other than by
    appending stays as it was staged. True if anything was staged."""
    from . import git

    grown = []
    for path, data in staged.items():
        try:
            with open(os.path.join(repo.top, path), "rb") as handle:
                now = handle.read()
        except OSError:
            continue
        if len(now) > len(data) and now.startswith(data):
            grown.append(path)
    if not grown:
        return False
    git.run_git("add", "--", *grown, cwd=repo.top)
    _say("note", f"staged the writes appended since `git add` to {', '.join(grown)}")
    return True


def flush_pending(repo: Repo, store_dir: str, prefix: str) -> None:
    """Export debounced writes and stage the files they went to: a commit never misses a
    write that was acknowledged before it."""
    from . import git
    from .store import Store

    with Store.open_dir(store_dir, create=False) as store:
        # opening the store exports pending writes already (exported_at_open): this
        # saw nothing pending, staged nothing, and the commit missed those writes.
        exported = dict(store.exported_at_open)
        for name, count in store.flush_each().items():
            exported[name] = exported.get(name, 0) + count
    if not exported:
        return
    pending = sorted(exported)
    paths = [f"{prefix}/{name}.jsonl" for name in pending]
    git.run_git("add", "--", *paths, cwd=repo.top)
    _say("note", f"exported and staged pending writes of {', '.join(pending)}")


def pre_push(store_dir: str) -> int:
    from . import git
    from .store import Store
    from .taskmodel import CHECKS

    with Store.open_dir(store_dir, create=False) as store:
        problems = store.check(quick=True, checks=CHECKS)
    if not problems:
        return 0
    for problem in problems:
        sys.stderr.write(f"warning: {problem}\n")
    repo = git.find_repo(os.getcwd())
    if repo is not None and repo.config_bool("taskstore.prePushBlock"):
        _say(
            "error",
            "push refused: `git taskstore check` found the problems above "
            "(taskstore.prePushBlock is true)",
        )
        return 1
    _say("warning", "pushing anyway; set `git config taskstore.prePushBlock true` to refuse")
    return 0


def run_legacy(hook_dir: str | None, hook: str, args: Sequence[str], stdin: bytes | None) -> int:
    """Run the hook that was installed before ours, if any; its exit code."""
    if hook_dir is None:
        return 0
    legacy = os.path.join(hook_dir, hook + LEGACY_SUFFIX)
    if not os.access(legacy, os.X_OK) or os.path.isdir(legacy):
        return 0
    import subprocess

    env = {**os.environ, ENV_RUNNING_LEGACY: "1"}
    try:
        return subprocess.run([legacy, *args], input=stdin, env=env, check=False).returncode
    except OSError as exc:
        if exc.errno != errno.ENOEXEC:
            raise
    # No #! line: git itself runs such a hook with the shell, and so does this.
    return subprocess.run(["/bin/sh", legacy, *args], input=stdin, env=env, check=False).returncode


def checkout_left_store_alone(store_dir: str, args: Sequence[str]) -> bool:
    """post-checkout OLD NEW 1: git changed only the files that differ between the two
    commits, so when the store's are the same in both the cache has nothing to catch up.

    A file checkout (flag 0) or a first checkout (a clone, a new worktree: OLD is null)
    always syncs. A forced checkout that drops local edits of the store is not seen here;
    the next read catches it, as every read checks freshness.
    """
    if len(args) != 3 or args[2] != "1" or args[0] in ("", NULL_COMMIT):
        return False
    if args[0] == args[1]:
        return True
    from .git import run_git

    diff = run_git(
        "diff", "--quiet", args[0], args[1], "--", store_dir, cwd=os.getcwd(), check=False
    )
    return diff.returncode == 0


def run(hook: str, args: Sequence[str]) -> int:
    """Do what ``hook`` does for every store it guards; the worst exit code."""
    code = 0
    for store_dir in _store_dirs():
        code = max(code, run_for(store_dir, hook, args))
    return code


def run_for(store_dir: str, hook: str, args: Sequence[str]) -> int:
    if hook == "pre-commit":
        return pre_commit(store_dir)
    if not _is_store(store_dir):
        return 0
    if hook == "pre-push":
        return pre_push(store_dir)
    if not (hook == "post-checkout" and checkout_left_store_alone(store_dir, args)):
        sync_store(store_dir)
    try:
        sync_openspec(store_dir)
    except Exception as exc:  # said, and git goes on
        _say("warning", f"OpenSpec sync skipped: {type(exc).__name__}: {exc}")
    return 0


def _read_stdin(hook: str) -> bytes | None:
    if hook not in STDIN_HOOKS or sys.stdin is None:
        return None
    try:
        return sys.stdin.buffer.read()
    except (OSError, ValueError):
        return b""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    hook_dir = None
    if len(args) >= 2 and args[0] == "--hook-dir":
        hook_dir, args = args[1], args[2:]
    if os.environ.get(ENV_RUNNING_LEGACY):
        return 0  # the run that started the kept hook does the work
    if not args or args[0] not in HOOKS:
        _say("warning", f"unknown hook {args[0] if args else '(none)'!r}; nothing done")
        return 0
    hook, hook_args = args[0], args[1:]
    stdin = _read_stdin(hook)
    try:
        code = run_legacy(hook_dir, hook, hook_args, stdin)
    except OSError as exc:  # not a script the OS can start: the user's hook, the user's fix
        _say("error", f"{hook}{LEGACY_SUFFIX} could not run ({exc.strerror}): fix or remove it")
        code = 1
    if code != 0 and hook in BLOCKING_HOOKS:
        return code
    try:
        ours = run(hook, hook_args)
    except Exception as exc:  # a hook must never break git because of us
        _say("warning", f"{hook} hook skipped: {type(exc).__name__}: {exc}")
        ours = 0
    return code or ours


if __name__ == "__main__":
    raise SystemExit(main())
