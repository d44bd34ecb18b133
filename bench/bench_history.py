"""How fast record history is read from git, beside git's own log in the same run.

    python bench/bench_history.py [--commits N] [--json]

Builds a repository of N commits (default 1000), each appending a few record writes to
``.taskstore/tasks.jsonl``: two new records and one edit of an older one, a tombstone now
and then, about 2 records per commit in all. One record (the target) is edited in about
50 of the commits. The commits are streamed into ``git fast-import`` and packed, as a clone
holds them. Then it measures:

- ``git taskstore log ID`` of the target, as a whole process (what a user waits for),
  and ``record_log`` in-process;
- ``git taskstore diff HEAD~100 HEAD`` as a whole process, and ``record_diff`` in-process;
- the peer: ``git log --oneline -- .taskstore/tasks.jsonl``, whole process, which lists
  the commits that touched the file without reading a line of it;
- start-up: ``git taskstore --version``, the floor of any whole-process figure.

Each figure is the median of 5 runs. Progress goes to stderr; stdout holds the table, or
one JSON object with --json. The exit code is 0 whether or not the targets are met.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from common import (
    TAGS,
    clock,
    environment,
    missed_targets,
    progress_for,
    table_lines,
    targets_footer,
)
from common import fmt_s as _fmt_s
from common import ratio as _ratio

COLLECTION = "tasks"
RUNS = 5
SEED = 20240101
BASE_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
TARGET_CHANGES = 50  # commits that edit the target record
DIFF_DEPTH = 100  # HEAD~100..HEAD
DELETE_EVERY = 40  # a tombstone every 40 commits

# Whole-process wall-time targets: log of one record over 1000 commits within 1 s, and a
# diff across 100 commits within 1 s (its CPU time is ~0.2 s, most of it start-up; on a
# shared 2-core machine the wall time doubles).
TARGET_LOG_S = 1.0
TARGET_DIFF_S = 1.0

STATUSES = ("todo", "in_progress", "blocked", "review", "done")
WORDS = (
    "add", "fix", "remove", "refactor", "migrate", "document", "test", "cache", "login",
    "export", "import", "retry", "timeout", "report", "dashboard", "queue", "worker",
    "schema", "index", "endpoint", "webhook", "token", "session", "upload", "invoice",
)  # fmt: skip
FIXED_FILES = {
    ".gitattributes": b".taskstore/*.jsonl merge=taskstore\n",
    ".taskstore/.version": b"1\n",
    ".taskstore/.gitignore": b"taskstore.db\ntaskstore.db-wal\ntaskstore.db-shm\ntaskstore.lock\n",
}


progress = progress_for("bench_history")


# --- the repository ----------------------------------------------------------------------


@dataclass
class History:
    folder: str
    commits: int
    target: str = ""
    target_commits: int = 0  # commits that change the target's current version
    records: int = 0
    lines: int = 0
    size: int = 0
    diff_rev: str = ""
    expected_diff: dict[str, int] = field(default_factory=dict)


def _record(rng: random.Random, record_id: str, ms: int) -> dict[str, Any]:
    return {
        "id": record_id,
        "title": " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))).capitalize(),
        "status": rng.choice(STATUSES),
        "owner": f"user-{rng.randrange(50):02d}",
        "priority": rng.randint(0, 3),
        "tags": rng.sample(TAGS, rng.randint(0, 3)),
        "created_at": ms,
        "updated_at": ms,
    }


def build(folder: str, commits: int, seed: int = SEED) -> History:
    """N commits of a growing tasks.jsonl, streamed into `git fast-import`, then packed."""
    rng = random.Random(seed)
    os.makedirs(folder)
    subprocess.run(["git", "init", "-q", "-b", "main", folder], check=True, env=_env())
    hist = History(folder, commits)
    importer = subprocess.Popen(
        ["git", "fast-import", "--quiet", "--done"],
        cwd=folder,
        stdin=subprocess.PIPE,
        env=_env(),
    )
    assert importer.stdin is not None
    out = importer.stdin

    def data(payload: bytes) -> None:
        out.write(b"data %d\n" % len(payload))
        out.write(payload)
        out.write(b"\n")

    live: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    content = bytearray()
    target_every = max(1, commits // TARGET_CHANGES)
    diff_at = max(0, commits - 1 - DIFF_DEPTH)  # the commit HEAD~100 names
    hist.diff_rev = f"HEAD~{commits - 1 - diff_at}"
    snapshot: dict[str, dict[str, Any]] = {}
    for index in range(commits):
        ms = BASE_MS + index * 60_000
        lines: list[bytes] = []
        message = f"commit {index}"
        for _ in range(2):
            record_id = f"task-{hist.records:05d}"
            hist.records += 1
            record = _record(rng, record_id, ms)
            live[record_id] = record
            order.append(record_id)
            lines.append(orjson.dumps(record))
        if index == 0:
            hist.target = order[0]
            hist.target_commits = 1
        elif index % target_every == 0:
            edit = hist.target
            hist.target_commits += 1
            message += f": edit {edit}"
        else:
            edit = order[rng.randrange(1, len(order) - 2)]  # never the target: order[0]
        if index and edit in live:
            record = dict(live[edit])
            record["status"] = rng.choice([s for s in STATUSES if s != record["status"]])
            record["priority"] = rng.randint(0, 3)
            record["updated_at"] = ms + 1
            live[edit] = record
            lines.append(orjson.dumps(record))
        if index % DELETE_EVERY == DELETE_EVERY - 1:
            victim = rng.choice([i for i in order[:-2] if i in live and i != hist.target])
            del live[victim]
            lines.append(orjson.dumps({"id": victim, "deleted": True, "updated_at": ms + 2}))
        content += b"\n".join(lines) + b"\n"
        hist.lines += len(lines)

        when = BASE_MS // 1000 + index * 60
        out.write(b"commit refs/heads/main\nmark :%d\n" % (index + 1))
        out.write(b"author Bench Author <bench@example.com> %d +0000\n" % when)
        out.write(b"committer Bench Author <bench@example.com> %d +0000\n" % when)
        data(message.encode())
        if index:
            out.write(b"from :%d\n" % index)
        else:
            for path, payload in FIXED_FILES.items():
                out.write(b"M 100644 inline %s\n" % path.encode())
                data(payload)
        out.write(b"M 100644 inline .taskstore/%s.jsonl\n" % COLLECTION.encode())
        data(bytes(content))
        if index == diff_at:
            snapshot = {k: dict(v) for k, v in live.items()}
    out.write(b"done\n")
    out.close()
    if importer.wait() != 0:
        raise RuntimeError(f"git fast-import exited {importer.returncode}")
    # One pack, as a clone holds it (fast-import's own pack deltas only against the
    # previous blob); then a work tree that matches HEAD.
    for args in (["repack", "-a", "-d", "-q"], ["reset", "-q", "--hard"]):
        subprocess.run(["git", *args], cwd=folder, check=True, env=_env())
    hist.size = len(content)
    hist.expected_diff = {
        "added": len(live.keys() - snapshot.keys()),
        "deleted": len(snapshot.keys() - live.keys()),
        "changed": sum(1 for k in live.keys() & snapshot.keys() if live[k] != snapshot[k]),
    }
    return hist


# --- measuring ---------------------------------------------------------------------------


def _env() -> dict[str, str]:
    """git finds `git taskstore` as git-taskstore on PATH: this interpreter's bin first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "TASKSTORE_"))}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("GIT_CONFIG_NOSYSTEM", "1")
    return env


