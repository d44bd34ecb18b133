"""The task-model commands of `git taskstore`, called in-process in real git repos.

create-prd, create-task-spec, create-execution, create-dependency, create-workflow,
set-status, list-prds, list-task-specs, list-executions, show, describe, and what the
task model adds to delete (--cascade), stats (per status) and check (missing bodies).
Failures are checked for the whole user-visible contract: the exit code, ONE `error: `
line on stderr, no traceback, nothing on stdout, every file of the store unchanged.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from testing import CACHE_NAMES, Result, assert_fails, data, init_repo, ok, snapshot
from testing.inprocess import cli

from git_taskstore import Store
from git_taskstore.taskmodel import PRD, Dependency, Execution, TaskModel, TaskSpec, Workflow

# The cache and lock files: derived, never committed, free to change on any read.
ID_RE = r"[0-9a-z]{16}"


# --- helpers ---------------------------------------------------------------------------


def created_id(result: Result, prefix: str) -> str:
    """create-* without --json: stdout is the id and nothing else."""
    ok(result)
    assert result.err == "", result
    assert re.fullmatch(re.escape(prefix) + ID_RE + "\n", result.out), result
    return result.out.strip()


def table(result: Result) -> list[list[str]]:
    """A table on stdout: the header and rows, split on runs of 2+ blanks."""
    ok(result)
    return [re.split(r"\s{2,}", line.strip()) for line in result.out.splitlines()]


def store_of(repo: Path) -> Store:
    return Store.open(repo)


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A git repo after `git taskstore init`, holding a small task model:

    PRD a (draft) with task specs s1 (pending, workflow tdd, assigned agent-1) and s2
    (blocked); PRD b (ready) without; executions e1 (running) and e2 (complete) of s1,
    then e3 (running) of s2, started in that order; a dependency e1 -> e2.
    """
    repo = init_repo(tmp_path_factory.mktemp("template") / "repo")
    ok(cli("init", cwd=repo))
    with store_of(repo) as store:  # seeded in-process: cheaper than 9 processes
        m = TaskModel(store)
        wf = m.create_workflow("tdd", description="test first", content="red, green")
        a = m.create_prd("Add OAuth Authentication", description="login via OAuth")
        b = m.create_prd("Billing", status="ready")
        s1 = m.create_task_spec(a.id, "Implementation", workflow_name="tdd", assigned_to="agent-1")
        s2 = m.create_task_spec(a.id, "Review", status="blocked")
        e1 = m.create_execution(
            s1.id, worktree_path="/wt/1", branch_name="oauth", current_phase="red"
        )
        time.sleep(0.005)
        e2 = m.create_execution(s1.id)
        m.set_status(e2.id, "complete")
        time.sleep(0.005)
        e3 = m.create_execution(s2.id)
        dep = m.create_dependency(
            e1.id, to_exec_id=e2.id, dependency_type="share", payload={"files": ["a.py"]}
        )
    ids = {
        "wf": wf.id,
        "prd": a.id,
        "prd_b": b.id,
        "s1": s1.id,
        "s2": s2.id,
        "e1": e1.id,
        "e2": e2.id,
        "e3": e3.id,
        "dep": dep.id,
    }
    return repo, ids


@pytest.fixture
def repo(template: tuple[Path, dict[str, str]], tmp_path: Path) -> Path:
    """A private copy of the template repo (without the cache)."""
    dest = tmp_path / "repo"
    shutil.copytree(template[0], dest, ignore=shutil.ignore_patterns(*CACHE_NAMES))
    return dest


@pytest.fixture
def seeded(template: tuple[Path, dict[str, str]]) -> Path:
    """The template itself, for tests that only read."""
    return template[0]


@pytest.fixture
def ids(template: tuple[Path, dict[str, str]]) -> dict[str, str]:
    return template[1]


# --- create-* ------------------------------------------------------------------------------


