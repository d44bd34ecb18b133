"""Record history: `git taskstore log` and `diff`, over a real repository with a merge.

The repository is built once per module by real git, with the merge driver configured by
`git taskstore init`, so the merge of the two branches is record-level:

    c1 create t-1, t-2 (tasks), n-1 (notes), s-1 (scratch)
    c2 (feature) t-1 status open -> active; f-1 created
    c3 (main)    t-1 title retitled; t-3 created
    c4 merge feature: t-1 gets both changes (a version neither side had)
    c5 t-2 owner ana -> bo; scratch.jsonl removed
    c6 t-1 deleted (tombstone)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from testing import cli, commit_all, git, init_repo

from git_taskstore import Store
from git_taskstore.errors import NotFoundError, TaskstoreError
from git_taskstore.history import record_diff, record_log


@dataclass(frozen=True)
class Repo:
    path: Path
    c1: str
    c2: str
    c3: str
    c4: str
    c5: str
    c6: str


def _put(repo: Path, collection: str, record: dict[str, object], merge: bool = False) -> None:
    with Store.open(repo) as store:
        store.collection(collection).put(record, merge=merge)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    with pytest.MonkeyPatch.context() as mp:
        # git runs the merge driver as git-taskstore-merge: this interpreter's bin first.
        mp.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
        path = init_repo(tmp_path_factory.mktemp("history") / "repo")
        result = cli("init", "--no-hooks", cwd=path)
        assert result.code == 0, result
        assert git(path, "config", "merge.taskstore.driver").strip()
        _put(path, "tasks", {"id": "t-1", "title": "Write the guide", "status": "open"})
        _put(path, "tasks", {"id": "t-2", "title": "Review", "owner": "ana"})
        _put(path, "notes", {"id": "n-1", "text": "a note"})
        _put(path, "scratch", {"id": "s-1", "text": "draft"})
        c1 = commit_all(path, "create t-1")

        git(path, "checkout", "-q", "-b", "feature")
        _put(path, "tasks", {"id": "t-1", "status": "active"}, merge=True)
        _put(path, "tasks", {"id": "f-1", "title": "From the feature branch"})
        c2 = commit_all(path, "activate t-1")

        git(path, "checkout", "-q", "main")
        _put(path, "tasks", {"id": "t-1", "title": "Write the user guide"}, merge=True)
        _put(path, "tasks", {"id": "t-3", "title": "Third"})
        c3 = commit_all(path, "retitle t-1")

        git(path, "merge", "-q", "--no-edit", "feature")
        c4 = git(path, "rev-parse", "HEAD").strip()
        assert "<<<<<<<" not in (path / ".taskstore" / "tasks.jsonl").read_text()

        _put(path, "tasks", {"id": "t-2", "owner": "bo"}, merge=True)
        git(path, "rm", "-q", ".taskstore/scratch.jsonl")
        c5 = commit_all(path, "hand t-2 to bo")

        with Store.open(path) as store:
            assert store.collection("tasks").delete("t-1")
        c6 = commit_all(path, "delete t-1")
        yield Repo(path, c1, c2, c3, c4, c5, c6)


# --- log -----------------------------------------------------------------------------------


def test_log_lists_every_version_newest_first(repo: Repo) -> None:
    entries = record_log(str(repo.path), None, "t-1")
    assert [e.commit for e in entries[:2]] == [repo.c6, repo.c4]
    assert {e.commit for e in entries[2:4]} == {repo.c2, repo.c3}
    assert entries[4].commit == repo.c1
    assert len(entries) == 5  # c5 touched the file, not t-1
    assert all(e.collection == "tasks" and e.record_id == "t-1" for e in entries)

    deleted, merged, *branches, created = entries
    assert deleted.action == "deleted" and deleted.deleted
    assert deleted.record is not None and deleted.record["deleted"] is True

    # The merge made a version neither parent had: shown against its first parent (main).
    assert merged.action == "changed"
    assert merged.parents == (repo.c3, repo.c2)
    assert merged.changes.changed == {"status": ("open", "active")}
    assert merged.record is not None
    assert (merged.record["title"], merged.record["status"]) == ("Write the user guide", "active")

    by_commit = {e.commit: e for e in branches}
    assert by_commit[repo.c2].changes.changed["status"] == ("open", "active")
    assert by_commit[repo.c3].changes.changed["title"] == (
        "Write the guide",
        "Write the user guide",
    )
    assert "updated_at" in by_commit[repo.c3].changes.changed

    assert created.action == "created"
    assert created.changes.added["title"] == "Write the guide"
    assert created.summary == "create t-1"
    assert created.author_name == "Test Author"
    assert created.author_email == "author@example.com"
    assert created.commit_time == 1767225600  # GIT_COMMITTER_DATE of the sealed env
    assert created.commit_offset == 0


def test_log_limit_keeps_the_newest(repo: Repo) -> None:
    entries = record_log(str(repo.path), None, "t-1", max_count=2)
    assert [e.commit for e in entries] == [repo.c6, repo.c4]


def test_a_merge_that_kept_one_side_is_not_listed(repo: Repo) -> None:
    # f-1 came from the feature branch as it was: the merge made nothing new.
    entries = record_log(str(repo.path), None, "f-1")
    assert [(e.commit, e.action) for e in entries] == [(repo.c2, "created")]


def test_log_finds_a_collection_that_is_gone_at_head(repo: Repo) -> None:
    entries = record_log(str(repo.path), None, "s-1")
    assert [(e.commit, e.action, e.collection) for e in entries] == [
        (repo.c5, "removed", "scratch"),
        (repo.c1, "created", "scratch"),
    ]


def test_log_of_another_collection(repo: Repo) -> None:
    entries = record_log(str(repo.path), None, "n-1", collection="notes")
    assert [e.commit for e in entries] == [repo.c1]
    with pytest.raises(NotFoundError, match="notes/t-1"):
        record_log(str(repo.path), None, "t-1", collection="notes")


def test_log_cli_prints_one_block_per_commit(repo: Repo) -> None:
    result = cli("log", "t-1", cwd=repo.path)
    assert result.code == 0, result
    assert result.err == ""
    blocks = result.out.strip().split("\n\n")
    assert len(blocks) == 5
    assert blocks[0].splitlines() == [
        f"{repo.c6[:7]}  2026-01-01 00:00:00 UTC  Test Author  delete t-1",
        "  deleted",
    ]
    assert blocks[1].splitlines()[0].endswith("Merge branch 'feature' (merge)")
    assert "  status: open -> active" in blocks[1].splitlines()
    assert "  title: Write the guide -> Write the user guide" in result.out
    assert blocks[4].splitlines()[1:3] == ["  created", "  title: Write the guide"]
    assert "hand t-2 to bo" not in result.out


def test_log_cli_json_and_options(repo: Repo) -> None:
    result = cli("log", "t-1", "--json", "--limit", "3", "--collection", "tasks", cwd=repo.path)
    assert result.code == 0, result
    entries = json.loads(result.out)
    assert [e["commit"] for e in entries[:2]] == [repo.c6, repo.c4]
    assert len(entries) == 3
    merged = entries[1]
    assert merged["action"] == "changed"
    assert merged["changes"]["changed"] == {"status": {"old": "open", "new": "active"}}
    assert merged["author"] == {"name": "Test Author", "email": "author@example.com"}
    assert merged["date"] == "2026-01-01T00:00:00+00:00"
    assert entries[0]["deleted"] is True


def test_log_of_an_unknown_id_is_one_error_line(repo: Repo) -> None:
    result = cli("log", "no-such-id", cwd=repo.path)
    assert result.code == 1, result
    assert result.out == ""
    assert result.err.count("\n") == 1
    assert result.err.startswith("error: no record 'no-such-id' in any collection")


def test_log_usage_errors_exit_2(repo: Repo) -> None:
    assert cli("log", cwd=repo.path).code == 2
    assert cli("log", "t-1", "--limit", "0", cwd=repo.path).code == 2


def test_log_reads_ids_written_with_escapes(tmp_path: Path) -> None:
    # Another tool may write non-ASCII as \u escapes; a tie goes to the later line.
    path = init_repo(tmp_path / "repo")
    store = path / ".taskstore"
    store.mkdir()
    lines = [
        json.dumps({"id": "ü/1", "title": "one", "updated_at": 1}),  # "\u00fc/1"
        json.dumps({"id": "ü/10", "title": "other", "updated_at": 5}),
    ]
    (store / "tasks.jsonl").write_text("\n".join(lines) + "\n")
    first = commit_all(path, "escaped")
    lines.append(json.dumps({"id": "ü/1", "title": "two", "updated_at": 1}, ensure_ascii=False))
    (store / "tasks.jsonl").write_text("\n".join(lines) + "\n")
    second = commit_all(path, "raw utf-8, same updated_at")
    entries = record_log(str(path), None, "ü/1")
    assert [(e.commit, e.action) for e in entries] == [(second, "changed"), (first, "created")]
    assert entries[0].changes.changed == {"title": ("one", "two")}


def test_log_skips_rewrites_and_sees_reverts(tmp_path: Path) -> None:
    path = init_repo(tmp_path / "repo")
    _put(path, "tasks", {"id": "t-1", "title": "One"})
    _put(path, "tasks", {"id": "é", "title": "no plain character in the id"})
    created = commit_all(path, "create")
    _put(path, "tasks", {"id": "t-1", "title": "Two"}, merge=True)
    edited = commit_all(path, "edit")
    git(path, "revert", "--no-edit", edited)  # removes the edit's line again
    reverted = git(path, "rev-parse", "HEAD").strip()
    _put(path, "tasks", {"id": "t-2", "title": "Other"})
    _put(path, "tasks", {"id": "t-2", "title": "Other, edited"}, merge=True)
    other = commit_all(path, "another record")
    assert cli("compact", cwd=path).code == 0  # one line per id: the file is rewritten
    commit_all(path, "compact")
    assert git(path, "diff", "--name-only", "HEAD~1", "HEAD").split() == [".taskstore/tasks.jsonl"]

    entries = record_log(str(path), None, "t-1")
    assert [(e.commit, e.action) for e in entries] == [
        (reverted, "changed"),
        (edited, "changed"),
        (created, "created"),
    ]
    assert entries[0].changes.changed["title"] == ("Two", "One")
    assert [e.commit for e in record_log(str(path), None, "é")] == [created]
    assert [e.commit for e in record_log(str(path), None, "t-2")] == [other]


# --- diff ----------------------------------------------------------------------------------


def test_diff_between_two_commits(repo: Repo) -> None:
    result = record_diff(str(repo.path), None, repo.c1, repo.c6)
    assert sorted(result) == ["scratch", "tasks"]  # notes did not change
    tasks = result["tasks"]
    assert tasks.added == ["t-3", "f-1"]  # file order: the merge put theirs after ours
    assert tasks.deleted == ["t-1"]
    assert list(tasks.changed) == ["t-2"]
    assert tasks.changed["t-2"].changed["owner"] == ("ana", "bo")
    assert result["scratch"].deleted == ["s-1"]
    assert not result["scratch"].added and not result["scratch"].changed

    back = record_diff(str(repo.path), None, repo.c6, repo.c1)
    assert back["tasks"].added == ["t-1"]
    assert sorted(back["tasks"].deleted) == ["f-1", "t-3"]
    assert back["scratch"].added == ["s-1"]


def test_diff_cli_two_revisions(repo: Repo) -> None:
    result = cli("diff", repo.c1, repo.c6, cwd=repo.path)
    assert result.code == 0, result
    assert result.out.split("\n\n")[0].splitlines() == [
        "scratch: 0 added, 1 deleted, 0 changed",
        "- s-1",
    ]
    tasks = result.out.split("\n\n")[1].splitlines()
    assert tasks[:5] == [
        "tasks: 2 added, 1 deleted, 1 changed",
        "+ t-3",
        "+ f-1",
        "- t-1",
        "~ t-2",
    ]
    assert "    owner: ana -> bo" in tasks

    # A..B names the same pair; --collection limits it.
    ranged = cli("diff", f"{repo.c1}..{repo.c6}", "--collection", "tasks", cwd=repo.path)
    assert ranged.code == 0, ranged
    assert ranged.out.strip() == result.out.split("\n\n")[1].strip()


def test_diff_cli_json(repo: Repo) -> None:
    result = cli("diff", repo.c3, repo.c4, "--json", cwd=repo.path)
    assert result.code == 0, result
    data = json.loads(result.out)
    assert list(data) == ["tasks"]
    assert data["tasks"]["added"] == ["f-1"]
    assert data["tasks"]["deleted"] == []
    assert data["tasks"]["changed"]["t-1"]["changed"]["status"] == {"old": "open", "new": "active"}


def test_diff_against_the_work_tree(repo: Repo, tmp_path: Path) -> None:
    path = tmp_path / "copy"
    shutil.copytree(repo.path, path)
    clean = cli("diff", cwd=path)
    assert clean.code == 0, clean
    assert clean.out == ""
    assert "no record changes" in clean.err

    _put(path, "tasks", {"id": "t-4", "title": "New, not committed"})
    _put(path, "tasks", {"id": "t-2", "title": "Review again"}, merge=True)
    with Store.open(path) as store:
        assert store.collection("tasks").delete("t-3")
    _put(path, "notes", {"id": "n-2", "text": "second note"})

    result = record_diff(str(path), None)  # HEAD against the files on disk
    assert result["tasks"].added == ["t-4"]
    assert result["tasks"].deleted == ["t-3"]
    assert result["tasks"].changed["t-2"].changed["title"] == ("Review", "Review again")
    assert result["notes"].added == ["n-2"]

    shown = cli("diff", "--collection", "tasks", cwd=path)
    assert shown.code == 0, shown
    assert shown.out.splitlines()[:4] == [
        "tasks: 1 added, 1 deleted, 1 changed",
        "+ t-4",
        "- t-3",
        "~ t-2",
    ]
    assert "    title: Review -> Review again" in shown.out

    # One REV: that revision against the work tree.
    older = cli("diff", repo.c5, "--json", cwd=path)
    assert older.code == 0, older
    tasks = json.loads(older.out)["tasks"]
    assert sorted(tasks["deleted"]) == ["t-1", "t-3"]
    assert tasks["added"] == ["t-4"]


def test_diff_of_a_bad_revision_is_one_error_line(repo: Repo) -> None:
    for args in (["nope"], [repo.c1, "nope"], ["nope..HEAD"]):
        result = cli("diff", *args, cwd=repo.path)
        assert result.code == 1, result
        assert result.err.count("\n") == 1, result
        assert result.err.startswith("error: unknown revision 'nope'"), result
    with pytest.raises(TaskstoreError, match="'HEAD~99'"):
        record_diff(str(repo.path), None, "HEAD~99")


def test_diff_usage_errors_exit_2(repo: Repo) -> None:
    assert cli("diff", "a", "b", "c", cwd=repo.path).code == 2
    assert cli("diff", "--collection", "bad name", cwd=repo.path).code == 1


# --- outside git ---------------------------------------------------------------------------


def test_outside_git_is_one_error_line(tmp_path: Path) -> None:
    for args in (["log", "t-1"], ["diff"], ["diff", "HEAD~1", "HEAD"]):
        result = cli(*args, cwd=tmp_path)
        assert result.code == 1, result
        assert result.err.count("\n") == 1, result
        assert result.err.startswith("error: not inside a git work tree"), result
    with pytest.raises(TaskstoreError, match="not inside a git work tree"):
        record_log(str(tmp_path), None, "t-1")
    with pytest.raises(TaskstoreError, match="not inside a git work tree"):
        record_diff(str(tmp_path), None)


def test_a_repository_without_commits(tmp_path: Path) -> None:
    path = init_repo(tmp_path / "empty")
    log = cli("log", "t-1", cwd=path)
    assert log.code == 1 and log.err.startswith("error: no commits yet"), log
    diff = cli("diff", cwd=path)
    assert diff.code == 1 and diff.err.startswith("error: unknown revision 'HEAD'"), diff
