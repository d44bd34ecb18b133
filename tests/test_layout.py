"""layout.py: opening a store folder (.version, migrations, .gitignore) and the
Rust crate's stores.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import orjson
import pytest
from testing import fixture_dir
from testing.stores import (
    ids,
    snapshot,
)

from git_taskstore import (
    Filter,
    Op,
    Store,
    StorePathError,
    StoreVersionError,
)
from git_taskstore.paths import UNTRACKED_NAMES


def test_a_new_store_gets_version_and_gitignore(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        folder = Path(store.path)
        assert folder == tmp_path / ".taskstore"
        assert (folder / ".version").read_bytes() == b"1"
        ignored = (folder / ".gitignore").read_text().splitlines()
        assert set(UNTRACKED_NAMES) <= set(ignored)


def test_a_store_without_version_but_with_data_is_migrated(tmp_path: Path) -> None:
    folder = tmp_path / ".taskstore"
    folder.mkdir()
    (folder / "tasks.jsonl").write_bytes(b'{"id":"a","v":1,"updated_at":1}\n')
    with Store.open(tmp_path) as store:
        assert (folder / ".version").read_bytes() == b"1"
        assert store.collection("tasks").get("a") == {"id": "a", "v": 1, "updated_at": 1}
    assert (folder / "tasks.jsonl").read_bytes() == b'{"id":"a","v":1,"updated_at":1}\n'


@pytest.mark.parametrize(
    ("version", "match"),
    [
        (b"2", "schema version 2, newer"),
        (b"999", "schema version 999, newer"),
        (b"banana", "should hold a schema version number"),
        (b"", "should hold a schema version number"),
        (b"1.0", "should hold a schema version number"),
        (b"\xff\xfe", "should hold a schema version number"),
        (b"-1", "schema version"),
    ],
)
def test_an_unusable_version_is_refused_without_changing_a_file(
    tmp_path: Path, version: bytes, match: str
) -> None:
    folder = tmp_path / ".taskstore"
    folder.mkdir()
    (folder / ".version").write_bytes(version)
    (folder / "tasks.jsonl").write_bytes(b'{"id":"a"}\n')
    before = snapshot(folder)
    with pytest.raises(StoreVersionError, match=match):
        Store.open(tmp_path)
    assert snapshot(folder) == before
    assert sorted(os.listdir(folder)) == [".version", "tasks.jsonl"]


def test_a_store_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".taskstore").write_bytes(b"not a folder")
    before = snapshot(tmp_path)
    with pytest.raises(StorePathError, match="is a file"):
        Store.open(tmp_path)
    with pytest.raises(StorePathError, match="is a file"):
        Store.open_dir(tmp_path / ".taskstore")
    assert snapshot(tmp_path) == before


def test_opening_a_missing_store_without_create_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorePathError, match="no store"):
        Store.open(tmp_path, create=False)
    assert os.listdir(tmp_path) == []


@pytest.fixture
def rust_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "rust"
    shutil.copytree(fixture_dir("rust-taskstore"), repo)
    return repo


def test_the_rust_fixture_opens_with_the_state_its_readme_gives(rust_repo: Path) -> None:
    with Store.open(rust_repo) as store:
        assert store.collections() == ["loops", "signals"]
        loops = {r["id"]: r for r in store.collection("loops").list()}
        assert sorted(loops) == ["loop-0001", "loop-0002"]
        assert (loops["loop-0001"]["status"], loops["loop-0001"]["iteration"]) == ("complete", 4)
        assert (loops["loop-0002"]["status"], loops["loop-0002"]["iteration"]) == ("complete", 3)
        assert store.collection("loops").get("loop-0003") is None
        assert store.collection("loops").count([Filter("status", Op.EQ, "complete")]) == 2
        signals = store.collection("signals").list()
        assert ids(signals) == ["sig-01", "sig-02"]
        assert signals[1]["acknowledged_at"] == 1769000011500
        assert store.check() == []
        status = {s.name: (s.records, s.deleted, s.bad_lines) for s in store.status()}
        assert status == {"loops": (2, 1, 0), "signals": (2, 0, 0)}


def test_reading_the_rust_fixture_changes_no_data_and_only_ignores_our_files(
    rust_repo: Path,
) -> None:
    folder = rust_repo / ".taskstore"
    before = snapshot(rust_repo)
    names_before = set(os.listdir(folder))
    with Store.open(rust_repo) as store:
        store.export_data()
        store.sync()
        store.is_stale()
    after = snapshot(rust_repo)
    # The crate's .gitignore lists none of our lock file, the debounced writers' claims
    # and the temp files of killed rewrites; it gains those lines, so they never show up
    # in `git status`.
    gitignore = ".taskstore/.gitignore"
    gained = (
        b"taskstore.lock\ntaskstore.owners\n.*.tmp\n"
        b"openspec.state\nopenspec-backups\nopenspec-watch.lock\n"
    )
    assert after.pop(gitignore) == before.pop(gitignore) + gained
    assert after == before
    assert set(os.listdir(folder)) - names_before <= set(UNTRACKED_NAMES)


def test_a_write_to_the_rust_fixture_appends_one_line(rust_repo: Path) -> None:
    path = rust_repo / ".taskstore" / "loops.jsonl"
    before = path.read_bytes()
    with Store.open(rust_repo) as store:
        store.collection("loops").put({"id": "loop-0002", "status": "failed"}, merge=True)
    after = path.read_bytes()
    assert after.startswith(before)
    added = orjson.loads(after[len(before) :])
    assert added["status"] == "failed" and added["loop_type"] == "spec"
    assert added["created_at"] == 1769000001000


def test_a_killed_rewrite_leaves_nothing_git_sees_and_compact_removes_it(
    tmp_path: Path,
) -> None:
    """A compact killed after writing its temp file leaves ``.tasks.jsonl.<hex>.tmp``:
    .gitignore hides it from git, and the next compact deletes it once it is a minute
    old (a younger one may be a rewrite still running). (Mutation: drop remove_leftovers
    from compact: the old leftover stays.)"""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    with Store.open(repo) as store:
        store.collection("tasks").put({"id": "a"})
        folder = Path(store.path)
        old = folder / ".tasks.jsonl.0123456789ab.tmp"
        young = folder / ".tasks.jsonl.ba9876543210.tmp"
        for leftover in (old, young):
            leftover.write_bytes(b'{"id":"a"}\n' * 1000)
        os.utime(old, (time.time() - 120, time.time() - 120))
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert ".tmp" not in status, status
        store.compact()
        assert not old.exists() and young.exists()


def test_links_where_the_store_keeps_its_own_files_are_never_followed(tmp_path: Path) -> None:
    """A commit made with `git add -f` can put links at .version, .gitignore, the cache,
    its WAL or the lock, pointing anywhere. The store reads and writes none of their
    targets: .version is one line of error without the target's bytes, .gitignore is
    replaced, the cache's and the lock's links are removed. (Mutation: drop unlink_links
    from Engine: SQLite writes its WAL through the link, into the outside file.)"""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret"
    secret.write_bytes(b"PRIVATE KEY 0123456789\\n")
    with Store.open(tmp_path / "repo") as store:
        store.collection("tasks").put({"id": "a"})
        folder = Path(store.path)
    for name in ("taskstore.db", "taskstore.db-wal", "taskstore.db-shm", "taskstore.lock"):
        (folder / name).unlink(missing_ok=True)
        os.symlink(outside / name, folder / name)
        (outside / name).write_bytes(b"not yours\\n")
    (folder / ".gitignore").unlink()
    os.symlink(secret, folder / ".gitignore")
    with Store.open(tmp_path / "repo") as store:
        store.collection("tasks").put({"id": "b"})
        assert {r["id"] for r in store.collection("tasks").list()} == {"a", "b"}
    for name in ("taskstore.db", "taskstore.db-wal", "taskstore.db-shm", "taskstore.lock"):
        assert (outside / name).read_bytes() == b"not yours\\n", name
    assert b"PRIVATE" not in (folder / ".gitignore").read_bytes()
    assert not (folder / ".gitignore").is_symlink()
    (folder / ".version").unlink()
    os.symlink(secret, folder / ".version")
    with pytest.raises(StoreVersionError, match="is a symbolic link") as caught:
        Store.open(tmp_path / "repo")
    assert "PRIVATE" not in str(caught.value)