def test_create_commands_print_only_the_id(repo: Path, ids: dict[str, str]) -> None:
    prd = created_id(
        cli("create-prd", "Rate limiting", "--description", "per user", cwd=repo), "prd-"
    )
    wf = created_id(cli("create-workflow", "deploy", cwd=repo), "wf-")
    spec = created_id(
        cli(
            "create-task-spec",
            prd,
            "Build it",
            "--workflow",
            "deploy",
            "--assign",
            "ana",
            "--status",
            "blocked",
            "--description",
            "the code",
            cwd=repo,
        ),
        "ts-",
    )
    execution = created_id(
        cli(
            "create-execution", spec, "--worktree", "/w", "--branch", "b", "--phase", "p", cwd=repo
        ),
        "exec-",
    )
    dep = created_id(cli("create-dependency", execution, cwd=repo), "dep-")

    with store_of(repo) as store:
        m = TaskModel(store)
        p = store.get(PRD, prd)
        assert p is not None
        assert (p.title, p.description, p.status, p.file) == (
            "Rate limiting",
            "per user",
            "draft",
            "prds/rate-limiting.md",
        )
        assert m.body(p) == "# Rate limiting\n"
        s = store.get(TaskSpec, spec)
        assert s is not None
        assert (s.prd_id, s.phase_name, s.status, s.workflow_name, s.assigned_to) == (
            prd,
            "Build it",
            "blocked",
            "deploy",
            "ana",
        )
        assert (s.description, s.file) == ("the code", "task_specs/build-it.md")
        assert m.body(s) == "# Build it\n"
        e = store.get(Execution, execution)
        assert e is not None
        assert (e.ts_id, e.worktree_path, e.branch_name, e.current_phase, e.status) == (
            spec,
            "/w",
            "b",
            "p",
            "running",
        )
        d = store.get(Dependency, dep)
        assert d is not None
        assert (d.from_exec_id, d.to_exec_id, d.dependency_type, d.payload) == (
            execution,
            None,
            "notify",
            None,
        )
        w = store.get(Workflow, wf)
        assert w is not None and (w.name, w.version, w.content) == ("deploy", 1, "")


def test_create_commands_with_json(repo: Path, ids: dict[str, str]) -> None:
    prd = data(cli("create-prd", "Search", "--status", "ready", "--json", cwd=repo))
    assert prd["id"].startswith("prd-") and prd["status"] == "ready"
    assert prd["file"] == "prds/search.md" and prd["created_at"] == prd["updated_at"] > 0
    spec = data(
        cli(
            "create-task-spec", prd["id"], "Index", "--workflow", "tdd", "--assign", "bo",
            "--json", cwd=repo,
        )
    )  # fmt: skip
    assert (spec["prd_id"], spec["workflow_name"], spec["assigned_to"]) == (prd["id"], "tdd", "bo")
    assert spec["status"] == "pending" and spec["file"] == "task_specs/index.md"
    execution = data(cli("create-execution", spec["id"], "--json", cwd=repo))
    assert execution["status"] == "running" and execution["started_at"] > 0
    assert execution["completed_at"] is None and execution["iteration_count"] == 0
    payload = {"question": "which port?", "n": [1, 2.5, None, True]}
    dep = data(
        cli(
            "create-dependency", ids["e1"], "--to", execution["id"], "--type", "query",
            "--payload", json.dumps(payload), "--json", cwd=repo,
        )
    )  # fmt: skip
    assert dep["id"].startswith("dep-") and dep["payload"] == payload
    assert (dep["from_exec_id"], dep["to_exec_id"]) == (ids["e1"], execution["id"])
    assert dep["dependency_type"] == "query"
    wf = data(
        cli(
            "create-workflow", "release", "--version", "3", "--description", "ship",
            "--content-file", "-", "--json", cwd=repo, input="1. tag\n2. push\n",
        )
    )  # fmt: skip
    assert (wf["name"], wf["version"], wf["description"]) == ("release", 3, "ship")
    assert wf["content"] == "1. tag\n2. push\n"
    with store_of(repo) as store:
        for model, record in [
            (PRD, prd),
            (TaskSpec, spec),
            (Execution, execution),
            (Dependency, dep),
            (Workflow, wf),
        ]:
            stored = store.collection(model.collection()).get(record["id"])
            assert stored == record


def test_create_prd_body_from_a_file_and_from_stdin(repo: Path, tmp_path: Path) -> None:
    text = "# Login\n\nUse **OAuth** — PKCE, ünïcödé.\n"
    source = tmp_path / "body.md"
    source.write_text(text, encoding="utf-8")
    first = created_id(cli("create-prd", "Login", "--body-file", str(source), cwd=repo), "prd-")
    piped = "from stdin\nno heading"
    second = created_id(
        cli("create-prd", "Login", "--body-file", "-", cwd=repo, input=piped), "prd-"
    )
    spec = created_id(
        cli("create-task-spec", first, "Design", "--body-file", "-", cwd=repo, input="spec\n"),
        "ts-",
    )
    bodies = repo / ".taskstore"
    assert (bodies / "prds/login.md").read_text(encoding="utf-8") == text
    assert (bodies / "prds/login-2.md").read_text(encoding="utf-8") == piped
    assert (bodies / "task_specs/design.md").read_text(encoding="utf-8") == "spec\n"
    got = data(cli("describe", second, "--json", cwd=repo))
    assert got == {"id": second, "file": "prds/login-2.md", "body": piped}
    assert source.read_text(encoding="utf-8") == text
    with store_of(repo) as store:
        assert store.get(TaskSpec, spec).file == "task_specs/design.md"  # type: ignore[union-attr]


