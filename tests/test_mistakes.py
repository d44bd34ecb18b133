"""Mistakes are errors (issue 14): a typo in a typed query, a collection, an operator or
a store folder says so, instead of answering nothing or writing somewhere new."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testing import init_repo
from testing.inprocess import cli
from testing.repos import ok
from testing.stores import Task

from git_taskstore import Filter, Op, Store, ValidationError


def test_a_typed_query_on_an_undeclared_field_raises(store: Store) -> None:
    store.put(Task(id="t1", title="a", status="open"))
    with pytest.raises(ValidationError, match="Task has no field 'stauts'"):
        store.list(Task, [Filter("stauts", Op.EQ, "open")])
    with pytest.raises(ValidationError, match="no field 'titel'"):
        store.list(Task, sort="-titel")
    with pytest.raises(ValidationError, match="no field 'stauts'"):
        store.count(Task, [Filter("stauts", Op.EQ, "open")])
    assert [t.id for t in store.list(Task, [Filter("status", Op.EQ, "open")])] == ["t1"]
    # The dict-level API has no schema: any field may be asked for there.
    assert store.collection("tasks").list([Filter("stauts", Op.EQ, "open")]) == []


def test_a_put_into_a_task_model_collection_is_validated(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    ok(cli("init", "--no-hooks", cwd=repo))
    bogus = cli("put", "prds", '{"id": "prd-1", "title": "A", "status": "bogus"}', cwd=repo)
    assert bogus.code == 1 and "status" in bogus.err and "bogus" in bogus.err
    assert not (repo / ".taskstore" / "prds.jsonl").exists()
    ok(cli("put", "prds", '{"id": "prd-1", "title": "A", "status": "draft"}', cwd=repo))
    merged = cli("put", "prds", "--merge", '{"id": "prd-1", "status": "nope"}', cwd=repo)
    assert merged.code == 1 and "nope" in merged.err
    ok(cli("put", "prds", "--merge", '{"id": "prd-1", "status": "ready"}', cwd=repo))
    got = json.loads(ok(cli("get", "prds", "prd-1", "--json", cwd=repo)).out)
    assert (got["title"], got["status"]) == ("A", "ready")
    # Collections the task model does not own take any JSON object, as before.
    ok(cli("put", "notes", '{"id": "n1", "status": "bogus"}', cwd=repo))


def test_a_mistyped_store_is_not_created(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    ok(cli("init", "--no-hooks", cwd=repo))
    for args, env in (
        (["--store", "taskstroe"], {}),
        ([], {"TASKSTORE_DIR": str(repo / "taskstroe")}),
    ):
        typo = cli("put", "notes", '{"id": "n1"}', *args, cwd=repo, env=env)
        assert typo.code == 1 and "init --store" in typo.err, typo
        typo = cli("create-prd", "A title", *args, cwd=repo, env=env)
        assert typo.code == 1 and "init --store" in typo.err, typo
    assert not (repo / "taskstroe").exists()


def test_git_wiring_from_code(tmp_path: Path) -> None:
    """Store.install_git_integration: what `init` does in git, for a daemon's start-up;
    twice is once; outside git, one clear error."""
    import subprocess

    from git_taskstore import StorePathError

    repo = init_repo(tmp_path / "repo")
    with Store.open(repo) as store:
        report = store.install_git_integration()
        assert report.driver and report.attribute and all(report.hooks.values())
        assert report.changed and not report.warnings
        assert store.install_git_integration().changed == []
    attribute = subprocess.run(
        ["git", "check-attr", "merge", ".taskstore/tasks.jsonl"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert attribute.strip().endswith("merge: taskstore")
    status = json.loads(ok(cli("status", "--json", cwd=repo)).out)
    assert status["git"]["hooks"]["pre-commit"] is True
    with Store.open(tmp_path / "no-git") as loose, pytest.raises(StorePathError, match="git"):
        loose.install_git_integration()
