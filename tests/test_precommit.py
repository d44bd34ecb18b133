"""The hooks of .pre-commit-hooks.yaml, run by the real pre-commit framework.

``pre-commit try-repo`` against this repository, as a user tries it before pinning a rev:
it clones the repository, builds a virtualenv, pip-installs the package into it and runs
the hook in a temporary git repository. When the work tree has changes, try-repo runs on
a committed snapshot of it instead (see hooks_source: try-repo itself would miss untracked
files). try-repo keeps its environments in a throwaway folder of its own, whatever
PRE_COMMIT_HOME says, so each call builds one (several seconds each). The last test pins
the same source in a .pre-commit-config.yaml, installs the framework's git hooks and
drives real commits, pushes, checkouts, merges and amends: that one builds its
environment once per session, in a session-scoped PRE_COMMIT_HOME.

pip needs its index: PIP_* variables pass through the sealed environment as they are,
and the per-user pip config that the sealed HOME hides is copied into PIP_* variables of
the framework's processes.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from testing import cli, commit_all, git, init_repo
from testing.sealed import outside

from git_taskstore.paths import UNTRACKED_NAMES

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 600  # one environment build, with pip fetching packages, on a slow machine

pytestmark = pytest.mark.slow

TryRepo = Callable[..., subprocess.CompletedProcess[str]]

BASE_MS = 1_704_067_200_000


def _is_repository_top(path: Path) -> bool:
    proc = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and Path(proc.stdout.strip()).resolve() == path


if not _is_repository_top(REPO):
    pytest.skip(
        f"{REPO} is not a git checkout: pre-commit sources hooks from a git repository",
        allow_module_level=True,
    )


# --- the environment of the framework -------------------------------------------------------


def _user_pip_settings() -> dict[str, str]:
    """The per-user pip config (which the sealed HOME hides) as PIP_* variables."""
    if os.environ.get("PIP_CONFIG_FILE"):
        return {}  # pip reads that file instead of the per-user one: nothing was lost
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    # HOME and XDG_CONFIG_HOME as they were before the seal: where the user's pip config is.
    for name, value in outside().items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "--user", "list"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {}  # no pip in this interpreter: the framework's own pip reads nothing more
    # Lines are section.key='value'; "global" applies to every command, "install" is
    # what the framework runs (and wins over global, as in pip).
    found: dict[str, dict[str, str]] = {"global": {}, "install": {}}
    for line in proc.stdout.splitlines():
        key, sep, raw = line.partition("=")
        section, dot, name = key.partition(".")
        if not (sep and dot) or section not in found:
            continue
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        found[section]["PIP_" + name.upper().replace("-", "_")] = str(value)
    return {**found["global"], **found["install"]}


@pytest.fixture(scope="session")
def framework_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The sealed environment plus what pre-commit and its pip need."""
    env = dict(os.environ)
    for key, value in _user_pip_settings().items():
        env.setdefault(key, value)  # a PIP_* variable already set wins, as it does in pip
    env["PRE_COMMIT_HOME"] = str(tmp_path_factory.mktemp("pre-commit-home"))
    # The framework's output must not depend on the terminal; hooks see no tty anyway.
    env["PRE_COMMIT_COLOR"] = "never"
    return env