def test_a_long_title_makes_a_short_file_name(repo: Path) -> None:
    """It used to die with a traceback: OSError, File name too long."""
    title = "Make the login page accept OAuth tokens from every provider we support " * 5
    prd = created_id(cli("create-prd", title, cwd=repo), "prd-")
    with store_of(repo) as store:
        record = store.get(PRD, prd)
        assert record is not None and record.title == title
        assert record.file is not None and len(Path(record.file).name.encode()) <= 120
        assert TaskModel(store).body(record) == f"# {' '.join(title.split())}\n"


# --- set-status -----------------------------------------------------------------------------


def test_set_status(repo: Path, ids: dict[str, str]) -> None:
    result = ok(cli("set-status", ids["prd"], "in_progress", cwd=repo))
    assert (result.out, result.err) == (f"{ids['prd']}: in_progress\n", "")
    spec = data(cli("set-status", ids["s2"], "running", "--json", cwd=repo))
    assert spec["id"] == ids["s2"] and spec["status"] == "running"
    assert spec["file"] == "task_specs/review.md"
    before = time.time_ns() // 1_000_000
    done = data(cli("set-status", ids["e1"], "failed", "--json", cwd=repo))
    assert done["status"] == "failed"
    assert isinstance(done["completed_at"], int) and done["completed_at"] >= before
    with store_of(repo) as store:
        assert store.get(PRD, ids["prd"]).status == "in_progress"  # type: ignore[union-attr]
        assert store.collection("executions").get(ids["e1"]) == done


# --- list-* ---------------------------------------------------------------------------------


def test_list_prds(seeded: Path, ids: dict[str, str]) -> None:
    rows = table(cli("list-prds", cwd=seeded))
    assert rows[0] == ["ID", "STATUS", "TITLE", "REVIEWS", "UPDATED_AT"]
    assert [r[:4] for r in rows[1:]] == [
        [ids["prd"], "draft", "Add OAuth Authentication", "0"],
        [ids["prd_b"], "ready", "Billing", "0"],
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows[1][4])
    listed = data(cli("list-prds", "--json", cwd=seeded))
    assert [p["id"] for p in listed] == [ids["prd"], ids["prd_b"]]
    assert listed[0]["file"] == "prds/add-oauth-authentication.md"
    assert [p["id"] for p in data(cli("list-prds", "--status", "ready", "--json", cwd=seeded))] == [
        ids["prd_b"]
    ]
    assert data(cli("list-prds", "--status", "failed", "--json", cwd=seeded)) == []
    empty = ok(cli("list-prds", "--status", "failed", cwd=seeded))
    assert (empty.out, empty.err) == ("", "nothing to list\n")


def test_list_task_specs(seeded: Path, ids: dict[str, str]) -> None:
    rows = table(cli("list-task-specs", cwd=seeded))
    assert rows[0] == ["ID", "PRD", "PHASE", "STATUS", "ASSIGNED", "UPDATED_AT"]
    assert len(rows) == 3
    assert rows[1][:5] == [ids["s1"], ids["prd"], "Implementation", "pending", "agent-1"]
    # No assignee: an empty cell, so the time follows the status.
    assert rows[2][:4] == [ids["s2"], ids["prd"], "Review", "blocked"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows[2][4])
    of_a = data(cli("list-task-specs", ids["prd"], "--json", cwd=seeded))
    assert [s["id"] for s in of_a] == [ids["s1"], ids["s2"]]
    assert of_a[0]["workflow_name"] == "tdd"
    blocked = data(cli("list-task-specs", ids["prd"], "--status", "blocked", "--json", cwd=seeded))
    assert [s["id"] for s in blocked] == [ids["s2"]]
    assert data(cli("list-task-specs", ids["prd_b"], "--json", cwd=seeded)) == []


