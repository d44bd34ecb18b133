"""How fast OpenSpec change folders are mirrored into the store, beside a floor.

    python bench/bench_openspec.py [--changes N] [--sweeps S] [--json] [--profile]

Generates N realistic change folders (default 1,000) under ``openspec/changes/`` of a
temporary git repository: each with a proposal.md (title, Why, What Changes, Impact), a
tasks.md of 10 tasks in 2 or 3 ``## N. Group`` groups (some done), one
``specs/<capability>/spec.md`` with an ADDED requirement and its scenarios, and one in
eight with a design.md. Then it measures, in the same run:

(a) the floor: find the files (one ``os.scandir`` per folder), read each with a plain
    open/read/fstat, parse them with the sync's own rules (``mirror.parse_change``: the
    same parse_tasks, parse_proposal, parse_deltas, hashes and fields), build the very
    records the initial sync writes (``mirror.task_record``, the change record, one
    history record per change) and write them with ONE ``put_many`` per collection into
    a fresh store. The records are checked equal to the sync's, timestamps and ids aside;
(b) the initial sync: ``OpenSpecSync(store).sync()`` on a fresh store (openspec.json
    written by ``OpenSpecSync.init`` outside the timing). Target: within 2x the floor;
(c) the sweep: ``changed_since_last_sync()`` right after a sync, nothing changed, the
    median of S runs (default 21). Target: under 50 ms at 1,000 changes. Beside it, the
    floor of one ``os.lstat`` per file over a list made beforehand; and, where strace is
    installed, the system calls of one sweep, per file;
(d) a second full ``sync()`` with nothing changed (for information; median of 3).

Also reported: where the time of an initial sync and of a sweep goes, stage by stage
(the functions service.py calls, wrapped with timers for extra, uncounted runs).

The floor and the initial sync are the best of 3 runs each, interleaved, each on a
fresh store. ``--profile`` prints cProfile's top functions of one initial sync and of
one sweep to stderr. Progress goes to stderr; stdout holds the table, or one JSON object
with --json. The exit code is 0 whether or not the targets are met.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from common import (
    WORDS,
    clock,
    environment,
    missed_targets,
    progress_for,
    table_lines,
    targets_footer,
    timed_parts,
)
from common import fmt_s as _fmt_s
from common import fmt_x as _x
from common import ratio as _ratio

from git_taskstore import Store
from git_taskstore import engine as engine_module
from git_taskstore.ids import new_id
from git_taskstore.openspec import folders as folders_module
from git_taskstore.openspec import lastsync as lastsync_module
from git_taskstore.openspec import mirror
from git_taskstore.openspec import service as service_module
from git_taskstore.openspec import syncrun as syncrun_module
from git_taskstore.openspec.folders import ChangeFolder, Snapshot
from git_taskstore.openspec.service import OpenSpecSync
from git_taskstore.openspec.syncrun import now_ms

RUNS = 3
SECOND_SYNC_RUNS = 3
BREAKDOWN_SWEEPS = 5  # sweeps timed stage by stage, their mean reported
SEED = 20240101
ROOT = "openspec"
TASKS_PER_CHANGE = 10
DESIGN_EVERY = 8  # one change in eight has a design.md

# Targets of the issue: the initial sync within 2x the floor; a sweep that finds nothing
# within 50 ms at 1,000 changes.
TARGET_INITIAL_RATIO = 2.0
TARGET_SWEEP_MS = 50.0
TARGET_HOOK_MS = 100.0  # what bench_hooks holds every hook to
HOOK_RUNS = 11

CAPABILITIES = (
    "auth", "billing", "search", "notifications", "export", "profile", "admin",
    "reporting", "uploads", "sessions", "webhooks", "audit-log",
)  # fmt: skip
VERBS = ("add", "fix", "remove", "refactor", "migrate", "update", "improve", "support")
GROUPS = ("Implementation", "Tests", "Documentation", "Migration", "Rollout", "Cleanup")
# Time-dependent fields (and the history's id and time) left out of the comparison of
# the floor's records with the sync's.
STAMPS = ("created_at", "updated_at", "synced_at")

progress = progress_for("bench_openspec")


# --- the change folders ------------------------------------------------------------------


@dataclass
class Folders:
    repo: str
    changes: int
    files: int = 0
    bytes: int = 0
    tasks: int = 0
    tasks_done: int = 0
    designs: int = 0
    paths: list[str] = field(default_factory=list)  # every file, absolute


def _sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."


def _proposal(rng: random.Random, title: str, capability: str) -> str:
    changes = (
        "\n".join(f"- {_sentence(rng, 5, 12)}" for _ in range(rng.randint(2, 4)))
        + f"\n- **{capability}:** {_sentence(rng, 4, 8)}"
    )
    return (
        f"# Change: {title}\n\n"
        f"## Why\n{_sentence(rng, 10, 20)} {_sentence(rng, 8, 16)}\n\n"
        f"## What Changes\n{changes}\n\n"
        f"## Impact\n- Affected specs: {capability}\n"
        f"- Affected code: src/{capability.replace('-', '_')}/, tests/\n"
    )


def _tasks(rng: random.Random) -> tuple[str, int]:
    groups = rng.choice((2, 3))
    sizes = [TASKS_PER_CHANGE // groups] * groups
    sizes[-1] += TASKS_PER_CHANGE - sum(sizes)
    progress_share = rng.choice((0.0, 0.3, 0.6, 1.0))
    lines = ["# Tasks", ""]
    done = 0
    for g, (size, name) in enumerate(zip(sizes, rng.sample(GROUPS, groups), strict=True), 1):
        lines.append(f"## {g}. {name}")
        for t in range(1, size + 1):
            checked = rng.random() < progress_share
            done += checked
            lines.append(f"- [{'x' if checked else ' '}] {g}.{t} {_sentence(rng, 4, 10)[:-1]}")
        lines.append("")
    return "\n".join(lines), done


def _spec(rng: random.Random, requirement: str) -> str:
    scenarios = "\n".join(
        f"#### Scenario: {_sentence(rng, 2, 5)[:-1]}\n"
        f"- **WHEN** {_sentence(rng, 3, 8)[:-1].lower()}\n"
        f"- **THEN** {_sentence(rng, 3, 8)[:-1].lower()}\n"
        for _ in range(rng.randint(1, 3))
    )
    return (
        "## ADDED Requirements\n"
        f"### Requirement: {requirement}\n"
        f"The system SHALL {_sentence(rng, 6, 14)[:-1].lower()}.\n\n{scenarios}"
    )


def _design(rng: random.Random) -> str:
    return (
        f"## Context\n{_sentence(rng, 10, 20)}\n\n"
        f"## Goals / Non-Goals\n- Goal: {_sentence(rng, 4, 8)}\n- Non-goal: "
        f"{_sentence(rng, 4, 8)}\n\n## Decisions\n- {_sentence(rng, 8, 16)}\n"
        f"- {_sentence(rng, 8, 16)}\n\n## Risks / Trade-offs\n- {_sentence(rng, 6, 12)}\n"
    )


def generate(repo: str, n: int, seed: int = SEED) -> Folders:
    """N change folders under <repo>/openspec/changes, in a fresh git repository."""
    rng = random.Random(seed)
    os.makedirs(repo)
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True)
    changes_dir = os.path.join(repo, ROOT, "changes")
    os.makedirs(os.path.join(changes_dir, "archive"))
    made = Folders(repo, n)
    for i in range(n):
        verb, noun = rng.choice(VERBS), rng.choice(WORDS)
        capability = rng.choice(CAPABILITIES)
        change = f"{verb}-{noun}-{capability}-{i:04d}"
        title = f"{verb.capitalize()} {noun} to {capability.replace('-', ' ')}"
        tasks, done = _tasks(rng)
        files = {
            "proposal.md": _proposal(rng, title, capability),
            "tasks.md": tasks,
            f"specs/{capability}/spec.md": _spec(rng, f"{noun.capitalize()} {i}"),
        }
        if i % DESIGN_EVERY == DESIGN_EVERY - 1:
            files["design.md"] = _design(rng)
            made.designs += 1
        for name, text in files.items():
            path = os.path.join(changes_dir, change, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            data = text.encode()
            with open(path, "wb") as handle:
                handle.write(data)
            made.files += 1
            made.bytes += len(data)
            made.paths.append(path)
        made.tasks += TASKS_PER_CHANGE
        made.tasks_done += done
    age(os.path.join(repo, ROOT))
    return made


def age(folder: str, seconds: float = 60.0) -> None:
    """Date every file and folder under ``folder`` ``seconds`` back, as a checkout made
    a while ago: a folder changed within two seconds of a sync is listed again by the
    sweep (the racy rule), which would time a repository saved a moment ago."""
    then = time.time() - seconds
    for here, dirs, files in os.walk(folder, topdown=False):
        for name in files + dirs:
            os.utime(os.path.join(here, name), (then, then), follow_symlinks=False)
    os.utime(folder, (then, then))


# --- where the time goes ----------------------------------------------------------------


# The stages of an initial sync, as service.py calls them (the writes are held by the
# batch: _write_records validates and serialises them, Engine.apply writes them).
SYNC_PARTS = (
    (service_module, "scan", "scan the roots"),
    (syncrun_module, "read_change", "read_change: list + read the files"),
    (syncrun_module, "parse_change", "parse_change: parse, hash, fields"),
    (syncrun_module.SyncRun, "_write_records", "_write_records: build, validate, hold"),
    (engine_module.Engine, "apply", "Engine.apply: append + fsync + SQLite"),
    (lastsync_module, "save", "save openspec.state"),
)
# The stages of a sweep, as changed_since_last_sync calls them.
SWEEP_PARTS = (
    (lastsync_module, "load", "load openspec.state"),
    (lastsync_module, "root_stats", "root_stats: lstat changes/ and archive/"),
    (folders_module, "scan", "scan: list changes/ (only when it moved)"),
    (lastsync_module, "stat_dirs", "stat_dirs: lstat the folder, specs/, specs/*/"),
    (lastsync_module, "stat_files", "stat_files: one lstat a file"),
    (lastsync_module, "store_signature", "store signature: 2 stats"),
)


def breakdown(
    parts: dict[str, float], wrapped: Sequence[tuple[Any, str, str]], total: float, runs: int = 1
) -> dict[str, float]:
    """Seconds per stage (per run, over ``runs`` runs), the rest as "other", and the total."""
    out = {label: parts.get(label, 0.0) / runs for _, _, label in wrapped}
    out["other"] = max(0.0, total / runs - sum(out.values()))
    out["total"] = total / runs
    return out


# --- (a) the floor -----------------------------------------------------------------------


def _files_of(base: str) -> list[str]:
    """The names the sync reads in one folder: the three markdown files and specs/*/spec.md."""
    names = []
    with os.scandir(base) as entries:
        for entry in entries:
            if entry.name in ("proposal.md", "tasks.md", "design.md"):
                names.append(entry.name)
            elif entry.name == "specs":
                for top, _dirs, files in os.walk(entry.path):
                    if "spec.md" in files:
                        rel = os.path.relpath(os.path.join(top, "spec.md"), base)
                        names.append(rel.replace(os.sep, "/"))
    return sorted(names)


def _read_plain(base: str, names: list[str]) -> Snapshot:
    snapshot = Snapshot()
    for name in names:
        with open(os.path.join(base, name), "rb") as handle:
            data = handle.read()
            info = os.fstat(handle.fileno())
        snapshot.raw[name] = data
        snapshot.stats[name] = (info.st_mtime_ns, info.st_size, info.st_ino)
        snapshot.texts[name] = data.decode("utf-8", errors="replace")
    return snapshot


def floor_records(top: str) -> dict[str, list[dict[str, Any]]]:
    """Read and parse every change folder; the change, task, file and history records
    the initial sync writes for them, by collection."""
    now = now_ms()
    rel = f"{ROOT}/changes"
    with os.scandir(os.path.join(top, rel)) as entries:
        ids = sorted(e.name for e in entries if e.is_dir() and e.name != "archive")
    changes: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    for change in ids:
        where = ChangeFolder(change, ROOT, f"{rel}/{change}", None)
        base = os.path.join(top, where.folder)
        snapshot = _read_plain(base, _files_of(base))
        parsed = mirror.parse_change(where, snapshot)
        files += [mirror.file_record(change, name, snapshot) for name in snapshot.texts]
        units = []
        for key, task in parsed.tasks.items():
            tasks.append(mirror.task_record(change, key, task, len(units) + 1))
            units.append(f"task {key}")
        record: dict[str, Any] = {"id": change, **parsed.fields}
        record.update(parsed.sections)
        record["synced"] = dict(parsed.sections)
        record.update(conflicts=[], sync_error=None, store_changed_at=None, synced_at=now)
        changes.append(record)
        units += [
            f"section {heading}"
            for name, heading in mirror.SECTIONS.items()
            if parsed.sections[name] not in ("", None)
        ]
        history.append(
            {
                "id": new_id("sync-"),
                "change": change,
                "direction": "files_to_store",
                "at": now,
                "success": True,
                "error": None,
                "files": [f"{where.folder}/{n}" for n in parsed.fields["hashes"]],
                "units": units,
                "trigger": "manual",
            }
        )
    return {
        mirror.CHANGES: changes,
        mirror.TASKS: tasks,
        mirror.FILES: files,
        mirror.HISTORY: history,
    }


def floor_once(top: str, folder: str) -> tuple[float, dict[str, float]]:
    """Read + parse + build the records, then one put_many per collection, fresh store."""
    with Store.open_dir(folder) as store:
        gc.collect()
        t0 = clock()
        records = floor_records(top)
        t1 = clock()
        for name, rows in records.items():
            store.collection(name).put_many(rows)
        t2 = clock()
    return t2 - t0, {"read_parse_build": t1 - t0, "put_many": t2 - t1}


# --- (b) the initial sync ----------------------------------------------------------------


def fresh_store(repo: str) -> Store:
    """The repository's store, emptied, with openspec.json written."""
    shutil.rmtree(os.path.join(repo, ".taskstore"), ignore_errors=True)
    store = Store.open(repo)
    OpenSpecSync.init(store, [ROOT])
    return store


def initial_sync_once(repo: str) -> tuple[float, Store, Any]:
    store = fresh_store(repo)
    gc.collect()
    t0 = clock()
    report = OpenSpecSync(store).sync()
    elapsed = clock() - t0
    return elapsed, store, report


def _check_sync(report: Any, folders: Folders) -> None:
    states = Counter(c.state for c in report.changes)
    errors = [c.error for c in report.changes if c.error]
    if errors or report.skipped or report.missing_roots:
        raise RuntimeError(f"the sync failed: {errors[:3]} {report.skipped[:3]}")
    if len(report.changes) != folders.changes:
        raise RuntimeError(f"the sync saw {len(report.changes)} changes, not {folders.changes}")
    if set(states) - {"files_changed"}:
        raise RuntimeError(f"an initial sync gave states {dict(states)}")


def _comparable(records: list[dict[str, Any]], history: bool = False) -> list[dict[str, Any]]:
    drop = (*STAMPS, "id", "at") if history else STAMPS
    out = [{k: v for k, v in r.items() if k not in drop} for r in records]
    return sorted(out, key=lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS))


def check_same_records(sync_store: Store, floor_dir: str) -> dict[str, int]:
    """The floor wrote what the sync wrote: the same records, stamps and history ids aside."""
    counts = {}
    with Store.open_dir(floor_dir) as floor:
        for name in (mirror.CHANGES, mirror.TASKS, mirror.FILES, mirror.HISTORY):
            ours = sync_store.collection(name).list()
            theirs = floor.collection(name).list()
            history = name == mirror.HISTORY
            if _comparable(ours, history) != _comparable(theirs, history):
                raise RuntimeError(f"the floor's {name} records differ from the sync's")
            counts[name] = len(ours)
    return counts


def bench_initial(folders: Folders, work: str) -> dict[str, Any]:
    floor_runs: list[float] = []
    floor_parts: list[dict[str, float]] = []
    sync_runs: list[float] = []
    store: Store | None = None
    for run in range(RUNS):
        progress(f"floor and initial sync of {folders.changes} changes: run {run + 1} of {RUNS}")
        floor_dir = os.path.join(work, "floor", ".taskstore")
        shutil.rmtree(os.path.dirname(floor_dir), ignore_errors=True)
        elapsed, parts = floor_once(folders.repo, floor_dir)
        floor_runs.append(elapsed)
        floor_parts.append(parts)
        if store is not None:
            store.close()
        elapsed, store, report = initial_sync_once(folders.repo)
        sync_runs.append(elapsed)
        _check_sync(report, folders)
    assert store is not None
    counts = check_same_records(store, os.path.join(work, "floor", ".taskstore"))
    store.close()
    progress("where the initial sync's time goes")
    with timed_parts(SYNC_PARTS) as parts:
        total, store, report = initial_sync_once(folders.repo)
    store.close()
    _check_sync(report, folders)
    if counts[mirror.TASKS] != folders.tasks or counts[mirror.CHANGES] != folders.changes:
        raise RuntimeError(f"the stores hold {counts}, the generator made {folders.tasks} tasks")
    floor, sync = min(floor_runs), min(sync_runs)
    return {
        "floor": {
            "seconds": floor,
            "runs": floor_runs,
            "parts": floor_parts[floor_runs.index(floor)],
            "records": counts,
        },
        "initial_sync": {
            "seconds": sync,
            "runs": sync_runs,
            "per_change_ms": sync / folders.changes * 1000,
            "floor_ratio": _ratio(sync, floor),
            "breakdown": breakdown(parts, SYNC_PARTS, total),
        },
    }


# --- (c) the sweep, (d) the second sync ----------------------------------------------------


def median_ms(fn: Callable[[], Any], runs: int) -> tuple[float, list[float], Any]:
    times: list[float] = []
    result: Any = None
    for _ in range(runs):
        t0 = clock()
        result = fn()
        times.append((clock() - t0) * 1000)
    return statistics.median(times), times, result


def stat_floor(paths: list[str], runs: int) -> float:
    def once() -> None:
        for path in paths:
            os.lstat(path)

    return median_ms(once, runs)[0]


STAT_CALLS = ("stat", "lstat", "fstat", "newfstatat", "statx", "fstatat64", "stat64", "lstat64")
MARK_START = "/nonexistent-bench-openspec-sweep-start"
MARK_END = "/nonexistent-bench-openspec-sweep-end"
_SYSCALL = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?([a-z_0-9]+)\(")


def child_sweep(repo: str) -> int:
    """One sweep between two marker stats, for strace to count the calls in between."""
    with Store.open(repo) as store:
        service = OpenSpecSync(store)
        service.changed_since_last_sync()  # imports and first-use costs out of the count
        os.path.lexists(MARK_START)
        found = service.changed_since_last_sync()
        os.path.lexists(MARK_END)
    print(json.dumps({"changed": len(found)}))
    return 0


def sweep_syscalls(repo: str, files: int) -> dict[str, Any] | None:
    """The system calls of one sweep (strace -f), by name and per file; None without strace."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    out = os.path.join(os.path.dirname(repo), "sweep.strace")
    command = [strace, "-f", "-qq", "-o", out, sys.executable, os.path.abspath(__file__)]
    proc = subprocess.run(
        [*command, "--child-sweep", repo], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 or not os.path.exists(out):
        progress(f"strace failed ({proc.returncode}): {proc.stderr.strip()[-300:]}; skipped")
        return None
    calls: Counter[str] = Counter()
    inside = ended = False
    with open(out) as handle:
        for line in handle:
            if MARK_START in line:
                inside = True
                continue
            if MARK_END in line:
                ended = True
                break
            if inside:
                found = _SYSCALL.match(line)
                if found:
                    calls[found.group(1)] += 1
    changed = json.loads(proc.stdout)["changed"]
    if not (inside and ended) or changed:
        progress(f"strace: markers not found or the sweep found {changed} changes; skipped")
        return None
    total = sum(calls.values())
    stats = sum(n for name, n in calls.items() if name in STAT_CALLS)
    return {
        "calls": dict(calls.most_common()),
        "total": total,
        "files": files,
        "per_file": total / files,
        "stat_calls": stats,
        "stats_per_file": stats / files,
    }


def bench_sweep(folders: Folders, sweeps: int) -> dict[str, Any]:
    progress("initial sync for the sweep")
    _, store, report = initial_sync_once(folders.repo)
    _check_sync(report, folders)
    try:
        service = OpenSpecSync(store)
        progress(f"sweep: {sweeps} runs of changed_since_last_sync()")
        service.changed_since_last_sync()
        gc.collect()
        sweep, runs, found = median_ms(service.changed_since_last_sync, sweeps)
        if found:
            raise RuntimeError(f"the sweep found {len(found)} changes where none changed")
        floor = stat_floor(folders.paths, sweeps)
        with timed_parts(SWEEP_PARTS) as parts:
            t0 = clock()
            for _ in range(BREAKDOWN_SWEEPS):
                service.changed_since_last_sync()
            total = clock() - t0
        progress("second full sync, nothing changed")
        sizes = {n: os.path.getsize(store.file_path(n)) for n in (mirror.CHANGES, mirror.TASKS)}

        def again() -> Any:
            return OpenSpecSync(store).sync()

        second, second_runs, report = median_ms(again, SECOND_SYNC_RUNS)
        states = Counter(c.state for c in report.changes)
        after = {n: os.path.getsize(store.file_path(n)) for n in (mirror.CHANGES, mirror.TASKS)}
        if set(states) != {"in_sync"} or after != sizes:
            raise RuntimeError(f"a sync with nothing changed gave {dict(states)} or wrote")
    finally:
        store.close()
    progress("system calls of one sweep (strace)")
    syscalls = sweep_syscalls(folders.repo, folders.files)
    return {
        "sweep": {
            "median_ms": sweep,
            "runs_ms": runs,
            "changed": len(found),
            "per_file_us": sweep * 1000 / folders.files,
            "stat_floor_ratio": _ratio(sweep, floor),
            "syscalls": syscalls,
            "breakdown": breakdown(parts, SWEEP_PARTS, total, BREAKDOWN_SWEEPS),
        },
        "stat_floor": {"median_ms": floor, "files": folders.files},
        "second_sync": {"median_ms": second, "runs_ms": second_runs, "states": dict(states)},
    }


# --- (e) the pre-commit hook with nothing changed ---------------------------------------


def bench_hook(folders: Folders, runs: int = HOOK_RUNS) -> dict[str, Any]:
    """The pre-commit hook's work (what the installed hook execs) in the repository the
    sweep left synced, against ``python -c pass``: it must tell by stat alone that
    nothing moved, without opening the store."""
    progress(f"pre-commit hook with nothing changed: {runs} runs")
    hook = (sys.executable, "-m", "git_taskstore.hookrun", "pre-commit")
    floor = (sys.executable, "-c", "pass")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    env.pop("PYTHONDONTWRITEBYTECODE")
    subprocess.run(hook, cwd=folders.repo, env=env, check=True)  # bytecode written once
    times: dict[tuple[str, ...], list[float]] = {hook: [], floor: []}
    for _ in range(runs):
        for argv in (hook, floor):  # interleaved: the machine's load hits both alike
            t0 = clock()
            subprocess.run(argv, cwd=folders.repo, env=env, check=True)
            times[argv].append((clock() - t0) * 1000)
    ms, floor_ms = statistics.median(times[hook]), statistics.median(times[floor])
    return {"hook": {"median_ms": ms, "python_ms": floor_ms, "ratio": _ratio(ms, floor_ms)}}


# --- profile -------------------------------------------------------------------------------


def profile(folders: Folders, top: int = 25) -> None:
    """cProfile of one initial sync and of one sweep, to stderr."""
    for label in ("initial sync", "sweep"):
        store = fresh_store(folders.repo)
        try:
            if label == "sweep":
                OpenSpecSync(store).sync()
            service = OpenSpecSync(store)
            call = service.sync if label == "initial sync" else service.changed_since_last_sync
            profiler = cProfile.Profile()
            profiler.runcall(call)
        finally:
            store.close()
        for sort in ("tottime", "cumulative"):
            text = io.StringIO()
            stats = pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(sort)
            stats.print_stats(top)
            print(
                f"\n=== profile of one {label}, by {sort} ===\n{text.getvalue()}", file=sys.stderr
            )


# --- report ------------------------------------------------------------------------------


def build_report(params: dict[str, Any], folders: Folders, f: dict[str, Any]) -> dict[str, Any]:
    targets: dict[str, dict[str, Any]] = {
        "initial_sync_vs_floor": {
            "value": f["initial_sync"]["floor_ratio"],
            "limit": TARGET_INITIAL_RATIO,
        },
        "sweep_ms": {"value": f["sweep"]["median_ms"], "limit": TARGET_SWEEP_MS},
        "hook_pre_commit_ms": {"value": f["hook"]["median_ms"], "limit": TARGET_HOOK_MS},
    }
    for target in targets.values():
        target["ok"] = target["value"] <= target["limit"]
    return {
        "params": params,
        "folders": {
            "changes": folders.changes,
            "files": folders.files,
            "bytes": folders.bytes,
            "tasks": folders.tasks,
            "tasks_done": folders.tasks_done,
            "designs": folders.designs,
        },
        "environment": environment(orjson=orjson.__version__),
        "figures": f,
        "targets": targets,
        "ok": all(t["ok"] for t in targets.values()),
    }


def _breakdown_rows(title: str, parts: dict[str, float]) -> list[tuple[str, ...]]:
    total = parts["total"]
    rows: list[tuple[str, ...]] = [(title, _fmt_s(total, ms_digits=2), "", "", "", "", "")]
    for label, seconds in parts.items():
        if label != "total":
            share = f"{seconds / total:.0%}" if total else ""
            rows.append((f"  {label}", _fmt_s(seconds, ms_digits=2), share, "", "", "", ""))
    return rows


def render_table(report: dict[str, Any]) -> str:
    f, t, d = report["figures"], report["targets"], report["folders"]
    floor, initial, sweep = f["floor"], f["initial_sync"], f["sweep"]
    n = d["changes"]

    def ok(name: str) -> str:
        return "ok" if t[name]["ok"] else "MISSED"

    def ms(value: float) -> str:
        return _fmt_s(value / 1000, ms_digits=2)

    rows: list[tuple[str, ...]] = [
        ("figure", "value", "per change", "floor", "ratio", "target", ""),
        (
            f"initial sync of {n} changes",
            _fmt_s(initial["seconds"]),
            f"{initial['per_change_ms']:.2f} ms",
            f"floor {_fmt_s(floor['seconds'])}",
            _x(initial["floor_ratio"]),
            f"<= {TARGET_INITIAL_RATIO:g}x floor",
            ok("initial_sync_vs_floor"),
        ),
        (
            "floor: read + parse + 1 put_many a collection",
            _fmt_s(floor["seconds"]),
            f"{floor['seconds'] / n * 1000:.2f} ms",
            ", ".join(f"{v} {k.removeprefix('openspec_')}" for k, v in floor["records"].items()),
            "",
            "",
            "",
        ),
        (
            "  floor: read, parse, build",
            _fmt_s(floor["parts"]["read_parse_build"]),
            "",
            "",
            "",
            "",
            "",
        ),
        ("  floor: put_many x4", _fmt_s(floor["parts"]["put_many"]), "", "", "", "", ""),
        *_breakdown_rows("initial sync, where the time goes:", initial["breakdown"]),
        (
            "sweep: changed_since_last_sync(), median",
            ms(sweep["median_ms"]),
            f"{sweep['per_file_us']:.1f} us/file",
            f"lstat floor {ms(f['stat_floor']['median_ms'])}",
            _x(sweep["stat_floor_ratio"]),
            f"< {TARGET_SWEEP_MS:g} ms",
            ok("sweep_ms"),
        ),
    ]
    rows += _breakdown_rows(
        f"sweep, where the time goes (mean of {BREAKDOWN_SWEEPS}):", sweep["breakdown"]
    )
    calls = sweep["syscalls"]
    if calls is None:
        rows.append(("  system calls per file", "strace not installed", "", "", "", "", ""))
    else:
        top = ", ".join(f"{name} {count}" for name, count in list(calls["calls"].items())[:5])
        rows.append(
            (
                "  system calls per file (strace)",
                f"{calls['per_file']:.2f}",
                f"{calls['stats_per_file']:.2f} stats",
                top,
                "",
                "1 stat a file",
                "",
            )
        )
    rows.append(
        (
            "second full sync, nothing changed, median",
            ms(f["second_sync"]["median_ms"]),
            f"{f['second_sync']['median_ms'] / n:.2f} ms",
            "",
            "",
            "",
            "",
        )
    )
    hook = f["hook"]
    rows.append(
        (
            "pre-commit hook, nothing changed, median",
            ms(hook["median_ms"]),
            "",
            f"python -c pass {ms(hook['python_ms'])}",
            _x(hook["ratio"]),
            f"< {TARGET_HOOK_MS:g} ms",
            ok("hook_pre_commit_ms"),
        )
    )
    env = report["environment"]
    lines = [
        f"git-taskstore OpenSpec sync: {n} changes, {d['files']} files "
        f"({d['bytes'] / 1024:.0f} KB), {d['tasks']} tasks ({d['tasks_done']} done), "
        f"{d['designs']} designs; python {env['python']}, {env['cpus']} cpus, "
        f"load {env['load_average_1min']:.1f}",
        f"floor and initial sync: best of {RUNS} runs on a fresh store each; sweep: median "
        f"of {report['params']['sweeps']} runs",
        "",
    ]
    lines += [*table_lines(rows), "", targets_footer(missed_targets(t))]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------


def run(changes: int, sweeps: int, with_profile: bool) -> dict[str, Any]:
    params = {"changes": changes, "sweeps": sweeps, "runs": RUNS}
    work = tempfile.mkdtemp(prefix="bench-openspec-")
    try:
        t0 = clock()
        progress(f"generating {changes} change folders")
        folders = generate(os.path.join(work, "repo"), changes)
        progress(f"{folders.files} files, {folders.bytes / 1024:.0f} KB in {clock() - t0:.1f} s")
        figures = bench_initial(folders, work)
        figures.update(bench_sweep(folders, sweeps))
        figures.update(bench_hook(folders))
        if with_profile:
            profile(folders)
        progress(f"done in {clock() - t0:.1f} s")
        return build_report(params, folders, figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=1000, help="change folders (N)")
    parser.add_argument("--sweeps", type=int, default=21, help="runs of the sweep (S)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--profile", action="store_true", help="print cProfile of a sync and a sweep to stderr"
    )
    parser.add_argument("--child-sweep", metavar="REPO", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_sweep:
        return child_sweep(args.child_sweep)
    for name in ("changes", "sweeps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be 1 or more")
    report = run(args.changes, args.sweeps, args.profile)
    print(json.dumps(report, indent=2) if args.json else render_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
