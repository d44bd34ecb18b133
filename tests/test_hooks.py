"""hooks.py: installing the one hook template, upgrading ours, keeping a foreign hook aside.

Real repositories, real `git taskstore install-hooks` processes, and git itself running
what was installed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from testing import cli, commit_all, git, init_repo
from testing.repos import (
    assert_broken_commit_refused,
    files_in,
    freshness,
    hooks_dir,
    new_repo,
    ok,
    on_branch,
    run_git,
    state,
    tasks_of,
    write_hook,
)

from git_taskstore.hooks import (
    CURRENT_HASH,
    HOOKS,
    LEGACY_SUFFIX,
    PRIOR_HASHES,
    hook_template,
    is_ours,
    render_hook,
    template_hash,
)

# The pre-commit script of the release that shipped five shell scripts (id 5f0d3c2a).
OLD_RELEASE_HOOK = Path(__file__).parent / "fixtures" / "hook-5f0d3c2a"

# git runs the hooks by name: they must be this venv's.
pytestmark = pytest.mark.usefixtures("venv_first_on_path")


def test_the_template_carries_its_own_hash() -> None:
    """Editing the template without a new hash fails here: move the old one to
    PRIOR_HASHES and put template_hash(...) in CURRENT_HASH."""
    template = hook_template()
    assert template_hash(template) == CURRENT_HASH
    assert CURRENT_HASH not in PRIOR_HASHES
    assert b"git-taskstore-hook-id: " + CURRENT_HASH in template


def test_the_rendered_hook_names_this_interpreter(tmp_path: Path) -> None:
    script = render_hook([".taskstore"]).decode()
    assert f"INSTALL_PYTHON={sys.executable}\n" in script
    assert script.count("\n") < 40  # a shim: the logic is hookrun's
    path = tmp_path / "pre-commit"
    path.write_text(script)
    assert is_ours(str(path))
    path.write_text(script.replace(CURRENT_HASH.decode(), "0123abcd"))
    assert not is_ours(str(path))


@pytest.mark.parametrize("name", ["pre-commit", "post-checkout"])
def test_an_old_release_hook_is_upgraded_in_place(tmp_path: Path, name: str) -> None:
    repo = new_repo(tmp_path / "repo", hooks=False)
    folder = hooks_dir(repo)
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(OLD_RELEASE_HOOK.read_bytes())
    (folder / name).chmod(0o755)
    report = json.loads(ok(cli("install-hooks", "--json", cwd=repo)).out)
    assert name in report["written"] and report["kept_aside"] == []
    assert (folder / name).read_bytes() == render_hook([".taskstore"])
    assert not (folder / f"{name}{LEGACY_SUFFIX}").exists()


def test_uninstall_of_an_old_release_puts_the_foreign_hook_back(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", hooks=False)
    folder = hooks_dir(repo)
    original = write_hook(folder, f"pre-commit{LEGACY_SUFFIX}", "exit 0")
    (folder / "pre-commit").write_bytes(OLD_RELEASE_HOOK.read_bytes())
    removed = json.loads(ok(cli("uninstall-hooks", "--json", cwd=repo)).out)
    assert removed["removed"] == ["pre-commit"] and removed["restored"] == ["pre-commit"]
    assert files_in(folder) == {"pre-commit": (original, 0o755)}


def test_install_hooks_twice_is_once(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")  # init installed them
    folder = hooks_dir(repo)
    first = files_in(folder)
    assert sorted(first) == sorted(HOOKS)
    assert all(mode & 0o111 for _, mode in first.values())
    config = (repo / ".git" / "config").read_bytes()
    again = ok(cli("install-hooks", cwd=repo))
    assert "already up to date" in again.out
    assert files_in(folder) == first
    second = json.loads(ok(cli("init", "--json", cwd=repo)).out)
    assert second["changed"] == []
    assert files_in(folder) == first
    assert (repo / ".git" / "config").read_bytes() == config
    assert git(repo, "status", "--porcelain") == ""  # .gitattributes not touched again

    # An older release's hook (ours by its id line) is upgraded in place, not kept aside.
    (folder / "post-merge").write_bytes(first["post-merge"][0] + b"# older release\n")
    upgraded = json.loads(ok(cli("install-hooks", "--json", cwd=repo)).out)
    assert upgraded["written"] == ["post-merge"] and upgraded["kept_aside"] == []
    assert files_in(folder) == first


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "foreign-hook-ran"


def test_foreign_hook_kept_run_and_restored(tmp_path: Path, marker: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    folder = hooks_dir(repo)
    original = write_hook(folder, "pre-commit", f'echo "foreign $#" >> "{marker}"\nexit 0')
    installed = ok(cli("init", cwd=repo))
    assert "pre-taskstore" in installed.out
    assert (folder / f"pre-commit{LEGACY_SUFFIX}").read_bytes() == original
    commit_all(repo, "init taskstore")
    assert marker.read_text() == "foreign 0\n"

    # Reinstalling leaves both files alone; the foreign one still runs first, and ours
    # still refuses a broken file after it.
    before = files_in(folder)
    ok(cli("install-hooks", cwd=repo))
    assert files_in(folder) == before
    assert_broken_commit_refused(repo)
    assert marker.read_text() == "foreign 0\nforeign 0\n"

    removed = ok(cli("uninstall-hooks", cwd=repo))
    assert "put back" in removed.out
    assert files_in(folder) == {"pre-commit": (original, 0o755)}
    commit_all(repo, "after uninstall")
    assert marker.read_text().count("foreign") == 3


def test_install_from_a_subfolder(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", hooks=False)
    assert files_in(hooks_dir(repo)) == {}
    deep = repo / "src" / "deep"
    deep.mkdir(parents=True)
    out = ok(cli("install-hooks", "--json", cwd=deep))
    report = json.loads(out.out)
    assert Path(report["hooks_dir"]) == repo / ".git" / "hooks"
    assert sorted(files_in(repo / ".git" / "hooks")) == sorted(HOOKS)
    status = json.loads(ok(cli("status", "--json", cwd=deep)).out)
    assert all(status["git"]["hooks"].values())
    assert status["git"]["warnings"] == []


@pytest.mark.slow
def test_install_from_a_linked_worktree(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", hooks=False)
    with on_branch(repo, "main") as s:
        tasks_of(s).put({"id": "t1", "title": "a", "status": "open"})
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(wt))
    ok(cli("install-hooks", cwd=wt))
    common = repo / ".git" / "hooks"
    assert sorted(files_in(common)) == sorted(HOOKS)
    assert not (repo / ".git" / "worktrees" / "wt" / "hooks").exists()

    # They run in the worktree: a broken file is refused there...
    assert_broken_commit_refused(wt)
    # ...a merge there is record-level (the driver config is shared) and syncs its cache.
    with on_branch(wt, "feature") as s:
        tasks_of(s).put({"id": "t1", "status": "done"}, merge=True)
    with on_branch(repo, "main") as s:
        tasks_of(s).put({"id": "t1", "title": "A"}, merge=True)
    ok(run_git(wt, "merge", "--no-edit", "main"))
    assert freshness(wt) == {"tasks": "fresh"}
    t1 = state(wt)["t1"]
    assert (t1["title"], t1["status"]) == ("A", "done")


def test_core_hooks_path_refused_with_a_hint_then_honoured(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    git(repo, "config", "core.hooksPath", ".githooks")
    initialised = ok(cli("init", cwd=repo))  # the store and driver still get set up
    assert "core.hooksPath" in initialised.err
    refused = cli("install-hooks", cwd=repo)
    assert refused.code == 1, refused
    assert "core.hooksPath" in refused.err and "--hooks-path" in refused.err, refused
    assert not (repo / ".githooks").exists()
    assert files_in(repo / ".git" / "hooks") == {}

    sub = repo / "sub"
    sub.mkdir()
    ok(cli("install-hooks", "--hooks-path", cwd=sub))
    assert sorted(files_in(repo / ".githooks")) == sorted(HOOKS)
    status = json.loads(ok(cli("status", "--json", cwd=repo)).out)["git"]
    assert all(status["hooks"].values()) and status["warnings"] == []
    assert files_in(repo / ".git" / "hooks") == {}
    git(repo, "add", "-A")
    git(repo, "reset", "-q", "--", ".githooks")
    git(repo, "commit", "-qm", "init")
    assert_broken_commit_refused(repo)


def test_init_refuses_a_linked_gitattributes(tmp_path: Path) -> None:
    """A .gitattributes that is a link (git ignores such a file) is never read through:
    init would copy its target into the repository. (Mutation: drop the islink check in
    ensure_attribute: the outside file's bytes land in .gitattributes.)"""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    secret = tmp_path / "secret"
    secret.write_text("PRIVATE\n")
    os.symlink(secret, repo / ".gitattributes")
    result = cli("init", cwd=repo)
    assert result.code == 1 and "is a symbolic link" in result.err, result
    assert secret.read_text() == "PRIVATE\n" and (repo / ".gitattributes").is_symlink()