def test_list_executions_newest_first_with_filters_and_limit(
    seeded: Path, ids: dict[str, str]
) -> None:
    rows = table(cli("list-executions", cwd=seeded))
    assert rows[0] == [
        "ID",
        "TASK SPEC",
        "STATUS",
        "PHASE",
        "ITERATIONS",
        "STARTED_AT",
        "UPDATED_AT",
    ]
    assert [r[0] for r in rows[1:]] == [ids["e3"], ids["e2"], ids["e1"]]

    def listed(*args: str) -> list[str]:
        return [e["id"] for e in data(cli("list-executions", *args, "--json", cwd=seeded))]

    assert listed() == [ids["e3"], ids["e2"], ids["e1"]]
    assert listed("--limit", "2") == [ids["e3"], ids["e2"]]
    assert listed("--status", "running") == [ids["e3"], ids["e1"]]
    assert listed("--status", "running", "--limit", "1") == [ids["e3"]]
    assert listed("--status", "complete", "--limit", "5") == [ids["e2"]]
    assert listed("--limit", "0") == []


# --- show -----------------------------------------------------------------------------------


def test_show_by_id_finds_the_type(seeded: Path, ids: dict[str, str]) -> None:
    types = {
        "prd": "PRD",
        "s1": "TaskSpec",
        "e1": "Execution",
        "dep": "Dependency",
        "wf": "Workflow",
    }
    for key, type_name in types.items():
        shown = data(cli("show", ids[key], "--json", cwd=seeded))
        assert shown["type"] == type_name and shown["id"] == ids[key]
    dep = data(cli("show", ids["dep"], "--json", cwd=seeded))
    assert dep["payload"] == {"files": ["a.py"]} and dep["dependency_type"] == "share"
    lines = ok(cli("show", ids["prd"], cwd=seeded)).out.splitlines()
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in lines)
    assert fields["type"] == "PRD" and fields["id"] == ids["prd"]
    assert fields["title"] == "Add OAuth Authentication"
    assert fields["file"] == "prds/add-oauth-authentication.md"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", fields["created_at"])


@pytest.mark.parametrize(
    ("kind", "key", "type_name"),
    [
        ("prd", "prd", "PRD"),
        ("ts", "s1", "TaskSpec"),
        ("task-spec", "s2", "TaskSpec"),
        ("execution", "e1", "Execution"),
        ("exec", "e3", "Execution"),
        ("dep", "dep", "Dependency"),
        ("dependency", "dep", "Dependency"),
        ("workflow", "wf", "Workflow"),
        ("wf", "wf", "Workflow"),
    ],
)
def test_show_kind_id(
    seeded: Path, ids: dict[str, str], kind: str, key: str, type_name: str
) -> None:
    shown = data(cli("show", kind, ids[key], "--json", cwd=seeded))
    assert shown["type"] == type_name and shown["id"] == ids[key]


# --- describe --------------------------------------------------------------------------------


def test_describe_shows_the_body_as_it_is_on_disk(repo: Path, ids: dict[str, str]) -> None:
    result = ok(cli("describe", ids["prd"], cwd=repo))
    assert (result.out, result.err) == ("# Add OAuth Authentication\n", "")
    body = repo / ".taskstore/prds/add-oauth-authentication.md"
    body.write_text("# Edited by hand\n\n- [x] done\n", encoding="utf-8")
    assert ok(cli("describe", ids["prd"], cwd=repo)).out == "# Edited by hand\n\n- [x] done\n"
    spec = repo / ".taskstore/task_specs/review.md"
    spec.write_text("no newline at the end", encoding="utf-8")
    assert ok(cli("describe", ids["s2"], cwd=repo)).out == "no newline at the end\n"
    assert data(cli("describe", ids["s2"], "--json", cwd=repo)) == {
        "id": ids["s2"],
        "file": "task_specs/review.md",
        "body": "no newline at the end",
    }


def test_a_missing_body_fails_describe_and_check_names_it(repo: Path, ids: dict[str, str]) -> None:
    ok(cli("check", cwd=repo))
    (repo / ".taskstore/task_specs/implementation.md").unlink()
    before = snapshot(repo / ".taskstore")
    assert_fails(cli("describe", ids["s1"], cwd=repo), 1, ids["s1"], "task_specs/implementation.md")
    checked = cli("check", cwd=repo)
    assert checked.code == 1, checked
    assert "Traceback" not in checked.out + checked.err
    lines = checked.out.splitlines()
    assert len(lines) == 1, checked
    assert "task_specs.jsonl" in lines[0] and ids["s1"] in lines[0], checked
    assert "task_specs/implementation.md is missing" in lines[0], checked
    assert checked.err == "1 problem(s) found\n", checked
    report = json.loads(cli("check", "--json", cwd=repo).out)
    assert report["ok"] is False and len(report["problems"]) == 1
    assert snapshot(repo / ".taskstore") == before