@pytest.fixture(scope="session")
def hooks_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(repo, rev) to source the hooks from: this repository at HEAD when its work tree
    is clean (as in CI), else a session-scoped snapshot of the work tree committed in a
    new repository.

    try-repo itself adds uncommitted changes to tracked files, but not untracked files:
    a new module not yet added to git would be missing from the package it installs
    (and the sync hook, which never fails, would pass while doing nothing). The snapshot
    holds every file git would not ignore, so both try-repo and a pinned config see the
    work tree as it is; pinned, the framework builds its environment once per session.
    """
    head = git(REPO, "rev-parse", "HEAD").strip()
    dirty = git(REPO, "status", "--porcelain", "--untracked-files=all")
    if not dirty.strip():
        return str(REPO), head
    snapshot = init_repo(tmp_path_factory.mktemp("hooks-source") / "git-taskstore")
    listed = git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in sorted(set(filter(None, listed.split("\0")))):
        src, dst = REPO / name, snapshot / name
        if not os.path.lexists(src):
            continue  # deleted in the work tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_file():
            shutil.copy2(src, dst)
    commit_all(snapshot, f"the work tree of {REPO} at {head[:12]} with its changes")
    return str(snapshot), git(snapshot, "rev-parse", "HEAD").strip()


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )


def shown(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


@pytest.fixture
def try_repo(framework_env: dict[str, str], hooks_source: tuple[str, str]) -> TryRepo:
    """``pre-commit try-repo <this repository> HOOK ARGS...`` run in ``cwd`` (the
    snapshot of its work tree when it has changes: see hooks_source)."""
    source = hooks_source[0]

    def call(cwd: Path, hook: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "pre_commit", "try-repo", source, hook, *args]
        return run(argv, cwd, framework_env)

    return call


# --- stores -----------------------------------------------------------------------------------


def record(number: int, **fields: object) -> str:
    stamp = BASE_MS + number * 1000
    body = {
        "id": f"task-{number:03d}",
        "title": f"task {number}",
        "status": "todo",
        "created_at": stamp,
        "updated_at": stamp,
        **fields,
    }
    return json.dumps(body, separators=(",", ":"))


# What the store itself writes: a sync that had to add a name would modify a tracked
# file, which pre-commit reports as a failed hook ("files were modified by this hook").
GITIGNORE = "".join(name + "\n" for name in UNTRACKED_NAMES)


def write_store(repo: Path, lines: list[str], name: str = "tasks") -> Path:
    store = repo / ".taskstore"
    store.mkdir(exist_ok=True)
    (store / ".gitignore").write_text(GITIGNORE)
    (store / ".version").write_text("1\n")
    path = store / f"{name}.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def conflicted_lines() -> list[str]:
    """Lines 1-2 valid, conflict markers on lines 3, 5 and 7."""
    return [
        record(1),
        record(2),
        "<<<<<<< ours",
        record(3, title="ours"),
        "=======",
        record(3, title="theirs"),
        ">>>>>>> theirs",
    ]


@pytest.fixture
def valid_repo(tmp_path: Path) -> Path:
    repo = init_repo(tmp_path / "work")
    write_store(repo, [record(n) for n in range(1, 4)])
    (repo / "README").write_text("a project with a task store\n")
    commit_all(repo, "store")
    return repo


def cache_files(repo: Path) -> list[Path]:
    return sorted((repo / ".taskstore").glob("taskstore.db*"))


def drop_cache(repo: Path) -> None:
    for path in cache_files(repo):
        path.unlink()


def freshness(repo: Path) -> dict[str, tuple[str, int]]:
    """{collection: (freshness, records)} from `status`, which does not sync."""
    result = cli("status", "--json", cwd=repo)
    assert result.code == 0, result
    collections = json.loads(result.out)["collections"]
    return {c["name"]: (c["freshness"], c["records"]) for c in collections}


# --- try-repo: taskstore-check ------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["pre-commit", "pre-push"])
def test_try_repo_check_passes_on_a_valid_store(
    valid_repo: Path, try_repo: TryRepo, stage: str
) -> None:
    proc = try_repo(valid_repo, "taskstore-check", "--all-files", "--hook-stage", stage)
    assert proc.returncode == 0, shown(proc)
    assert re.search(r"^taskstore check\.+Passed$", proc.stdout, re.M), shown(proc)


@pytest.mark.parametrize("stage", ["pre-commit", "pre-push"])
def test_try_repo_check_fails_naming_file_and_line(
    valid_repo: Path, try_repo: TryRepo, stage: str
) -> None:
    # A second collection with a line that is not JSON; both only staged (--all-files
    # means the files git tracks, the index included).
    write_store(valid_repo, conflicted_lines())
    write_store(valid_repo, [record(1), "{not json", record(2)], name="plans")
    git(valid_repo, "add", "-A")
    proc = try_repo(valid_repo, "taskstore-check", "--all-files", "--hook-stage", stage)
    assert proc.returncode == 1, shown(proc)
    assert re.search(r"^taskstore check\.+Failed$", proc.stdout, re.M), shown(proc)
    for line in (3, 5, 7):
        assert re.search(
            rf"^\.taskstore/tasks\.jsonl:{line}: .*conflict marker.*git taskstore resolve",
            proc.stdout,
            re.M,
        ), shown(proc)
    assert re.search(r"^\.taskstore/plans\.jsonl:2: ", proc.stdout, re.M), shown(proc)
    assert ".taskstore/plans.jsonl:1:" not in proc.stdout
    assert ".taskstore/plans.jsonl:3:" not in proc.stdout


# --- try-repo: taskstore-sync -------------------------------------------------------------------


def test_try_repo_sync_post_checkout_builds_the_cache(valid_repo: Path, try_repo: TryRepo) -> None:
    drop_cache(valid_repo)
    head = git(valid_repo, "rev-parse", "HEAD").strip()
    proc = try_repo(
        valid_repo,
        "taskstore-sync",
        "--hook-stage",
        "post-checkout",
        "--from-ref",
        head,
        "--to-ref",
        head,
        "--checkout-type",
        "1",
    )
    assert proc.returncode == 0, shown(proc)
    # Passed, not "(no files to check)Skipped": post-* stages hand hooks no file names,
    # so the hook runs only because it is always_run.
    assert re.search(r"^taskstore sync\.+Passed$", proc.stdout, re.M), shown(proc)
    assert cache_files(valid_repo), "the hook did not sync the store"
    assert freshness(valid_repo) == {"tasks": ("fresh", 3)}


def test_try_repo_sync_post_merge_warns_on_conflicts_and_passes(
    valid_repo: Path, try_repo: TryRepo
) -> None:
    write_store(valid_repo, conflicted_lines(), name="plans")
    commit_all(valid_repo, "a conflicted collection beside a good one")
    drop_cache(valid_repo)
    proc = try_repo(
        valid_repo,
        "taskstore-sync",
        "--hook-stage",
        "post-merge",
        "--is-squash-merge",
        "0",
        "--verbose",
    )
    assert proc.returncode == 0, shown(proc)
    assert re.search(r"^taskstore sync\.+Passed$", proc.stdout, re.M), shown(proc)
    assert ".taskstore/plans.jsonl holds conflict markers" in proc.stdout, shown(proc)
    assert freshness(valid_repo)["tasks"] == ("fresh", 3)


# --- the framework's hooks installed in a clone ----------------------------------------------


@pytest.fixture
def framework_repo(
    tmp_path: Path, framework_env: dict[str, str], hooks_source: tuple[str, str]
) -> Path:
    """A clone with a store, a bare remote as origin, and the framework's five hook types
    installed from a config pinning this repository's snapshot."""
    source, rev = hooks_source
    repo = init_repo(tmp_path / "work")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    (repo / ".pre-commit-config.yaml").write_text(
        "default_install_hook_types: [pre-commit, pre-push, post-checkout, post-merge, "
        "post-rewrite]\n"
        "repos:\n"
        f"-   repo: {json.dumps(source)}\n"
        f"    rev: {rev}\n"
        "    hooks:\n"
        "    -   id: taskstore-check\n"
        "    -   id: taskstore-sync\n"
    )
    pre_commit = [sys.executable, "-m", "pre_commit"]
    for args in (["install"], ["install-hooks"]):
        proc = run([*pre_commit, *args], repo, framework_env)
        assert proc.returncode == 0, shown(proc)
    for hook in ("pre-commit", "pre-push", "post-checkout", "post-merge", "post-rewrite"):
        assert "pre-commit" in (repo / ".git" / "hooks" / hook).read_text()
    return repo


