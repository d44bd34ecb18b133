"""driver.py: the merge driver's fallbacks and start-up, and the configured merge command.

An internal error is forced by replacing merge_records in this process (our own code, not
git's or the filesystem's); everything else is real git and real files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from testing import cli, git
from testing.repos import (
    TASKS,
    TASKS_REL,
    line,
    new_repo,
    ok,
    on_branch,
    path_without_git_taskstore,
    run_git,
    seed_t1,
    state,
    tasks_of,
)

from git_taskstore import driver, merge

# git runs git-taskstore-merge by name: it must be this venv's.
pytestmark = pytest.mark.usefixtures("venv_first_on_path")

BASE = line({"id": "a", "title": "base", "updated_at": 1})
OURS = BASE + line({"id": "b", "title": "ours", "updated_at": 2})
THEIRS = BASE + line({"id": "c", "title": "theirs", "updated_at": 3})


def three_files(folder: Path) -> list[str]:
    paths = [folder / n for n in ("base", "ours", "theirs")]
    for path, text in zip(paths, (BASE, OURS, THEIRS), strict=True):
        path.write_text(text)
    return [str(p) for p in paths]


def boom(*args: object, **kwargs: object) -> object:
    raise RuntimeError("a bug")


def test_an_internal_error_gives_a_text_merge_with_markers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(new_repo(tmp_path / "repo", hooks=False))
    monkeypatch.setattr(merge, "merge_records", boom)
    paths = three_files(tmp_path)
    assert driver.main([*paths, "7", TASKS_REL]) == 1
    text = Path(paths[1]).read_text()
    assert "<<<<<<<" in text and ">>>>>>>" in text
    assert '"ours"' in text and '"theirs"' in text  # never ours alone
    assert "internal error (RuntimeError: a bug)" in capsys.readouterr().err


def test_when_the_text_merge_fails_too_both_sides_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(merge, "merge_records", boom)
    monkeypatch.setattr(driver, "text_merge", boom)
    paths = three_files(tmp_path)
    assert driver.main([*paths, "9", TASKS_REL]) == 1
    assert Path(paths[1]).read_text() == (
        "<" * 9 + " ours\n" + OURS + "=" * 9 + "\n" + THEIRS + ">" * 9 + " theirs\n"
    )


def test_the_text_merge_is_git_s_three_way_merge(tmp_path: Path) -> None:
    merged = driver.text_merge(b"1\n2\n3\n", b"1\nours\n3\n", b"1\n2\n3\ntheirs\n", "f")
    assert merged == b"1\nours\n3\ntheirs\n"
    conflict = driver.text_merge(b"1\n", b"ours\n", b"theirs\n", "f").decode()
    assert conflict.startswith("<<<<<<<") and "ours\n=======\ntheirs\n>>>>>>>" in conflict


def test_a_clean_merge_imports_neither_pygit2_nor_click(tmp_path: Path) -> None:
    paths = three_files(tmp_path)
    probe = (
        "import sys\n"
        "from git_taskstore.driver import main\n"
        f"code = main({[*paths, '7', TASKS_REL]!r})\n"
        "print(code, sorted(m for m in ('pygit2', 'click') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout == "0 []\n", out
    assert Path(paths[1]).read_text() == OURS + line(
        {"id": "c", "title": "theirs", "updated_at": 3}
    )


def test_merge_without_any_driver_keeps_both_sides_between_markers(tmp_path: Path) -> None:
    """A venv that moved and no git-taskstore-merge on PATH: a conflict, never ours only."""
    repo = new_repo(tmp_path / "repo")
    configured = git(repo, "config", "--get", "merge.taskstore.driver").strip()
    assert "merge-file" not in configured  # one text merge: the driver's
    moved = configured.replace(str(Path(sys.executable).parent), "/nonexistent/venv/bin")
    git(repo, "config", "merge.taskstore.driver", moved)
    seed_t1(repo)
    with on_branch(repo, "left", "main") as s:
        tasks_of(s).put({"id": "t1", "status": "done"}, merge=True)
    with on_branch(repo, "right", "main") as s:
        tasks_of(s).put({"id": "t3", "title": "only on right"})
    git(repo, "checkout", "-q", "left")
    merged = run_git(
        repo, "merge", "--no-edit", "right", env={"PATH": path_without_git_taskstore()}
    )
    assert merged.code != 0 and "CONFLICT" in merged.out, merged
    assert "git-taskstore-merge not found" in merged.err, merged
    text = (repo / TASKS).read_text()
    assert text.startswith("<<<<<<< ours\n") and text.endswith(">>>>>>> theirs\n")
    assert '"t3"' in text and '"done"' in text
    # resolve settles the block record by record; the result is the merge's.
    ok(cli("resolve", cwd=repo))
    git(repo, "add", TASKS_REL)
    ok(run_git(repo, "commit", "--no-edit"))
    merged_state = state(repo)
    assert set(merged_state) == {"t1", "t2", "t3"} and merged_state["t1"]["status"] == "done"