# --- stats ------------------------------------------------------------------------------------


def test_stats_lists_counts_per_status(seeded: Path) -> None:
    rows = {r["name"]: r for r in data(cli("stats", "--json", cwd=seeded))}
    assert {name: r["by_status"] for name, r in rows.items()} == {
        "dependencies": {},
        "executions": {"complete": 1, "running": 2},
        "prds": {"draft": 1, "ready": 1},
        "task_specs": {"blocked": 1, "pending": 1},
        "workflows": {},
    }
    assert {name: r["records"] for name, r in rows.items()} == {
        "dependencies": 1,
        "executions": 3,
        "prds": 2,
        "task_specs": 2,
        "workflows": 1,
    }
    text = table(cli("stats", cwd=seeded))
    assert text[0][0] == "COLLECTION" and text[0][-1] == "BY STATUS"
    by_name = {row[0]: row for row in text[1:]}
    assert sorted(by_name["prds"][-1].split(", ")) == ["draft 1", "ready 1"]
    assert sorted(by_name["executions"][-1].split(", ")) == ["complete 1", "running 2"]
    assert by_name["(total)"][1] == "9"


# --- delete --------------------------------------------------------------------------------


def test_delete_a_prd_with_task_specs_is_refused_then_cascades(
    repo: Path, ids: dict[str, str]
) -> None:
    store_dir = repo / ".taskstore"
    before = snapshot(store_dir)
    assert_fails(cli("delete", "prds", ids["prd"], cwd=repo), 1, ids["s1"], ids["s2"], "--cascade")
    assert snapshot(store_dir) == before

    result = ok(cli("delete", "prds", ids["prd"], "--cascade", cwd=repo))
    assert result.out.splitlines() == [
        f"deleted task_specs/{ids['s1']}",
        f"deleted task_specs/{ids['s2']}",
        f"deleted prds/{ids['prd']}",
    ]
    assert not (store_dir / "prds/add-oauth-authentication.md").exists()
    assert not (store_dir / "task_specs/implementation.md").exists()
    assert not (store_dir / "task_specs/review.md").exists()
    tail = [json.loads(line) for line in (store_dir / "prds.jsonl").read_text().splitlines()]
    assert tail[-1]["id"] == ids["prd"] and tail[-1]["deleted"] is True
    assert data(cli("list-task-specs", "--json", cwd=repo)) == []
    assert [p["id"] for p in data(cli("list-prds", "--json", cwd=repo))] == [ids["prd_b"]]
    ok(cli("check", cwd=repo))  # no body is reported missing: they went with the records

    gone = data(cli("delete", "prds", ids["prd_b"], "--json", cwd=repo))
    assert gone == {
        "collection": "prds",
        "id": ids["prd_b"],
        "deleted": True,
        "records": [f"prds/{ids['prd_b']}"],
    }
    assert not (store_dir / "prds/billing.md").exists()


def test_delete_a_task_spec_takes_its_body(repo: Path, ids: dict[str, str]) -> None:
    result = ok(cli("delete", "task_specs", ids["s2"], cwd=repo))
    assert result.out == f"deleted task_specs/{ids['s2']}\n"
    assert not (repo / ".taskstore/task_specs/review.md").exists()
    assert (repo / ".taskstore/task_specs/implementation.md").exists()


# --- failures --------------------------------------------------------------------------------

