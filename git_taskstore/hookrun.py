"""What the git hooks do: ``python -m git_taskstore.hookrun HOOK [ARGS...]``.

- post-merge, post-rewrite (git has no post-rebase: a rebase ends here with ``rebase``),
  post-checkout: bring the cache up to date; nearly free when nothing changed.
- pre-commit: refuse a staged JSONL file of the store that holds conflict markers or
  lines that do not parse, naming file and line (bypass: ``git commit --no-verify``).
- pre-push: run ``check`` on the store (files the cache read whole and found clean, and
  that have not changed since, are not read again); warn, or refuse when
  ``taskstore.prePushBlock`` is true.

Whatever else goes wrong (git-taskstore broken, a sync failing), a hook warns and exits 0:
git must keep working. No click here: hooks start as fresh processes on every checkout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .git import Repo

SYNC_HOOKS = ("post-merge", "post-rewrite", "post-checkout")
HOOKS = ("pre-commit", "pre-push", *SYNC_HOOKS)


def _say(level: str, message: str) -> None:
    sys.stderr.write(f"git-taskstore: {level}: {message}\n")


def _store_dir() -> str | None:
    from .paths import default_store_dir

    path = default_store_dir()
    return path if os.path.isdir(path) else None


def _is_store(store_dir: str) -> bool:
    # After checking out a commit from before the store existed, git leaves .taskstore/
    # behind (the cache files are untracked), but without .version. Opening it as a store
    # wrote .version and .gitignore into the work tree, untracked files that then made
    # `git checkout` of any branch with the store refuse ("would be overwritten"). Hooks
    # open only a real store.
    from .paths import VERSION_NAME

    return os.path.isfile(os.path.join(store_dir, VERSION_NAME))


def sync_store(store_dir: str) -> int:
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


def pre_commit(store_dir: str) -> int:
    from . import git
    from .maintenance import problems_in

    repo = git.find_repo(os.getcwd())
    if repo is None:
        return 0
    prefix = os.path.relpath(store_dir, repo.top).replace(os.sep, "/")
    if _is_store(store_dir):
        flush_pending(repo, store_dir, prefix)
    paths = [p for p in git.staged_files(repo, prefix) if p.endswith(".jsonl")]
    problems = []
    for path, data in git.staged_contents(repo, paths).items():
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


def run(hook: str) -> int:
    store_dir = _store_dir()
    if store_dir is None:
        return 0
    if hook == "pre-commit":
        return pre_commit(store_dir)
    if not _is_store(store_dir):
        return 0
    if hook == "pre-push":
        return pre_push(store_dir)
    return sync_store(store_dir)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in HOOKS:
        _say("warning", f"unknown hook {args[0] if args else '(none)'!r}; nothing done")
        return 0
    try:
        return run(args[0])
    except Exception as exc:  # a hook must never break git because of us
        _say("warning", f"{args[0]} hook skipped: {type(exc).__name__}: {exc}")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