def median_of(fn: Callable[[], Any], runs: int = RUNS) -> tuple[float, list[float], Any]:
    times: list[float] = []
    result: Any = None
    for _ in range(runs):
        t0 = clock()
        result = fn()
        times.append(clock() - t0)
    return statistics.median(times), times, result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process(args: Sequence[str], cwd: str) -> tuple[dict[str, Any], bytes]:
    """Median wall time of a whole process, its median CPU time, and what it printed.

    On a shared machine the wall time also holds the wait for a CPU; the CPU time (user +
    sys of the process and of what it ran) does not.
    """
    env = _env()
    cpu: list[float] = []

    def once() -> bytes:
        before = _children_cpu()
        proc = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, check=False)
        cpu.append(_children_cpu() - before)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.decode().strip()}"
            )
        return proc.stdout

    once()  # warm the page cache: every figure then reads from memory
    cpu.clear()
    seconds, runs, out = median_of(once)
    figure = {
        "seconds": seconds,
        "runs": runs,
        "cpu_seconds": statistics.median(cpu),
        "command": " ".join(args),
    }
    return figure, out


def bench(hist: History) -> dict[str, Any]:
    from git_taskstore.history import record_diff, record_log

    folder = hist.folder
    store = os.path.join(folder, ".taskstore")
    f: dict[str, Any] = {}

    progress("start-up: git taskstore --version")
    f["startup"], _ = process(["git", "taskstore", "--version"], folder)

    progress(f"log {hist.target}")
    f["log"], out = process(["git", "taskstore", "log", hist.target, "--json"], folder)
    entries = json.loads(out)
    if len(entries) != hist.target_commits:
        raise RuntimeError(
            f"log listed {len(entries)} versions, the generator made {hist.target_commits}"
        )
    f["log"]["versions"] = len(entries)
    seconds, runs, _ = median_of(lambda: record_log(folder, store, hist.target))
    f["log_in_process"] = {"seconds": seconds, "runs": runs}

    progress(f"diff {hist.diff_rev} HEAD")
    f["diff"], out = process(["git", "taskstore", "diff", hist.diff_rev, "HEAD", "--json"], folder)
    found = json.loads(out).get(COLLECTION, {})
    counts = {k: len(found.get(k, ())) for k in ("added", "deleted", "changed")}
    if counts != hist.expected_diff:
        raise RuntimeError(f"diff found {counts}, the generator made {hist.expected_diff}")
    f["diff"]["records"] = counts
    seconds, runs, _ = median_of(lambda: record_diff(folder, store, hist.diff_rev, "HEAD"))
    f["diff_in_process"] = {"seconds": seconds, "runs": runs}

    progress("peer: git log --oneline -- file")
    peer = ["git", "log", "--oneline", "--", f".taskstore/{COLLECTION}.jsonl"]
    f["peer"], out = process(peer, folder)
    f["peer"]["commits"] = len(out.splitlines())
    return f


