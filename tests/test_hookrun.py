"""hookrun.py: what each hook does when git runs it, the kept hook first, git never broken.

Real repositories wired by `git taskstore init`; git itself runs the installed shims.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testing import cli, commit_all, git, init_repo
from testing.repos import (
    TASKS_REL,
    append_raw,
    assert_broken_commit_refused,
    files_in,
    freshness,
    hooks_dir,
    line,
    new_repo,
    ok,
    on_branch,
    path_without_git_taskstore,
    run_git,
    seed_t1,
    state,
    tasks_of,
    write_hook,
)

from git_taskstore import Store
from git_taskstore.hooks import HOOKS, LEGACY_SUFFIX

# git runs the hooks by name: they must be this venv's.
pytestmark = pytest.mark.usefixtures("venv_first_on_path")


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "foreign-hook-ran"


def test_failing_foreign_hook_still_blocks(tmp_path: Path, marker: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    folder = hooks_dir(repo)
    original = write_hook(
        folder, "pre-commit", f'echo ran >> "{marker}"\necho "foreign hook says no" >&2\nexit 1'
    )
    ok(cli("init", cwd=repo))
    git(repo, "add", "-A")
    refused = run_git(repo, "commit", "-qm", "init")
    assert refused.code != 0, refused
    assert "foreign hook says no" in refused.err
    assert marker.read_text() == "ran\n"
    assert run_git(repo, "rev-parse", "--verify", "-q", "HEAD").code != 0  # nothing committed
    ok(cli("uninstall-hooks", cwd=repo))
    assert (folder / "pre-commit").read_bytes() == original
    assert not (folder / f"pre-commit{LEGACY_SUFFIX}").exists()


def test_pre_commit_checks_what_is_staged_from_any_folder(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    seed_t1(repo)
    sub = repo / "docs"
    sub.mkdir()
    (sub / "notes.md").write_text("notes\n")
    append_raw(repo, "{not json\n")
    # The broken line is in the work tree only: a commit of something else goes through.
    git(sub, "add", "notes.md")
    ok(run_git(sub, "commit", "-qm", "docs"))
    # Staged from a subfolder, the broken file is refused, and so is a partial commit of it.
    git(sub, "add", "-A", "..")
    refused = run_git(sub, "commit", "-qm", "broken")
    assert refused.code != 0 and f"{TASKS_REL}:3" in refused.err, refused
    git(sub, "reset", "-q")
    refused = run_git(sub, "commit", "-qm", "broken", "--", f"../{TASKS_REL}")
    assert refused.code != 0 and f"{TASKS_REL}:3" in refused.err, refused
    # --no-verify is the documented bypass.
    ok(run_git(sub, "commit", "-qam", "broken on purpose", "--no-verify"))


def test_checkout_and_rebase_leave_the_cache_fresh(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    seed_t1(repo)
    with on_branch(repo, "feature", "main") as s:
        tasks_of(s).put({"id": "t1", "status": "done"}, merge=True)
        tasks_of(s).put({"id": "t3", "title": "feature"})
    assert freshness(repo) == {"tasks": "fresh"}
    git(repo, "checkout", "-q", "main")
    assert freshness(repo) == {"tasks": "fresh"}
    assert set(state(repo)) == {"t1", "t2"}
    with on_branch(repo, "main") as s:
        tasks_of(s).put({"id": "t1", "title": "A"}, merge=True)
    git(repo, "checkout", "-q", "feature")
    assert freshness(repo) == {"tasks": "fresh"}
    ok(run_git(repo, "rebase", "main"))
    assert freshness(repo) == {"tasks": "fresh"}
    t1 = state(repo)["t1"]
    assert (t1["title"], t1["status"]) == ("A", "done")

    # Without the hooks the same checkout leaves the cache stale: the checks above bite.
    ok(cli("uninstall-hooks", cwd=repo))
    git(repo, "checkout", "-q", "main")
    assert freshness(repo) == {"tasks": "stale"}


def test_checkout_of_a_commit_without_the_store(tmp_path: Path) -> None:
    """An old branch (or a bisect step) from before the store: there and back again."""
    repo = init_repo(tmp_path / "repo")
    (repo / "README").write_text("old\n")
    commit_all(repo, "before the store")
    git(repo, "branch", "old")
    ok(cli("init", cwd=repo))
    seed_t1(repo)
    before = state(repo)

    git(repo, "checkout", "-q", "old")
    # Only the untracked cache is left: no store file was written back by a hook.
    assert not (repo / ".taskstore" / ".version").exists()
    assert not (repo / ".taskstore" / ".gitignore").exists()
    (repo / "README").write_text("old, edited\n")
    git(repo, "commit", "-qam", "work on the old branch")  # pre-commit runs here too
    assert not (repo / ".taskstore" / ".version").exists()

    ok(run_git(repo, "checkout", "-q", "main"))
    assert freshness(repo) == {"tasks": "fresh"}
    assert state(repo) == before
    assert git(repo, "status", "--porcelain") == ""


def test_pre_push_warns_and_blocks_only_when_asked(tmp_path: Path, marker: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    repo = new_repo(tmp_path / "repo")
    # A foreign pre-push hook gets the same stdin as ours (the refs being pushed).
    write_hook(hooks_dir(repo), f"pre-push{LEGACY_SUFFIX}", f'cat >> "{marker}"')
    git(repo, "remote", "add", "origin", str(remote))
    clean = ok(run_git(repo, "push", "-q", "origin", "main"))
    assert "warning" not in clean.err
    assert "refs/heads/main" in marker.read_text()

    seed_t1(repo)
    append_raw(repo, "{not json\n")
    git(repo, "commit", "-q", "--no-verify", "-am", "broken")
    warned = ok(run_git(repo, "push", "-q", "origin", "main"))
    assert f"{TASKS_REL}:3" in warned.err and "prePushBlock" in warned.err, warned
    assert git(remote, "rev-parse", "main") == git(repo, "rev-parse", "main")

    git(repo, "config", "taskstore.prePushBlock", "true")
    git(repo, "commit", "-q", "--allow-empty", "-m", "more")
    blocked = run_git(repo, "push", "-q", "origin", "main")
    assert blocked.code != 0, blocked
    assert "push refused" in blocked.err and f"{TASKS_REL}:3" in blocked.err, blocked
    assert git(remote, "rev-parse", "main") != git(repo, "rev-parse", "main")


def break_hooks(repo: Path) -> None:
    """Point every installed hook at an interpreter and a hookrun.py that are gone."""
    folder = hooks_dir(repo)
    for name in HOOKS:
        text = (folder / name).read_text().splitlines(keepends=True)
        text = [
            "INSTALL_PYTHON='/nonexistent/python'\n"
            if x.startswith("INSTALL_PYTHON=")
            else "HOOKRUN='/nonexistent/hookrun.py'\n"
            if x.startswith("HOOKRUN=")
            else x
            for x in text
        ]
        (folder / name).write_text("".join(text))


def test_hooks_keep_git_working_when_git_taskstore_is_gone(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    break_hooks(repo)
    env = {"PATH": path_without_git_taskstore()}
    append_raw(repo, line({"id": "t9", "title": "by hand", "updated_at": 1}))
    git(repo, "add", "-A")
    committed = ok(run_git(repo, "commit", "-m", "no tool", env=env))
    assert "warning: git-taskstore is not installed" in committed.err, committed
    switched = ok(run_git(repo, "checkout", "-b", "other", env=env))
    assert "post-checkout hook did nothing" in switched.err, switched


def test_hooks_fall_back_to_git_taskstore_on_path(tmp_path: Path) -> None:
    """A venv that moved: the recorded interpreter is gone, `git-taskstore` on PATH works."""
    repo = new_repo(tmp_path / "repo")
    break_hooks(repo)
    assert_broken_commit_refused(repo)
    seed_t1(repo)
    with on_branch(repo, "feature", "main") as s:
        tasks_of(s).put({"id": "t1", "status": "done"}, merge=True)
    git(repo, "checkout", "-q", "main")
    assert freshness(repo) == {"tasks": "fresh"}


def test_a_failing_kept_hook_gives_its_exit_code(tmp_path: Path, marker: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    seed_t1(repo)
    with on_branch(repo, "feature", "main") as s:
        tasks_of(s).put({"id": "t3", "title": "feature"})
    write_hook(hooks_dir(repo), f"post-checkout{LEGACY_SUFFIX}", f'echo "$@" >> "{marker}"\nexit 5')
    # git's checkout fails with its post-checkout hook; ours still syncs after it.
    switched = run_git(repo, "checkout", "-q", "main")
    assert switched.code != 0, switched
    assert marker.read_text().split()[2] == "1"
    assert freshness(repo) == {"tasks": "fresh"}
    assert set(state(repo)) == {"t1", "t2"}
    head = git(repo, "rev-parse", "HEAD").strip()
    direct = subprocess.run([hooks_dir(repo) / "post-checkout", head, head, "1"], cwd=repo)
    assert direct.returncode == 5  # the kept hook's own code, as git is given it
    # pre-push: the kept hook's refusal is the push's, and its code is kept.
    git(tmp_path, "init", "-q", "--bare", str(tmp_path / "remote.git"))
    write_hook(hooks_dir(repo), f"pre-push{LEGACY_SUFFIX}", "cat >/dev/null\nexit 3")
    pushed = run_git(repo, "push", "-q", str(tmp_path / "remote.git"), "main")
    assert pushed.code != 0 and "failed to push" in pushed.err, pushed


def test_post_rewrite_kept_hook_gets_the_rewritten_commits(tmp_path: Path, marker: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    write_hook(
        hooks_dir(repo),
        f"post-rewrite{LEGACY_SUFFIX}",
        f'echo "$1" >> "{marker}"\ncat >> "{marker}"',
    )
    before = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "commit", "-q", "--amend", "-m", "amended")
    after = git(repo, "rev-parse", "HEAD").strip()
    assert marker.read_text() == f"amend\n{before} {after}\n"


def test_a_kept_hook_that_leads_back_here_does_not_loop(tmp_path: Path) -> None:
    """A copy of our own shim kept aside (or a manager running the whole folder)."""
    repo = new_repo(tmp_path / "repo")
    folder = hooks_dir(repo)
    (folder / f"pre-commit{LEGACY_SUFFIX}").write_bytes((folder / "pre-commit").read_bytes())
    (folder / f"pre-commit{LEGACY_SUFFIX}").chmod(0o755)
    write_hook(folder, f"post-merge{LEGACY_SUFFIX}", f'exec "{folder / "post-merge"}" "$@"')
    assert_broken_commit_refused(repo)
    committed = ok(run_git(repo, "commit", "-q", "--allow-empty", "-m", "fine"))
    assert "warning" not in committed.err
    git(repo, "checkout", "-q", "-b", "side")
    git(repo, "commit", "-q", "--allow-empty", "-m", "side")
    git(repo, "checkout", "-q", "main")
    ok(run_git(repo, "merge", "-q", "--no-ff", "--no-edit", "side"))


def test_the_kept_hook_still_runs_when_git_taskstore_is_gone(tmp_path: Path, marker: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    write_hook(hooks_dir(repo), "pre-commit", f'echo kept >> "{marker}"\nexit 0')
    ok(cli("init", cwd=repo))
    break_hooks(repo)
    git(repo, "add", "-A")
    committed = ok(
        run_git(repo, "commit", "-qm", "no tool", env={"PATH": path_without_git_taskstore()})
    )
    assert "git-taskstore is not installed" in committed.err
    assert marker.read_text() == "kept\n"
    write_hook(hooks_dir(repo), f"pre-commit{LEGACY_SUFFIX}", 'echo "kept says no" >&2\nexit 1')
    refused = run_git(
        repo, "commit", "-q", "--allow-empty", "-m", "x", env={"PATH": path_without_git_taskstore()}
    )
    assert refused.code == 1 and "kept says no" in refused.err, refused


def test_a_branch_checkout_that_leaves_the_store_alone_does_not_sync(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    seed_t1(repo)
    (repo / "README").write_text("docs\n")
    commit_all(repo, "docs only")
    # A work-tree edit git carries across checkouts of commits whose store is the same.
    append_raw(repo, line({"id": "t9", "title": "by hand", "updated_at": 1}))
    assert freshness(repo) == {"tasks": "stale"}
    git(repo, "checkout", "-q", "HEAD~1")
    git(repo, "checkout", "-q", "-b", "again")
    assert freshness(repo) == {"tasks": "stale"}  # neither checkout opened the store
    # A file checkout changes the store's files itself: that one syncs.
    git(repo, "checkout", "-q", "main", "--", TASKS_REL)
    assert freshness(repo) == {"tasks": "fresh"}


def test_a_hook_with_nothing_to_do_imports_no_store(tmp_path: Path) -> None:
    """Start-up is what a hook costs: a no-op post-checkout stays off the store's imports."""
    repo = new_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD").strip()
    probe = (
        "import sys\n"
        "from git_taskstore.hookrun import main\n"
        f"code = main(['post-checkout', '{head}', '{head}', '1'])\n"
        "heavy = sorted(m for m in ('git_taskstore.store', 'sqlite3', 'pygit2', 'click')"
        " if m in sys.modules)\n"
        "print(code, heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True, check=True
    )
    assert out.stdout == "0 []\n", out
    assert set(HOOKS) <= set(files_in(hooks_dir(repo)))