def test_framework_hooks_guard_commits_and_pushes_and_sync_the_cache(
    framework_repo: Path, framework_env: dict[str, str]
) -> None:
    repo, env = framework_repo, framework_env

    def git_run(*args: str) -> subprocess.CompletedProcess[str]:
        # git runs hooks with their stdout sent to its stderr: read both as one.
        proc = run(["git", *args], repo, env)
        proc.stdout, proc.stderr = proc.stdout + proc.stderr, ""
        return proc

    # A valid store commits and pushes; the check ran on the staged JSONL file.
    write_store(repo, [record(1), record(2)])
    git_run("add", "-A")
    proc = git_run("commit", "-m", "store")
    assert proc.returncode == 0, shown(proc)
    assert re.search(r"^taskstore check\.+Passed$", proc.stdout, re.M), shown(proc)
    proc = git_run("push", "-q", "origin", "main")
    assert proc.returncode == 0, shown(proc)

    # Conflict markers: the commit is refused, naming file and line; HEAD stays.
    head = git(repo, "rev-parse", "HEAD")
    write_store(repo, conflicted_lines())
    git_run("add", "-A")
    proc = git_run("commit", "-m", "conflicted")
    assert proc.returncode == 1, shown(proc)
    assert re.search(r"^\.taskstore/tasks\.jsonl:3: .*conflict marker", proc.stdout, re.M), shown(
        proc
    )
    assert git(repo, "rev-parse", "HEAD") == head

    # Committed anyway (--no-verify): the push is refused, naming file and line.
    proc = git_run("commit", "-q", "--no-verify", "-m", "conflicted")
    assert proc.returncode == 0, shown(proc)
    proc = git_run("push", "-q", "origin", "main")
    assert proc.returncode != 0, shown(proc)
    assert re.search(r"^\.taskstore/tasks\.jsonl:5: ", proc.stdout, re.M), shown(proc)
    assert git(repo, "ls-remote", "origin", "main").split()[0] == head.strip()
    git_run("reset", "-q", "--hard", "HEAD~1")

    # post-checkout: a branch with one more record; the hook leaves the cache fresh.
    drop_cache(repo)
    proc = git_run("checkout", "-q", "-b", "feature")
    assert proc.returncode == 0, shown(proc)
    assert freshness(repo) == {"tasks": ("fresh", 2)}
    write_store(repo, [record(1), record(2), record(3)])
    git_run("commit", "-q", "-am", "one more task")
    drop_cache(repo)
    proc = git_run("checkout", "-q", "main")
    assert proc.returncode == 0, shown(proc)
    assert freshness(repo) == {"tasks": ("fresh", 2)}

    # post-merge
    drop_cache(repo)
    proc = git_run("merge", "-q", "--no-ff", "--no-edit", "feature")
    assert proc.returncode == 0, shown(proc)
    assert freshness(repo) == {"tasks": ("fresh", 3)}

    # post-rewrite (amend; a rebase ends there too, with "rebase")
    drop_cache(repo)
    proc = git_run("commit", "-q", "--amend", "--no-edit")
    assert proc.returncode == 0, shown(proc)
    assert freshness(repo) == {"tasks": ("fresh", 3)}
