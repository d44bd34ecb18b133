"""examples/daemon_store.py, run as its users would (issue 14): a daemon's legacy JSONL
migrated under "the last line wins", then written by 8 threads and 2 processes, then two
branches merged by git, each step checked against the rule it claims."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from testing import commit_all, git, init_repo

from git_taskstore import Store

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "daemon_store.py"
T0 = 1_700_000_000_000


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("daemon_store", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["daemon_store"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def legacy_lines() -> dict[str, list[str]]:
    """What the home-made store left: versions in file order, tombstones with and without
    times, clocks that went backwards, lines without updated_at, corrupt lines."""
    loops = []
    for n in range(1, 21):
        loops.append({"id": f"L{n}", "status": "running", "type": "build", "iteration": 0,
                      "parent_id": None if n == 1 else "L1", "created_at": T0 + n,
                      "updated_at": T0 + 1000})  # fmt: skip
    # L2 changed later with a clock that had gone back an hour: the last line still wins.
    loops.append({**loops[1], "status": "paused", "iteration": 7, "updated_at": T0 - 3_600_000})
    loops.append({"id": "L5", "deleted": True})  # a legacy tombstone, no time at all
    loops.append({**loops[5], "status": "done"})  # L6, same updated_at as before
    signals = [
        {"id": f"S{n}", "loop_id": f"L{1 + n % 3}", "kind": "stop", "created_at": T0 + n}
        for n in range(1, 31)
    ]
    signals += [{**signals[n], "acknowledged_at": T0 + 500} for n in range(0, 30, 2)]
    events = [
        {"id": f"E{n}", "loop_id": "L1", "message": f"event {n} ü", "created_at": T0 + n}
        for n in range(1, 51)
    ]
    events.append({"id": "E3", "deleted": True, "updated_at": T0})  # older than E3 itself
    jobs = [{"id": f"J{n}", "loop_id": "L1", "tool": "grep", "created_at": T0 + n}
            for n in range(1, 11)]  # fmt: skip
    jobs += [{**jobs[n], "completed_at": T0 + 900, "result": "ok"} for n in range(5)]
    text = {
        "loops": [json.dumps(x) for x in loops] + ["{not json"],
        "signals": [json.dumps(x) for x in signals],
        "events": [json.dumps(x, ensure_ascii=False) for x in events],
        "tool_jobs": [json.dumps(x) for x in jobs] + ['{"id": "J99", "tool": "gr'],  # torn
    }
    return text


def last_line_wins(lines: list[str]) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("deleted") is True:
            state.pop(record["id"], None)
        else:
            state[record["id"]] = record
    return state


def run_example(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args], cwd=repo, capture_output=True, text=True
    )


def live(store: Store, collection: str) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in store.collection(collection).list()}


@pytest.mark.slow
def test_the_daemon_example_migrates_works_and_merges(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    lines = legacy_lines()
    for name, text in lines.items():
        (legacy / f"{name}.jsonl").write_text("\n".join(text) + "\n", encoding="utf-8")
    repo = init_repo(tmp_path / "repo")

    migrated = run_example(repo, "migrate", str(legacy))
    assert migrated.returncode == 0, migrated.stderr
    assert "Traceback" not in migrated.stderr
    with Store.open(repo, create=False) as store:
        for name, text in lines.items():
            # Every field exactly as the legacy line had it: nothing added, nothing lost.
            assert live(store, name) == last_line_wins(text), name
    assert "loops.jsonl:24: " in migrated.stderr  # the torn line, named
    commit_all(repo, "migrate")

    daemon = load_example()
    with Store.open(repo, create=False) as store:
        assert store.get(daemon.Loop, "L2").status is daemon.Status.PAUSED
        before = {s.id for s in daemon.unacknowledged(store, "L2")}
        assert before == {f"S{n}" for n in range(1, 31) if n % 3 == 1 and n % 2 == 0}

    # Branch a: two processes and eight threads at once, each iteration a read-modify-write.
    git(repo, "checkout", "-q", "-b", "a")
    workers = [
        subprocess.Popen([sys.executable, str(EXAMPLE), "work", loop, "5"], cwd=repo)
        for loop in ("L1", "L2", "L3")
    ]
    errors: list[BaseException] = []

    def worker(store: Store) -> None:
        try:
            for _ in range(3):
                daemon.work(store, "L3")
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    with Store.open(repo, create=False) as store:
        threads = [threading.Thread(target=worker, args=(store,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert [process.wait(timeout=120) for process in workers] == [0, 0, 0]
    commit_all(repo, "work on a")

    # Branch b, from before a: another loop's work.
    git(repo, "checkout", "-q", "-b", "b", "main")
    with Store.open(repo, create=False) as store:
        daemon.work(store, "L4")
    commit_all(repo, "work on b")

    git(repo, "checkout", "-q", "a")
    git(repo, "merge", "-q", "--no-edit", "b")
    with Store.open(repo, create=False) as store:
        loops = {loop.id: loop for loop in store.list(daemon.Loop)}
        assert (loops["L1"].iteration, loops["L2"].iteration) == (5, 12)  # 0 + 5, 7 + 5
        assert (loops["L3"].iteration, loops["L4"].iteration) == (29, 1)  # no lost increment
        for loop in ("L1", "L2", "L3", "L4"):
            assert daemon.unacknowledged(store, loop) == []
        jobs = store.list(daemon.ToolJob)
        assert len(jobs) == 10 + 5 + 5 + 5 + 24 + 1
        assert sum(job.completed_at is None for job in jobs) == 5  # the legacy ones only
        events = store.count(daemon.Event)
        assert events == 49 + 5 + 5 + 5 + 24 + 1
        for name in ("signals", "events", "tool_jobs"):
            # Immutable and self-versioned records: no line gained an updated_at (but the
            # legacy tombstone of E3, which had one).
            with open(store.file_path(name), encoding="utf-8") as handle:
                written = [json.loads(line) for line in handle]
            assert len(written) > len(last_line_wins(lines[name])), name
            assert all("updated_at" not in r for r in written if r["id"] != "E3"), name
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    # Migrating again leaves the daemon's work alone.
    again = run_example(repo, "migrate", str(legacy))
    assert again.returncode == 0 and "0 records imported" in again.stdout, again.stderr
    with Store.open(repo, create=False) as store:
        assert store.get(daemon.Loop, "L3").iteration == 29


def test_the_example_says_in_one_line_what_does_not_fit(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "loops.jsonl").write_text('{"id": "L1", "status": "stopped"}\n')
    repo = init_repo(tmp_path / "repo")
    migrated = run_example(repo, "migrate", str(legacy))
    assert migrated.returncode == 1 and "Traceback" not in migrated.stderr
    assert "Loop 'L1': status holds str 'stopped'" in migrated.stderr