def test_a_merge_that_left_the_store_alone_opens_no_store(tmp_path: Path) -> None:
    """post-merge and post-rewrite ask probe.py first: a fresh cache costs no store."""
    repo = new_repo(tmp_path / "repo")
    store_dir = repo / ".taskstore"
    for path in store_dir.glob("*.jsonl"):
        a_minute_ago = time.time_ns() - 60 * 10**9
        os.utime(path, ns=(a_minute_ago, a_minute_ago))
    with Store.open_dir(store_dir) as store:
        store.sync()
    probe = (
        "import sys\n"
        "from git_taskstore.hookrun import main\n"
        "codes = [main(['post-merge', '0']), main(['post-rewrite', 'rebase'])]\n"
        "heavy = sorted(m for m in ('git_taskstore.store', 'orjson', 'pygit2', 'click')"
        " if m in sys.modules)\n"
        "print(codes, heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True, check=True
    )
    assert out.stdout == "[0, 0] []\n", out
    assert os.environ.get("TASKSTORE_RUNNING_LEGACY_HOOK") is None


def test_hooks_guard_every_store_init_wired(tmp_path: Path) -> None:
    """`init --store .loopr` beside the default store: conflict markers in either are
    refused at commit, and a merge syncs both caches. (Mutation: hookrun back to the
    default store only: the .loopr commit goes through.)"""
    repo = new_repo(tmp_path / "repo")
    ok(cli("init", "--store", ".loopr", cwd=repo))
    ok(cli("put", "--store", ".loopr", "signals", '{"id": "s1"}', cwd=repo))
    commit_all(repo, "loopr store")
    (repo / ".loopr" / "signals.jsonl").write_bytes(
        b'{"id":"s1"}\n<<<<<<< ours\n{"id":"s2"}\n=======\n{"id":"s3"}\n>>>>>>> theirs\n'
    )
    git(repo, "add", "-A")
    refused = run_git(repo, "commit", "-qm", "markers")
    assert refused.code != 0 and ".loopr/signals.jsonl:2" in refused.err, refused
    git(repo, "checkout", "-q", "--", ".")
    git(repo, "reset", "-q", "--hard")
    git(repo, "checkout", "-q", "-b", "side")
    with Store.open_dir(str(repo / ".loopr")) as store:
        store.collection("signals").put({"id": "s9"})
    commit_all(repo, "side signal")
    git(repo, "checkout", "-q", "main")
    ok(run_git(repo, "merge", "-q", "side"))
    with Store.open_dir(str(repo / ".loopr")) as store:
        assert not store.is_stale()  # post-merge synced the second store too
        assert store.collection("signals").get("s9") is not None


def test_status_reports_hooks_that_cannot_run(tmp_path: Path) -> None:
    """Hooks pointing at an installation that is gone (pip install -e replaced it):
    status says so and how to fix it; install-hooks fixes it. (Mutation: drop the
    hook_can_run check from integration_status: status reports 5/5 installed.)"""
    repo = new_repo(tmp_path / "repo")
    folder = hooks_dir(repo)
    for name in ("pre-commit", "post-merge"):
        path = folder / name
        path.write_text(path.read_text().replace("HOOKRUN=", "HOOKRUN=/gone/hookrun.py#"))
    result = cli("status", cwd=repo)
    assert "unable to run: pre-commit, post-merge" in result.out + result.err, result
    ok(cli("install-hooks", cwd=repo))
    result = cli("status", cwd=repo)
    assert "unable to run" not in result.out + result.err, result
