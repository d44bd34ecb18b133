"""The `git taskstore` command line in real git repositories.

Every command is exercised through `cli(...)`: `main(argv)` called in this process with
its own stdin, stdout and stderr, so exit codes, stdout and stderr are what a user or a
script sees, without an interpreter start per call. What only a whole process shows
(git finding `git taskstore`, start-up, a terminal) goes through `process_cli` or git.
Failures are checked for the whole user-visible contract: the exit code, ONE `error: `
line on stderr, no traceback, nothing on stdout, and every file of the store
byte-for-byte unchanged.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from testing import (
    CACHE_NAMES,
    Result,
    assert_fails,
    commit_all,
    data,
    git,
    init_repo,
    ok,
    snapshot,
)
from testing.inprocess import cli

from git_taskstore import Store, __version__
from git_taskstore.cli import COMMANDS
from git_taskstore.paths import find_worktree

# The cache and lock files: derived, never committed, free to change on any read.

SEED: list[dict[str, Any]] = [
    {
        "id": "t1",
        "title": "Add OAuth login",
        "status": "open",
        "n": 3,
        "pri": 2,
        "done": False,
        "owner": None,
    },
    {
        "id": "t2",
        "title": "Fix oauth bug",
        "status": "done",
        "n": 5,
        "pri": 3,
        "done": True,
        "owner": "ana",
    },
    {"id": "t3", "title": "Write docs", "status": "draft", "n": "3", "pri": 1, "done": False},
    {"id": "t4", "title": "Ship it", "status": "ready", "n": 1, "pri": 5, "owner": "bo"},
]
SEED_IDS = [r["id"] for r in SEED]


# --- helpers ---------------------------------------------------------------------------


def jsonl(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def ids(result: Result) -> list[str]:
    return [r["id"] for r in data(result)]


def warnings_only(err: str) -> list[str]:
    """stderr of a command that worked: notes and warnings, never an error."""
    lines = err.splitlines()
    for line in lines:
        assert line.startswith(("warning: ", "note: ")), err
    return lines


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repo with a store holding SEED in tasks.jsonl (4 lines), made by the CLI."""
    repo = init_repo(tmp_path_factory.mktemp("template") / "repo")
    ok(cli("init", cwd=repo))
    ok(cli("put", "tasks", input=jsonl(*SEED), cwd=repo))
    return repo


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    """A private copy of the template repo (without the cache)."""
    dest = tmp_path / "repo"
    shutil.copytree(template, dest, ignore=shutil.ignore_patterns(*CACHE_NAMES))
    return dest


@pytest.fixture
def seeded(template: Path) -> Path:
    """The template itself, for tests that only read."""
    return template


# --- init ------------------------------------------------------------------------------