def build_report(hist: History, f: dict[str, Any]) -> dict[str, Any]:
    targets: dict[str, dict[str, Any]] = {
        "log_seconds": {"value": f["log"]["seconds"], "limit": TARGET_LOG_S},
        "diff_seconds": {"value": f["diff"]["seconds"], "limit": TARGET_DIFF_S},
    }
    for target in targets.values():
        target["ok"] = target["value"] <= target["limit"]
    f["log"]["peer_ratio"] = _ratio(f["log"]["seconds"], f["peer"]["seconds"])
    return {
        "params": {"commits": hist.commits},
        "repository": {
            "commits": hist.commits,
            "records": hist.records,
            "lines": hist.lines,
            "file_bytes": hist.size,
            "target": hist.target,
            "target_versions": hist.target_commits,
            "diff_rev": hist.diff_rev,
        },
        "environment": environment(),
        "figures": f,
        "targets": targets,
        "ok": all(t["ok"] for t in targets.values()),
    }


def render_table(report: dict[str, Any]) -> str:
    f = report["figures"]
    t = report["targets"]
    r = report["repository"]

    def ok(name: str) -> str:
        return "ok" if t[name]["ok"] else "MISSED"

    ratio = f["log"]["peer_ratio"]
    rows: list[tuple[str, ...]] = [
        ("figure", "wall", "cpu", "beside", "target", ""),
        (
            f"git taskstore log ID ({f['log']['versions']} versions)",
            _fmt_s(f["log"]["seconds"]),
            _fmt_s(f["log"]["cpu_seconds"]),
            f"peer {_fmt_s(f['peer']['seconds'])}: {ratio:.1f}x" if ratio else "",
            f"< {TARGET_LOG_S:g} s",
            ok("log_seconds"),
        ),
        ("  record_log in-process", _fmt_s(f["log_in_process"]["seconds"]), "", "", "", ""),
        (
            f"git taskstore diff {r['diff_rev']} HEAD",
            _fmt_s(f["diff"]["seconds"]),
            _fmt_s(f["diff"]["cpu_seconds"]),
            "+{added} -{deleted} ~{changed} records".format(**f["diff"]["records"]),
            f"< {TARGET_DIFF_S:g} s",
            ok("diff_seconds"),
        ),
        ("  record_diff in-process", _fmt_s(f["diff_in_process"]["seconds"]), "", "", "", ""),
        (
            "peer: git log --oneline -- tasks.jsonl",
            _fmt_s(f["peer"]["seconds"]),
            _fmt_s(f["peer"]["cpu_seconds"]),
            f"{f['peer']['commits']} commits, no blob read",
            "",
            "",
        ),
        (
            "start-up: git taskstore --version",
            _fmt_s(f["startup"]["seconds"]),
            _fmt_s(f["startup"]["cpu_seconds"]),
            "",
            "",
            "",
        ),
    ]
    lines = [
        f"git-taskstore history: {r['commits']} commits, {r['records']} records, "
        f"{r['lines']} lines ({r['file_bytes'] / 1024:.0f} KB at HEAD), packed; "
        f"python {report['environment']['python']}, {report['environment']['cpus']} cpus, "
        f"load average {report['environment']['load_average_1min']:.1f}",
        f"median of {RUNS} runs; whole processes unless marked in-process; cpu = user + sys",
        "",
    ]
    lines += [*table_lines(rows), "", targets_footer(missed_targets(t))]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------


def run(commits: int) -> dict[str, Any]:
    work = tempfile.mkdtemp(prefix="bench-history-")
    try:
        t0 = clock()
        progress(f"building {commits} commits")
        hist = build(os.path.join(work, "repo"), commits)
        progress(
            f"{hist.records} records, {hist.lines} lines, "
            f"{hist.size / 1024:.0f} KB at HEAD in {clock() - t0:.1f} s"
        )
        figures = bench(hist)
        progress(f"done in {clock() - t0:.1f} s")
        return build_report(hist, figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=1000, help="commits in the repository")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.commits < 2:
        parser.error("--commits must be 2 or more")
    report = run(args.commits)
    print(json.dumps(report, indent=2) if args.json else render_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