FAILURES: list[Any] = [
    # (args, stdin, exit code, needles in the error line); {key} is an id of the template.
    (["create-prd", ""], None, 1, ["title"]),
    (["create-prd", "T", "--status", "done"], None, 1, ["'done'", ", ".join(
        ("draft", "ready", "active", "in_progress", "complete", "failed", "cancelled"))]),
    # click.File opens the file: a missing one is a bad argument (exit 2), named.
    (["create-prd", "T", "--body-file", "no-such.md"], None, 2,
     ["--body-file", "'no-such.md': No such file"]),
    (["create-prd"], None, 2, ["TITLE"]),
    (["create-task-spec", "prd-missing", "P"], None, 1, ["no PRD 'prd-missing'"]),
    (["create-task-spec", "{prd}", "P", "--status", "started"], None, 1,
     ["pending, blocked, running, complete, failed"]),
    (["create-task-spec", "{prd}", "P", "--workflow", "nope"], None, 1,
     ["no workflow named 'nope'"]),
    (["create-task-spec", "{prd}", " "], None, 1, ["phase_name"]),
    (["create-task-spec", "{prd}"], None, 2, ["PHASE"]),
    (["create-execution", "ts-missing"], None, 1, ["no task spec 'ts-missing'"]),
    (["create-dependency", "exec-missing"], None, 1, ["no execution 'exec-missing'"]),
    (["create-dependency", "{e1}", "--to", "exec-missing"], None, 1, ["exec-missing"]),
    (["create-dependency", "{e1}", "--type", "ask"], None, 1, ["notify, query, share"]),
    (["create-dependency", "{e1}", "--payload", "{{bad"], None, 1, ["--payload"]),
    (["create-workflow", "tdd"], None, 1, ["'tdd' already exists"]),
    (["create-workflow", ""], None, 1, ["name"]),
    (["create-workflow", "x", "--version", "-1"], None, 2, ["--version"]),
    (["create-workflow", "x", "--content-file", "no-such.md"], None, 2, ["no-such.md"]),
    (["set-status", "{prd}", "done"], None, 1, ["draft, ready, active"]),
    (["set-status", "{s1}", "ready"], None, 1, ["pending, blocked, running"]),
    (["set-status", "{e1}", "done"], None, 1, ["running, paused, complete, failed, stopped"]),
    (["set-status", "{wf}", "complete"], None, 1, ["has no status"]),
    (["set-status", "{dep}", "complete"], None, 1, ["has no status"]),
    (["set-status", "prd-missing", "ready"], None, 1, ["no record 'prd-missing'"]),
    (["set-status", "{prd}"], None, 2, ["STATUS"]),
    (["list-executions", "--limit", "-1"], None, 2, ["--limit"]),
    (["show", "bogus", "{prd}"], None, 2, ["KIND", "'bogus'", "prd"]),
    (["show", "prd", "{prd}", "extra"], None, 2, ["KIND"]),
    (["show"], None, 2, ["ID"]),
    (["show", "ts", "{prd}"], None, 1, ["no record"]),
    (["show", "prd-missing"], None, 1, ["no record 'prd-missing'"]),
    (["describe", "prd-missing"], None, 1, ["no record 'prd-missing'"]),
    (["describe", "{e1}"], None, 1, ["no markdown body"]),
    (["delete", "prds", "{prd}"], None, 1, ["{s1}", "{s2}", "--cascade"]),
    (["delete", "prds", "prd-missing"], None, 1, ["not found"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "stdin", "code", "needles"),
    FAILURES,
    ids=[" ".join(f[0]) or "-" for f in FAILURES],
)
def test_failures_are_one_error_line_and_write_nothing(
    repo: Path,
    ids: dict[str, str],
    args: list[str],
    stdin: str | None,
    code: int,
    needles: list[str],
) -> None:
    store_dir = repo / ".taskstore"
    with store_of(repo) as warm:  # a warm cache, as in real use (in-process: cheaper)
        warm.sync()
    before = snapshot(store_dir)
    argv = [a.format(**ids) for a in args]
    assert_fails(cli(*argv, cwd=repo, input=stdin), code, *(n.format(**ids) for n in needles))
    assert snapshot(store_dir) == before


def test_task_commands_before_init_say_so(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "fresh")
    for args in (["create-task-spec", "prd-x", "P"], ["list-prds"], ["describe", "prd-x"]):
        assert_fails(cli(*args, cwd=repo), 1, "git taskstore init")
    assert not (repo / ".taskstore").exists()


def test_a_refused_create_before_init_creates_no_store(tmp_path: Path) -> None:
    """create-prd and create-workflow create the store; a refused one used to as well."""
    repo = init_repo(tmp_path / "fresh")
    assert_fails(cli("create-prd", "T", "--status", "bogus", cwd=repo), 1, "draft, ready")
    assert_fails(cli("create-workflow", " ", cwd=repo), 1, "name")
    assert_fails(cli("create-prd", "T", "--body-file", "nope.md", cwd=repo), 2, "nope.md")
    (tmp_path / "latin1.md").write_bytes(b"caf\xe9\n")
    for args in (
        ["create-prd", "T", "--body-file", str(tmp_path / "latin1.md")],
        ["create-workflow", "w", "--content-file", "-"],
    ):
        stdin = b"caf\xe9\n" if "-" in args else None
        assert_fails(cli(*args, cwd=repo, input=stdin), 1, "is not UTF-8 text")
    assert not (repo / ".taskstore").exists()