def test_init_creates_the_store_and_twice_changes_nothing(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    result = ok(cli("init", cwd=repo))
    assert "created" in result.out
    store = repo / ".taskstore"
    assert (store / ".version").read_bytes().strip() == b"1"
    ignored = set((store / ".gitignore").read_text().splitlines())
    assert {"taskstore.db", "taskstore.db-wal", "taskstore.db-shm", "taskstore.lock"} <= ignored

    before = snapshot(store)
    commit_all(repo, "store")
    result = ok(cli("init", cwd=repo))
    assert "ready" in result.out
    assert snapshot(store) == before
    # Nothing the cache or the lock left behind shows up in git either.
    assert git(repo, "status", "--porcelain") == ""

    answer = data(cli("init", "--json", cwd=repo))
    assert answer["created"] is False and answer["changed"] == []
    assert snapshot(store) == before


def test_init_wires_the_clone_and_twice_is_byte_for_byte_once(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    ok(cli("init", cwd=repo))
    wired = {
        "attributes": (repo / ".gitattributes").read_bytes(),
        "config": (repo / ".git" / "config").read_bytes(),
        "hooks": snapshot(repo / ".git" / "hooks"),
    }
    assert wired["attributes"] == b".taskstore/*.jsonl merge=taskstore\n"
    driver = git(repo, "config", "merge.taskstore.driver").strip()
    assert "git-taskstore-merge %O %A %B %L %P" in driver
    assert "awk 1 %A" in driver and "merge-file" not in driver  # the fallback keeps both sides
    assert {"pre-commit", "post-merge", "post-rewrite", "pre-push", "post-checkout"} <= set(
        wired["hooks"]
    )
    again = ok(cli("init", cwd=repo))
    assert again.out.splitlines() == ["store .taskstore is ready"]
    assert {
        "attributes": (repo / ".gitattributes").read_bytes(),
        "config": (repo / ".git" / "config").read_bytes(),
        "hooks": snapshot(repo / ".git" / "hooks"),
    } == wired


def test_init_completes_an_existing_gitignore(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    store = repo / ".taskstore"
    store.mkdir()
    (store / ".version").write_text("1")
    (store / ".gitignore").write_text("# mine\ntaskstore.db\n")
    result = ok(cli("init", cwd=repo))
    assert "updated .gitignore" in result.out
    lines = (store / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["# mine", "taskstore.db"]  # the user's lines stay first
    assert {"taskstore.db-wal", "taskstore.db-shm", "taskstore.lock"} <= set(lines)
    assert lines.count("taskstore.db") == 1


# --- put, get, delete ------------------------------------------------------------------


def test_put_get_delete(repo: Path) -> None:
    result = ok(cli("put", "notes", '{"id": "n1", "text": "hello", "tags": ["a"]}', cwd=repo))
    assert result.out == "put notes/n1\n"
    record = data(cli("get", "notes", "n1", "--json", cwd=repo))
    assert record["text"] == "hello" and record["tags"] == ["a"]
    assert isinstance(record["created_at"], int) and record["updated_at"] >= record["created_at"]

    # JSON lines on stdin: several records in one call, blank lines ignored.
    result = ok(cli("put", "notes", input='{"id": "n2"}\n\n{"id": "n3", "x": 1}\n', cwd=repo))
    assert result.out.splitlines() == ["put notes/n2", "put notes/n3"]

    # The table view of get: one "key  value" line per field, times readable.
    shown = ok(cli("get", "notes", "n1", cwd=repo)).out.splitlines()
    assert any(line.split() == ["text", "hello"] for line in shown), shown
    assert any(line.startswith("created_at") and "-" in line for line in shown), shown

    # A put without --merge replaces the record, keeping created_at.
    replaced = data(cli("put", "notes", '{"id": "n1", "other": true}', "--json", cwd=repo))
    assert "text" not in replaced and replaced["other"] is True
    assert replaced["created_at"] == record["created_at"]
    assert replaced["updated_at"] > record["updated_at"]

    result = ok(cli("delete", "notes", "n2", cwd=repo))
    assert result.out == "deleted notes/n2\n"
    assert_fails(cli("get", "notes", "n2", cwd=repo), 1, "notes/n2", "not found")
    last = (repo / ".taskstore" / "notes.jsonl").read_text().splitlines()[-1]
    assert json.loads(last)["deleted"] is True and json.loads(last)["id"] == "n2"
    assert ids(cli("list", "notes", "--json", cwd=repo)) == ["n1", "n3"]


def test_put_merge_updates_only_given_fields(repo: Path) -> None:
    before = data(cli("get", "tasks", "t1", "--json", cwd=repo))
    after = data(
        cli("put", "tasks", "--merge", '{"id": "t1", "status": "closed"}', "--json", cwd=repo)
    )
    assert after["status"] == "closed"
    assert after["title"] == before["title"] and after["pri"] == before["pri"]
    assert after["created_at"] == before["created_at"]
    assert after["updated_at"] > before["updated_at"]
    assert data(cli("get", "tasks", "t1", "--json", cwd=repo)) == after
    # --merge of an id that does not exist yet creates it.
    created = data(cli("put", "tasks", "--merge", '{"id": "t9", "a": 1}', "--json", cwd=repo))
    assert created["a"] == 1


def test_put_takes_a_pretty_printed_record(repo: Path) -> None:
    """jq's output, or "$(cat record.json)": one JSON object over several lines."""
    pretty = json.dumps({"id": "p1", "title": "pretty", "tags": ["a", "b"]}, indent=2)
    ok(cli("put", "notes", pretty, cwd=repo))
    ok(cli("put", "notes", input=pretty.replace("p1", "p2") + "\n", cwd=repo))
    records = data(cli("list", "notes", "--json", cwd=repo))
    assert [(r["id"], r["tags"]) for r in records] == [("p1", ["a", "b"]), ("p2", ["a", "b"])]
    # The file still holds one line per record.
    assert len((repo / ".taskstore" / "notes.jsonl").read_text().splitlines()) == 2


def test_id_of_256_bytes_is_accepted(repo: Path) -> None:
    rid = "é" * 128  # 256 bytes in UTF-8
    ok(cli("put", "tasks", json.dumps({"id": rid}), cwd=repo))
    assert data(cli("get", "tasks", rid, "--json", cwd=repo))["id"] == rid


# --- list ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (["status=open"], ["t1"]),
        (["status = open"], ["t1"]),  # blanks around the operator are allowed
        (["status!=open"], ["t2", "t3", "t4"]),
        (["owner!=ana"], ["t1", "t3", "t4"]),  # != keeps null and missing fields
        (["pri>2"], ["t2", "t4"]),
        (["pri>=2"], ["t1", "t2", "t4"]),
        (["pri<2"], ["t3"]),
        (["pri<=2"], ["t1", "t3"]),
        (["title~OAUTH"], ["t1", "t2"]),  # contains, case-insensitive
        (["title~add oauth"], ["t1"]),
        (['status=["draft","ready"]'], ["t3", "t4"]),  # IN
        (["n=3"], ["t1"]),  # the number 3...
        (['n="3"'], ["t3"]),  # ...and the text "3"
        (["done=true"], ["t2"]),
        (["done=false"], ["t1", "t3"]),
        (["owner=null"], ["t1", "t3"]),  # null or missing
        (["status!=done", "n=3"], ["t1"]),  # repeated --where is AND
        (["title~oauth", "pri>=3"], ["t2"]),
        (["status=nothing"], []),
    ],
)
def test_list_where(seeded: Path, where: list[str], expected: list[str]) -> None:
    args = [arg for w in where for arg in ("--where", w)]
    assert ids(cli("list", "tasks", *args, "--json", cwd=seeded)) == expected


def test_list_sort_limit_offset_fields_count(seeded: Path) -> None:
    def listed(*args: str) -> list[str]:
        return ids(cli("list", "tasks", *args, "--json", cwd=seeded))

    assert listed() == SEED_IDS  # creation order
    assert listed("--sort", "pri") == ["t3", "t1", "t2", "t4"]
    assert listed("--sort", "-pri") == ["t4", "t2", "t1", "t3"]
    assert listed("--sort", "pri", "--limit", "2") == ["t3", "t1"]
    assert listed("--sort", "pri", "--limit", "2", "--offset", "1") == ["t1", "t2"]
    assert listed("--offset", "3") == ["t4"]
    assert listed("--limit", "0") == []
    assert listed("-w", "pri>=2", "--sort", "-pri", "--limit", "1") == ["t4"]

    table = ok(cli("list", "tasks", "--fields", "id,title", "--sort", "id", cwd=seeded))
    rows = table.out.splitlines()
    assert rows[0].split() == ["ID", "TITLE"]
    assert rows[1].split() == ["t1", "Add", "OAuth", "login"]
    assert len(rows) == 5 and "STATUS" not in table.out
    default = ok(cli("list", "tasks", cwd=seeded)).out.splitlines()
    assert default[0].split()[0] == "ID" and len(default) == 5

    assert ok(cli("list", "tasks", "--count", cwd=seeded)).out == "4\n"
    assert ok(cli("list", "tasks", "--count", "-w", "title~oauth", cwd=seeded)).out == "2\n"
    assert data(cli("list", "tasks", "--count", "--json", cwd=seeded)) == 4

    empty = ok(cli("list", "tasks", "-w", "status=nothing", cwd=seeded))
    assert empty.out == "" and "no records in tasks match" in empty.err
    # A misspelled collection is an error, as `get` says of a missing record; --json too.
    for extra in ([], ["--json"]):
        missing = cli("list", "taks", *extra, cwd=seeded)
        assert missing.code == 1 and missing.out == ""
        assert missing.err == "error: no collection 'taks' (collections: tasks)\n"
    # `==` is no operator: it used to look for "=open", silently matching nothing.
    doubled = cli("list", "tasks", "--where", "status==open", cwd=seeded)
    assert doubled.code == 2 and "'==' is not an operator" in doubled.err
    # --fields picks the fields of --json's records too.
    picked = data(cli("list", "tasks", "--fields", "id,status", "--json", cwd=seeded))
    assert picked and all(list(r) == ["id", "status"] for r in picked)
    # --store works before the command name too.
    before = ok(cli("--store", str(seeded / ".taskstore"), "list", "tasks", "--count", cwd="/"))
    assert before.out == "4\n"


# --- store commands --------------------------------------------------------------------


def test_collections_stats_status_sync_compact_check(repo: Path) -> None:
    store = repo / ".taskstore"
    ok(cli("put", "notes", '{"id": "n1"}', cwd=repo))
    ok(cli("delete", "tasks", "t4", cwd=repo))

    assert data(cli("collections", "--json", cwd=repo)) == [
        {"name": "notes", "records": 1},
        {"name": "tasks", "records": 3},
    ]
    table = ok(cli("collections", cwd=repo)).out.splitlines()
    assert [line.split() for line in table] == [["NAME", "RECORDS"], ["notes", "1"], ["tasks", "3"]]

    stats = {s["name"]: s for s in data(cli("stats", "--json", cwd=repo))}
    assert (stats["tasks"]["records"], stats["tasks"]["deleted"], stats["tasks"]["lines"]) == (
        3,
        1,
        5,
    )
    assert stats["tasks"]["file_bytes"] == (store / "tasks.jsonl").stat().st_size
    assert "(total)" in ok(cli("stats", cwd=repo)).out

    status = data(cli("status", "--json", cwd=repo))
    assert status["store"] == str(store)
    assert {c["name"]: c["freshness"] for c in status["collections"]} == {
        "notes": "fresh",
        "tasks": "fresh",
    }
    # Files changed behind the cache's back: status says so without syncing.
    with open(store / "notes.jsonl", "a") as handle:
        handle.write('{"id": "n2", "updated_at": 5}\n')
    (store / "extra.jsonl").write_text('{"id": "e1"}\n')
    for _ in range(2):  # twice: status itself must not sync
        status = data(cli("status", "--json", cwd=repo))
        fresh = {c["name"]: c["freshness"] for c in status["collections"]}
        assert fresh == {"extra": "new", "notes": "stale", "tasks": "fresh"}
    assert "stale" in ok(cli("status", cwd=repo)).out

    actions = {r["collection"]: r["action"] for r in data(cli("sync", "--json", cwd=repo))}
    assert actions == {"extra": "rebuilt", "notes": "caught-up", "tasks": "fresh"}
    status = data(cli("status", "--json", cwd=repo))
    assert {c["freshness"] for c in status["collections"]} == {"fresh"}
    actions = {
        r["collection"]: r["action"] for r in data(cli("sync", "--full", "--json", cwd=repo))
    }
    assert actions == {"extra": "rebuilt", "notes": "rebuilt", "tasks": "rebuilt"}
    assert "notes: " in ok(cli("sync", cwd=repo)).out

    (store / "extra.jsonl").unlink()
    status = data(cli("status", "--json", cwd=repo))
    assert {c["name"]: c["freshness"] for c in status["collections"]}["extra"] == "deleted"
    actions = {r["collection"]: r["action"] for r in data(cli("sync", "--json", cwd=repo))}
    assert actions["extra"] == "dropped"

    # compact: one line per id, the tombstone kept, the answers unchanged.
    ok(cli("put", "tasks", "--merge", '{"id": "t1", "status": "a"}', cwd=repo))
    ok(cli("put", "tasks", "--merge", '{"id": "t1", "status": "b"}', cwd=repo))
    listed = data(cli("list", "tasks", "--json", cwd=repo))
    result = data(cli("compact", "tasks", "--json", cwd=repo))
    assert result == [
        {"collection": "tasks", "lines_before": 7, "lines_after": 4, "bad_lines_kept": 0}
    ]
    lines = [json.loads(x) for x in (store / "tasks.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in lines) == SEED_IDS
    assert {"id", "deleted", "updated_at"} <= set(next(r for r in lines if r["id"] == "t4"))
    assert data(cli("list", "tasks", "--json", cwd=repo)) == listed  # the same, in order
    assert "notes: 2 -> 2 lines" in ok(cli("compact", cwd=repo)).out

    result = ok(cli("check", cwd=repo))
    assert result.out.startswith("ok: 2 collection(s)")
    assert data(cli("check", "--json", cwd=repo)) == {"ok": True, "problems": []}


def test_compact_keeps_the_listing_order(repo: Path) -> None:
    """list is in creation order unless sorted; compaction must not move updated records
    to the end (it used to write each id where its current version was)."""
    ok(cli("put", "tasks", "--merge", '{"id": "t1", "status": "b"}', cwd=repo))
    listed = ids(cli("list", "tasks", "--json", cwd=repo))
    assert listed == SEED_IDS
    ok(cli("compact", cwd=repo))
    assert ids(cli("list", "tasks", "--json", cwd=repo)) == listed


def test_backup_opens_as_a_store(repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backup"
    expected = data(cli("list", "tasks", "--json", cwd=repo))
    result = ok(cli("backup", str(dest), cwd=repo))
    assert "backed up 3 file(s)" in result.out
    assert sorted(p.name for p in dest.iterdir()) == [".gitignore", ".version", "tasks.jsonl"]
    assert snapshot(dest) == snapshot(repo / ".taskstore")
    assert data(cli("list", "tasks", "--store", str(dest), "--json", cwd=tmp_path)) == expected
    ok(cli("check", "--store", str(dest), cwd=tmp_path))

    before = snapshot(dest)
    assert_fails(cli("backup", str(dest), cwd=repo), 1, "not an empty folder")
    assert snapshot(dest) == before


def test_export_and_import_round_trip(repo: Path, tmp_path: Path) -> None:
    ok(cli("put", "notes", '{"id": "n1", "text": "é ✓"}', cwd=repo))
    exported = data(cli("export-json", cwd=repo))
    assert sorted(exported) == ["notes", "tasks"]
    assert [r["id"] for r in exported["tasks"]] == SEED_IDS

    out_file = tmp_path / "export.json"
    result = ok(cli("export-json", "-o", str(out_file), cwd=repo))
    assert result.out == ""
    assert "exported 5 record(s)" in result.err
    assert json.loads(out_file.read_bytes()) == exported

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    result = ok(cli("import", str(out_file), cwd=fresh))  # outside git: ./.taskstore
    assert result.out == "imported 5 record(s)\n"
    assert data(cli("export-json", cwd=fresh)) == exported  # timestamps kept
    again = data(cli("import", str(out_file), "--json", cwd=fresh))
    assert again == {"written": 0, "skipped": 5, "collections": {"notes": 0, "tasks": 0}}

    # --collection: a JSON array, and JSON lines (here on stdin).
    array = tmp_path / "array.json"
    array.write_text('[{"id": "a1", "updated_at": 10}, {"id": "a2"}]')
    assert ok(cli("import", str(array), "--collection", "arr", cwd=fresh)).out == (
        "imported 2 record(s)\n"
    )
    result = ok(
        cli(
            "import",
            "-",
            "--collection",
            "lines",
            cwd=fresh,
            input='{"id": "l1", "updated_at": 7}\n{"id": "l2", "updated_at": 8}\n',
        )
    )
    assert result.out == "imported 2 record(s)\n"
    assert ids(cli("list", "arr", "--json", cwd=fresh)) == ["a1", "a2"]
    assert data(cli("get", "lines", "l1", "--json", cwd=fresh)) == {"id": "l1", "updated_at": 7}

    # An older version of a record is skipped; a newer one is taken.
    current = data(cli("get", "tasks", "t1", "--json", cwd=fresh))
    older = tmp_path / "older.json"
    older.write_text(json.dumps({"tasks": [{"id": "t1", "title": "old", "updated_at": 1}]}))
    result = ok(cli("import", str(older), cwd=fresh))
    assert "imported 0 record(s), skipped 1" in result.out
    assert data(cli("get", "tasks", "t1", "--json", cwd=fresh)) == current
    newer = {"id": "t1", "title": "newer", "updated_at": current["updated_at"] + 1}
    older.write_text(json.dumps({"tasks": [newer]}))
    ok(cli("import", str(older), cwd=fresh))
    assert data(cli("get", "tasks", "t1", "--json", cwd=fresh)) == newer


# --- --json ----------------------------------------------------------------------------


def test_every_data_command_prints_one_json_document(repo: Path, tmp_path: Path) -> None:
    def doc(*args: str, input: str | None = None) -> Any:
        return data(cli(*args, "--json", cwd=repo, input=input))

    assert isinstance(doc("init"), dict)
    one = doc("put", "notes", '{"id": "n1"}')
    assert isinstance(one, dict) and one["id"] == "n1"
    many = doc("put", "notes", input='{"id": "n2"}\n{"id": "n3"}\n')
    assert [r["id"] for r in many] == ["n2", "n3"]
    single_line = doc("put", "notes", input='{"id": "n4"}\n')
    assert isinstance(single_line, list)  # stdin is always a list, even of one
    two = doc("put", "other", '{"id": "o1"}\n{"id": "o2"}')  # JSON lines in the argument
    assert [r["id"] for r in two] == ["o1", "o2"]
    assert doc("get", "notes", "n1")["id"] == "n1"
    assert doc("delete", "notes", "n4") == {
        "collection": "notes",
        "id": "n4",
        "deleted": True,
        "records": ["notes/n4"],
    }
    assert [r["id"] for r in doc("list", "notes")] == ["n1", "n2", "n3"]
    assert doc("list", "notes", "--count") == 3
    assert doc("list", "notes", "--where", "id=nothing") == []
    for command in ("collections", "stats", "sync", "compact"):
        assert isinstance(doc(command), list), command
    assert isinstance(doc("sync", "--full"), list)
    assert isinstance(doc("status")["collections"], list)
    assert doc("check") == {"ok": True, "problems": []}
    assert doc("backup", str(tmp_path / "bk"))["files"]
    export = tmp_path / "e.json"
    ok(cli("export-json", "-o", str(export), cwd=repo))
    assert doc("import", str(export))["skipped"] == 9
    assert set(data(cli("export-json", cwd=repo))) == {"notes", "other", "tasks"}


# --- finding the store -----------------------------------------------------------------


def test_store_discovery_and_overrides(repo: Path, tmp_path: Path) -> None:
    sub = repo / "src" / "deep"
    sub.mkdir(parents=True)
    ok(cli("put", "notes", '{"id": "from-sub"}', cwd=sub))
    assert (repo / ".taskstore" / "notes.jsonl").is_file()
    assert not (sub / ".taskstore").exists() and not (repo / "src" / ".taskstore").exists()
    assert ids(cli("list", "tasks", "--json", cwd=sub)) == SEED_IDS

    # --store DIR is the store folder itself, relative to the current folder; a write
    # does not create one there (a typo would make a new empty store): `init` does.
    typo = cli("put", "notes", '{"id": "explicit"}', "--store", "../../other", cwd=sub)
    assert typo.code == 1 and "no store at" in typo.err
    assert not (repo / "other").exists()
    ok(cli("init", "--store", "../../other", cwd=sub))
    ok(cli("put", "notes", '{"id": "explicit"}', "--store", "../../other", cwd=sub))
    assert (repo / "other" / "notes.jsonl").is_file()
    assert (repo / "other" / ".version").read_bytes().strip() == b"1"
    assert ids(cli("list", "notes", "--json", "--store", str(repo / "other"), cwd=tmp_path)) == [
        "explicit"
    ]

    env_store = tmp_path / "env-store"
    env = {"TASKSTORE_DIR": str(env_store)}
    ok(cli("init", cwd=sub, env=env))
    ok(cli("put", "notes", '{"id": "from-env"}', cwd=sub, env=env))
    assert ids(cli("list", "notes", "--json", cwd=repo, env=env)) == ["from-env"]
    # --store beats TASKSTORE_DIR.
    assert ids(
        cli("list", "notes", "--json", "--store", str(repo / "other"), cwd=repo, env=env)
    ) == ["explicit"]
    # The repo's own store was not touched by either.
    assert ids(cli("list", "notes", "--json", cwd=repo)) == ["from-sub"]


def test_outside_git_the_store_is_in_the_current_folder(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    if find_worktree(str(plain)) is not None:
        pytest.skip("the temporary folder is inside a git work tree")
    ok(cli("init", cwd=plain))
    assert (plain / ".taskstore" / ".version").is_file()
    ok(cli("put", "notes", '{"id": "n1"}', cwd=plain))
    assert (plain / ".taskstore" / "notes.jsonl").is_file()
    below = plain / "below"
    below.mkdir()
    # Outside git there is no top to walk up to: a subfolder has no store of its own.
    assert_fails(cli("list", "notes", cwd=below), 1, "no store", "git taskstore init")
    assert not (below / ".taskstore").exists()


# --- bad input -------------------------------------------------------------------------

LONG_ID = "x" * 257
WIDE_ID = "é" * 129  # 129 characters, 258 bytes

BAD_INPUT = [
    pytest.param(
        ["put", "tasks", '{"id": "x",'],
        None,
        1,
        ["argument", "not valid JSON"],
        id="invalid-json-argument",
    ),
    pytest.param(
        ["put", "tasks"],
        '{"id": "s1"}\n{"id": "s2"}\n{"id": oops}\n',
        1,
        ["stdin:3", "not valid JSON"],
        id="invalid-json-stdin-line-3",
    ),
    pytest.param(
        ["put", "tasks"],
        '{"id": "s1"}\n{"id": "s2"}\n{"title": "no id"}\n',
        1,
        ["record 3", '"id"'],
        id="missing-id-stdin-line-3",
    ),
    pytest.param(
        ["put", "tasks", '[{"id": "x"}]'],
        None,
        1,
        ["JSON object", "array"],
        id="argument-not-an-object",
    ),
    pytest.param(
        ["put", "tasks"],
        '{"id": "s1"}\n"text"\n',
        1,
        ["stdin:2", "JSON object, got a string"],
        id="stdin-line-not-an-object",
    ),
    pytest.param(["put", "tasks", '{"title": "x"}'], None, 1, ['"id"'], id="missing-id"),
    pytest.param(["put", "tasks", '{"id": "  "}'], None, 1, ["blank"], id="blank-id"),
    pytest.param(["put", "tasks", '{"id": 5}'], None, 1, ["string"], id="id-not-a-string"),
    pytest.param(
        ["put", "tasks", json.dumps({"id": LONG_ID})],
        None,
        1,
        ["257 bytes", "256"],
        id="id-over-256-bytes",
    ),
    pytest.param(
        ["put", "tasks", json.dumps({"id": WIDE_ID})],
        None,
        1,
        ["258 bytes", "256"],
        id="id-over-256-bytes-in-129-chars",
    ),
    pytest.param(["get", "tasks", LONG_ID], None, 1, ["256"], id="get-id-too-long"),
    pytest.param(["put", "tasks", ""], None, 1, ["nothing to put"], id="empty-argument"),
    pytest.param(["put", "tasks"], "\n\n", 1, ["nothing to put"], id="empty-stdin"),
    pytest.param(
        ["put", "bad/name", '{"id": "x"}'],
        None,
        1,
        ["invalid collection name"],
        id="bad-collection-slash",
    ),
    pytest.param(
        ["put", "x" * 65, '{"id": "x"}'],
        None,
        1,
        ["invalid collection name"],
        id="bad-collection-too-long",
    ),
    pytest.param(
        ["list", "tasks.jsonl"], None, 1, ["invalid collection name"], id="list-bad-collection"
    ),
    pytest.param(
        ["get", "../tasks", "t1"], None, 1, ["invalid collection name"], id="get-bad-collection"
    ),
    pytest.param(
        ["compact", "nothing"],
        None,
        1,
        ["no collection 'nothing'"],
        id="compact-missing-collection",
    ),
    pytest.param(
        ["list", "tasks", "--where", "status"],
        None,
        2,
        ["--where", "FIELD OP VALUE"],
        id="where-without-operator",
    ),
    pytest.param(["list", "tasks", "--where", "a.b=1"], None, 2, ["--where"], id="where-bad-field"),
    pytest.param(["list", "tasks", "--where", "=open"], None, 2, ["--where"], id="where-no-field"),
    pytest.param(
        ["list", "tasks", "--where", 'n>["a"]'], None, 2, ["--where", "="], id="where-list-with-gt"
    ),
    pytest.param(
        ["list", "tasks", "--where", 'n={"a": 1}'],
        None,
        2,
        ["--where", "object"],
        id="where-object",
    ),
    pytest.param(["list", "tasks", "--sort", "a.b"], None, 2, ["--sort", "a.b"], id="bad-sort"),
    pytest.param(["list", "tasks", "--sort", "-"], None, 2, ["--sort"], id="bad-sort-dash"),
    pytest.param(["list", "tasks", "--limit", "-1"], None, 2, ["--limit"], id="negative-limit"),
    pytest.param(["list", "tasks", "--limit", "x"], None, 2, ["--limit"], id="limit-not-int"),
    pytest.param(["get", "tasks"], None, 2, ["ID"], id="get-missing-argument"),
    pytest.param(["put"], None, 2, ["COLLECTION"], id="put-missing-argument"),
    pytest.param(["list", "tasks", "--nope"], None, 2, ["--nope"], id="unknown-option"),
    pytest.param(["frobnicate"], None, 2, ["frobnicate"], id="unknown-command"),
    pytest.param(
        ["get", "tasks", "nope"], None, 1, ["tasks/nope", "not found"], id="get-missing-id"
    ),
    pytest.param(
        ["delete", "tasks", "nope"], None, 1, ["tasks/nope", "not found"], id="delete-missing-id"
    ),
    pytest.param(["get", "other", "t1"], None, 1, ["not found"], id="get-missing-collection"),
    pytest.param(
        ["import", "no-such-file.json"],
        None,
        2,
        ["'no-such-file.json': No such file", "import -h"],
        id="import-missing-file",
    ),
    pytest.param(
        ["import", "-"],
        "{not json",
        1,
        ["not valid JSON", "--collection"],
        id="import-invalid-json",
    ),
    pytest.param(
        ["import", "-"], '[{"id": "x"}]', 1, ["--collection"], id="import-array-without-collection"
    ),
    pytest.param(
        ["import", "-"],
        '{"tasks": [{"id": "ok1"}, {"title": "no id"}]}',
        1,
        ["record 2", '"id"'],
        id="import-one-bad-record",
    ),
    pytest.param(
        ["import", "-"],
        '{"tasks": [{"id": "ok1"}], "bad name": []}',
        1,
        ["invalid collection name"],
        id="import-bad-collection",
    ),
    pytest.param(
        ["import", "-", "--collection", "c"],
        '{"id": "a"}\n{"id": "b"}\n[1]\n',
        1,
        ["stdin:3", "JSON object"],
        id="import-lines-bad-line-3",
    ),
]


@pytest.mark.parametrize(("args", "stdin", "code", "needles"), BAD_INPUT)
def test_bad_input_is_refused_and_changes_nothing(
    repo: Path, args: list[str], stdin: str | None, code: int, needles: list[str]
) -> None:
    store = repo / ".taskstore"
    with Store.open(repo) as warm:  # a warm cache, as in real use (in-process: cheaper)
        warm.sync()
    before = snapshot(store)
    assert_fails(cli(*args, cwd=repo, input=stdin), code, *needles)
    assert snapshot(store) == before


def test_put_with_neither_argument_nor_stdin_is_a_usage_error(repo: Path) -> None:
    """On a terminal, `put COLLECTION` alone is a missing argument (exit 2)."""
    pty = pytest.importorskip("pty")
    before = snapshot(repo / ".taskstore")
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "git_taskstore", "put", "tasks"],
            cwd=repo,
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert_fails(Result(proc.returncode, proc.stdout, proc.stderr), 2, "nothing to put", "put -h")
    assert snapshot(repo / ".taskstore") == before


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        pytest.param(b"99", ["schema version 99", "upgrade"], id="newer-release"),
        pytest.param(b"garbage\n", [".version", "garbage", "git checkout"], id="garbage"),
    ],
)
def test_unreadable_version_is_refused(repo: Path, content: bytes, needles: list[str]) -> None:
    store = repo / ".taskstore"
    (store / ".version").write_bytes(content)
    before = snapshot(store)
    for args in (
        ["list", "tasks"],
        ["put", "tasks", '{"id": "new"}'],
        ["get", "tasks", "t1"],
        ["init"],
        ["check"],
    ):
        assert_fails(cli(*args, cwd=repo), 1, *needles)
        assert snapshot(store) == before, args
    assert (store / ".version").read_bytes() == content


def test_store_path_that_is_a_file_is_refused(repo: Path, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a store\n")
    for args, env in (
        (["list", "tasks", "--store", str(afile)], None),
        (["put", "tasks", '{"id": "x"}', "--store", str(afile)], None),
        (["init", "--store", str(afile)], None),
        (["get", "tasks", "t1"], {"TASKSTORE_DIR": str(afile)}),
    ):
        assert_fails(cli(*args, cwd=repo, env=env), 1, "afile", "is a file", "--store")
        assert afile.read_text() == "not a store\n"

    # Discovery finds a file where the store folder should be.
    bare = init_repo(tmp_path / "bare")
    (bare / ".taskstore").write_text("oops\n")
    assert_fails(cli("put", "tasks", '{"id": "x"}', cwd=bare), 1, ".taskstore", "is a file")
    assert (bare / ".taskstore").read_text() == "oops\n"


# --- damaged files ---------------------------------------------------------------------


def test_unparseable_and_non_utf8_lines_are_skipped_reported_and_kept(repo: Path) -> None:
    path = repo / ".taskstore" / "tasks.jsonl"
    bad_json = b'{"id": "b1", oops}'
    bad_utf8 = b'{"id": "b2", "title": "\xff\xfe"}'
    with open(path, "ab") as handle:
        handle.write(bad_json + b"\n" + bad_utf8 + b"\n" + b'{"id": "t5"}\n')

    result = ok(cli("list", "tasks", "--json", cwd=repo))
    assert [r["id"] for r in json.loads(result.out)] == [*SEED_IDS, "t5"]
    warnings = warnings_only(result.err)
    assert any("tasks.jsonl:5" in w and "not valid JSON" in w for w in warnings), result
    assert any("tasks.jsonl:6" in w and "UTF-8" in w for w in warnings), result

    result = cli("check", cwd=repo)
    assert result.code == 1, result
    assert ".taskstore/tasks.jsonl:5: not valid JSON" in result.out
    assert ".taskstore/tasks.jsonl:6: not valid UTF-8" in result.out
    assert "2 problem(s)" in result.err and "Traceback" not in result.err
    problems = json.loads(cli("check", "--json", cwd=repo).out)["problems"]
    assert [(p["line"], p["path"].endswith("tasks.jsonl")) for p in problems] == [
        (5, True),
        (6, True),
    ]

    # Writes and compaction go on around them, and never drop them.
    ok(cli("put", "tasks", '{"id": "t6"}', cwd=repo))
    result = ok(cli("compact", "--json", cwd=repo))
    assert json.loads(result.out)[0]["bad_lines_kept"] == 2
    assert all("tasks.jsonl:" in w for w in warnings_only(result.err))
    content = path.read_bytes()
    assert bad_json + b"\n" in content and bad_utf8 + b"\n" in content
    assert ids(cli("list", "tasks", "--json", "--where", "id~t", cwd=repo)) == [
        *SEED_IDS,
        "t5",
        "t6",
    ]
    assert cli("check", cwd=repo).code == 1


CONFLICTED = (
    b'{"id": "p1", "v": 1}\n'
    b"<<<<<<< HEAD\n"
    b'{"id": "p2", "v": 1}\n'
    b"=======\n"
    b'{"id": "p2", "v": 2}\n'
    b">>>>>>> theirs\n"
)


def test_conflict_markers_fail_one_collection_only(repo: Path) -> None:
    store = repo / ".taskstore"
    (store / "plans.jsonl").write_bytes(CONFLICTED)
    before = snapshot(store)

    # Writes into the conflicted collection are refused and write nothing.
    assert_fails(cli("put", "plans", '{"id": "p9"}', cwd=repo), 1, "plans.jsonl:2", "conflict")
    assert_fails(cli("delete", "plans", "p1", cwd=repo), 1, "plans.jsonl:2", "conflict")
    assert snapshot(store) == before

    # Reading it names the file, the first marker line and the fix.
    line = assert_fails(cli("list", "plans", cwd=repo), 1, ".taskstore/plans.jsonl:2")
    assert "conflict markers" in line and "edit the file" in line and "git add" in line
    assert_fails(cli("get", "plans", "p1", cwd=repo), 1, "plans.jsonl:2")

    # Every other collection keeps working.
    assert ids(cli("list", "tasks", "--json", cwd=repo)) == SEED_IDS
    ok(cli("put", "tasks", '{"id": "t5"}', cwd=repo))

    result = cli("check", cwd=repo)
    assert result.code == 1, result
    for number in (2, 4, 6):
        assert f".taskstore/plans.jsonl:{number}: merge conflict marker" in result.out
    assert "tasks.jsonl" not in result.out
    assert "conflict" in ok(cli("status", cwd=repo)).out
    assert (store / "plans.jsonl").read_bytes() == CONFLICTED


def test_writes_stay_refused_after_a_read_saw_the_conflict(repo: Path) -> None:
    """A read records the conflict in the cache; a later write must still see it.

    (Cache._sync used to answer "fresh" for the unchanged file and let the write append.)
    """
    store = repo / ".taskstore"
    path = store / "plans.jsonl"
    path.write_bytes(CONFLICTED)
    old = path.stat().st_mtime - 60  # as after any checkout a minute ago
    os.utime(path, (old, old))
    assert_fails(cli("list", "plans", cwd=repo), 1, "plans.jsonl:2")
    before = snapshot(store)
    put = cli("put", "plans", '{"id": "p9"}', cwd=repo)
    delete = cli("delete", "plans", "p1", cwd=repo)
    assert snapshot(store) == before
    assert_fails(put, 1, "plans.jsonl:2", "conflict")
    assert_fails(delete, 1, "plans.jsonl:2", "conflict")


def test_the_fix_named_for_conflict_markers_works(repo: Path) -> None:
    (repo / ".taskstore" / "plans.jsonl").write_bytes(CONFLICTED)
    line = assert_fails(cli("list", "plans", cwd=repo), 1)
    assert "git taskstore resolve" in line
    ok(cli("resolve", cwd=repo))
    ok(cli("list", "plans", cwd=repo))
    ok(cli("check", cwd=repo))


def test_a_torn_last_line_never_glues_onto_the_next_record(repo: Path) -> None:
    path = repo / ".taskstore" / "tasks.jsonl"
    ok(cli("list", "tasks", cwd=repo))  # the cache has read the whole file
    torn = b'{"id": "t9", "title": "half a rec'
    with open(path, "ab") as handle:  # what a crash in the middle of a write leaves
        handle.write(torn)

    result = ok(cli("list", "tasks", "--json", cwd=repo))
    assert [r["id"] for r in json.loads(result.out)] == SEED_IDS
    assert any("tasks.jsonl:5" in w for w in warnings_only(result.err)), result

    written = data(
        cli("put", "tasks", '{"id": "t5", "title": "after the crash"}', "--json", cwd=repo)
    )
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # the file ends with a newline again
    assert lines[4] == torn  # the fragment stays, alone on its line
    assert json.loads(lines[5]) == written

    listed = ids(cli("list", "tasks", "--json", cwd=repo))
    assert listed == [*SEED_IDS, "t5"]
    result = cli("check", cwd=repo)
    assert result.code == 1 and ".taskstore/tasks.jsonl:5: not valid JSON" in result.out, result
    assert result.out.count("\n") == 1, result  # only the torn line


def test_a_torn_line_without_a_prior_read(repo: Path) -> None:
    """The crash, then straight away a write by a fresh process with no cache."""
    path = repo / ".taskstore" / "tasks.jsonl"
    with open(path, "ab") as handle:
        handle.write(b'{"id": "t9", "ti')
    ok(cli("put", "tasks", '{"id": "t5"}', cwd=repo))
    lines = path.read_bytes().split(b"\n")
    assert lines[4] == b'{"id": "t9", "ti' and json.loads(lines[5])["id"] == "t5"
    assert ids(cli("list", "tasks", "--json", cwd=repo)) == [*SEED_IDS, "t5"]


@pytest.mark.parametrize(
    "damage",
    ["deleted", "garbage", "random", "truncated"],
)
def test_a_lost_or_corrupt_cache_is_rebuilt_quietly(repo: Path, damage: str) -> None:
    store = repo / ".taskstore"
    ok(cli("list", "tasks", cwd=repo))
    db = store / "taskstore.db"
    before = snapshot(store)
    if damage == "deleted":
        for name in CACHE_NAMES[:3]:
            (store / name).unlink(missing_ok=True)
    elif damage == "garbage":
        for name in CACHE_NAMES[1:3]:
            (store / name).unlink(missing_ok=True)
        db.write_bytes(b"this is not a database\n" * 100)
    elif damage == "random":
        for name in CACHE_NAMES[1:3]:
            (store / name).unlink(missing_ok=True)
        db.write_bytes(os.urandom(8192))
    else:
        for name in CACHE_NAMES[1:3]:
            (store / name).unlink(missing_ok=True)
        content = db.read_bytes()
        db.write_bytes(content[: len(content) // 2])

    result = ok(cli("list", "tasks", "--json", cwd=repo))
    assert [r["id"] for r in json.loads(result.out)] == SEED_IDS
    for line in result.err.splitlines():
        assert line.startswith("note: "), result
    assert len(result.err.splitlines()) <= 1, result
    assert snapshot(store) == before
    ok(cli("check", cwd=repo))  # and the rebuilt cache is sound


# --- --store on the git commands ------------------------------------------------------


def test_install_and_uninstall_hooks_take_the_repo_of_store(repo: Path, tmp_path: Path) -> None:
    hooks = repo / ".git" / "hooks"
    ok(cli("uninstall-hooks", cwd=repo))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    installed = data(
        cli("install-hooks", "--store", str(repo / ".taskstore"), "--json", cwd=elsewhere)
    )
    assert Path(installed["hooks_dir"]).resolve() == hooks.resolve()
    assert {"pre-commit", "post-merge", "post-rewrite", "pre-push", "post-checkout"} <= {
        p.name for p in hooks.iterdir()
    }
    # TASKSTORE_DIR does the same; a store folder that does not exist yet is fine.
    env = {"TASKSTORE_DIR": str(repo / "not-yet" / ".taskstore")}
    removed = data(cli("uninstall-hooks", "--json", cwd=elsewhere, env=env))
    assert sorted(removed["removed"]) == sorted(installed["written"])
    assert not (hooks / "pre-commit").exists()
    # A store outside git: one line that says so, and how to name another.
    assert_fails(
        cli("install-hooks", "--store", str(elsewhere / ".taskstore"), cwd=repo),
        1,
        "elsewhere/.taskstore is not inside a git work tree",
        "--store",
    )


def test_hook_run_works_on_the_store_named(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-store"
    ok(cli("init", "--no-hooks", "--store", str(other), cwd=repo))
    ok(cli("put", "notes", '{"id": "n1"}', "--store", str(other), cwd=repo))
    with open(other / "notes.jsonl", "a") as handle:  # as a merge leaves it
        handle.write('{"id": "n2", "updated_at": 5}\n')

    def freshness() -> str:
        status = data(cli("status", "--store", str(other), "--json", cwd=repo))
        return str(status["collections"][0]["freshness"])

    assert freshness() == "stale"
    ok(cli("hook-run", "post-merge", "0", cwd=repo))  # the repo's own store: not this one
    assert freshness() == "stale"
    ok(cli("hook-run", "--store", str(other), "post-merge", "0", cwd=repo))
    assert freshness() == "fresh"
    # Before the command name too, as for every command; after HOOK it is the hook's.
    with open(other / "notes.jsonl", "a") as handle:
        handle.write('{"id": "n3", "updated_at": 6}\n')
    ok(cli("--store", str(other), "hook-run", "post-rewrite", "rebase", cwd=repo))
    assert freshness() == "fresh"


def test_merge_takes_store_and_passes_the_files_through(tmp_path: Path) -> None:
    base = '{"id": "a", "v": 1, "updated_at": 1}\n'
    (tmp_path / "base").write_text(base)
    (tmp_path / "-ours").write_text(base + '{"id": "b", "updated_at": 2}\n')
    (tmp_path / "theirs").write_text(base + '{"id": "c", "updated_at": 3}\n')
    # A file named like an option after BASE is a file: git names them, not the user.
    ok(cli("merge", "--store", str(tmp_path / "x"), "base", "-ours", "theirs", cwd=tmp_path))
    merged = [json.loads(line)["id"] for line in (tmp_path / "-ours").read_text().splitlines()]
    assert merged == ["a", "b", "c"]
    assert not (tmp_path / "x").exists()  # the driver opens no store


# --- version, help and the process ----------------------------------------------------


def git_taskstore(*args: str, cwd: Path) -> Result:
    """`git taskstore ARGS...` as a user types it: git finds git-taskstore on PATH."""
    proc = subprocess.run(
        ["git", "taskstore", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def test_version_is_the_installed_package_version(tmp_path: Path, venv_first_on_path: None) -> None:
    installed = importlib.metadata.version("git-taskstore")
    assert installed == __version__
    for flag in ("--version", "-V"):
        result = ok(git_taskstore(flag, cwd=tmp_path))
        assert result.out == f"git-taskstore, version {installed}\n" and result.err == ""


def test_version_and_list_import_only_what_they_need(seeded: Path) -> None:
    probe = (
        "import sys\n"
        "from git_taskstore.entry import main\n"
        "main(sys.argv[1:])\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('click', 'pygit2', 'git_taskstore'))), file=sys.stderr)\n"
    )

    def loaded(*args: str) -> set[str]:
        proc = subprocess.run(
            [sys.executable, "-c", probe, *args],
            cwd=seeded,
            capture_output=True,
            text=True,
            check=True,
        )
        return set(proc.stderr.split())

    assert not {"click", "git_taskstore.cli", "git_taskstore.store"} & loaded("--version")
    listed = loaded("list", "tasks", "--where", "status=open", "--limit", "10")
    assert "git_taskstore.cli.records" in listed
    assert not {"pygit2", "git_taskstore.git", "git_taskstore.hooks", "git_taskstore.history"} & (
        listed
    )
    assert not {m for m in listed if m.startswith("git_taskstore.cli.")} - {
        "git_taskstore.cli.common",
        "git_taskstore.cli.records",
    }


def test_help_through_git(tmp_path: Path, venv_first_on_path: None) -> None:
    """git turns `git taskstore --help` into `man git-taskstore`: -h and `help` are the
    ways to the help, and every hint names them."""
    short = ok(git_taskstore("-h", cwd=tmp_path))
    listed = {line.split()[0] for line in short.out.splitlines() if line.startswith("  ")}
    assert set(COMMANDS) <= listed, short
    assert "TASKSTORE_DIR" in short.out and "git taskstore help COMMAND" in short.out
    assert ok(git_taskstore("help", cwd=tmp_path)).out == short.out
    for name in ("list", "help", "hook-run"):
        assert ok(git_taskstore("help", name, cwd=tmp_path)).out == (
            ok(git_taskstore(name, "-h", cwd=tmp_path)).out
        )
    assert ok(git_taskstore("help", "list", cwd=tmp_path)).out.startswith(
        "Usage: git taskstore list [OPTIONS] COLLECTION"
    )
    assert_fails(git_taskstore("help", "nope", cwd=tmp_path), 2, "no command 'nope'")
    # A usage error: one line, exit 2, pointing at -h.
    line = assert_fails(git_taskstore("list", cwd=tmp_path), 2, "COLLECTION")
    assert line.endswith("(see 'git taskstore list -h')")
    line = assert_fails(git_taskstore("frobnicate", cwd=tmp_path), 2, "frobnicate")
    assert line.endswith("(see 'git taskstore -h')")
    # An expected failure: one line, exit 1.
    assert_fails(git_taskstore("get", "tasks", "t1", cwd=tmp_path), 1, "no store")
    # No command at all: the help on stderr and exit 2 (a usage error), not an "error:".
    result = git_taskstore(cwd=tmp_path)
    assert result.code == 2 and result.out == "", result
    assert result.err.startswith("Usage: git taskstore") and "error:" not in result.err, result
    assert set(COMMANDS) <= set(result.err.split())


def test_no_hint_sends_anyone_to_dash_dash_help(tmp_path: Path) -> None:
    # merge and hook-run hand every argument to the driver and the hooks, unread.
    for name in sorted(set(COMMANDS) - {"merge", "hook-run"}):
        result = cli(name, "--no-such-option", cwd=tmp_path)
        line = assert_fails(result, 2, "--no-such-option")
        assert line.endswith(f"(see 'git taskstore {name} -h')"), line


def test_commands_that_write_or_read_a_path_refuse_ones_that_reach_the_store_or_outside(
    repo: Path, tmp_path: Path
) -> None:
    """export-json -o onto a collection, a backup into the store, resolve of a file
    outside the store or of a link, check of a file outside the work tree: one line each,
    no byte of the store or of the outside file changed. (Mutation: drop the is_inside
    check in export-json, and tasks.jsonl becomes the export.)"""
    store = repo / ".taskstore"
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(b"<<<<<<< ours\n{}\n=======\n{}\n>>>>>>> theirs\n")
    os.symlink(outside, store / "link.jsonl")
    before, outside_before = snapshot(store), outside.read_bytes()
    for args, message in (
        (("export-json", "-o", str(store / "tasks.jsonl")), "is inside the store"),
        (("export-json", "-o", ".taskstore/new.json"), "is inside the store"),
        (("backup", str(store / "nested")), "is inside the store"),
        (("resolve", str(outside)), "is not a JSONL file of the store"),
        (("resolve", str(store / "link.jsonl")), "is not a JSONL file of the store"),
        (("check", str(outside)), "is not a JSONL file in this work tree"),
    ):
        result = cli(*args, cwd=repo)
        assert_fails(result, 1, message)
        assert len(result.err.strip().splitlines()) == 1, result.err
    assert snapshot(store) == before
    assert outside.read_bytes() == outside_before
