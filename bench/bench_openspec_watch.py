"""How fast `git taskstore watch` carries an edit across, and what it costs when idle.

    python bench/bench_openspec_watch.py [--rounds N] [--changes C] [--idle-seconds S] [--json]

Makes a temporary git repository with a store and C OpenSpec changes (default 20, each
a proposal.md and a tasks.md), one of which (``bench``) has N tasks, runs ``git taskstore
openspec init``, then starts ``git-taskstore watch --json`` (debounce 100 ms, the
default) as a process of its own and measures, in N rounds (default 20) each way:

- files -> store: tasks.md saved with task 1.k ticked, until the task's record with
  ``done: true`` is in ``.taskstore/openspec_tasks.jsonl`` (polled every ms);
- store -> files: the record of task 1.k written back to ``done: false`` from this
  process (``put(..., merge=True)``, as an agent would), until tasks.md holds
  ``- [ ] 1.k`` (polled every ms).

Each edit waits for the one before to be synced and its echo let go. Reported: the
median and the largest latency of each direction, beside the 300 ms target (which
includes the 100 ms debounce: the quiet time the watcher waits for, the floor of any
figure here), and the syncs the watcher announced per edit (1: no echo, no split burst).
Then, after the rounds and a second of quiet, the watcher's idle CPU over S seconds
(default 5; utime + stime from /proc/<pid>/stat, and the more precise run time of its
threads from /proc/<pid>/task/*/schedstat where the kernel keeps it) and its resident
memory (VmRSS and VmHWM from /proc/<pid>/status) beside the 60 MB target. Linux only.

Progress goes to stderr; stdout holds the table, or one JSON object with --json. The
exit code is 0 whether or not the targets are met.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

from common import (
    clock,
    environment,
    missed_targets,
    progress_for,
    table_lines,
    targets_footer,
)

from git_taskstore import Store

DEBOUNCE_MS = 100  # the watcher's default, passed explicitly so the floor is known
TARGET_LATENCY_MS = 300.0  # an edit reaches the other side within 300 ms, debounce included
TARGET_RSS_MB = 60.0
TARGET_IDLE_CPU_PERCENT = 1.0  # "near zero": watchfiles wakes every 50 ms to poll its stop
CHANGE = "bench"
POLL_S = 0.001
EVENT_TIMEOUT_S = 30.0
SETTLE_S = 0.3  # after an edit is synced: the echo of the watcher's own writes dies down
QUIET_BEFORE_IDLE_S = 1.0
IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
PROPOSAL = "# Change: {title}\n\n## Why\nIt is measured.\n\n## What Changes\n- {title}\n"

progress = progress_for("bench_openspec_watch")


# --- the repository ------------------------------------------------------------------------


def bench_env() -> dict[str, str]:
    """No git variables or user/system git config of the caller's; this interpreter's bin
    first on PATH, so that ``git taskstore`` is this installation's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "TASKSTORE_"))}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, **IDENTITY)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def run_checked(argv: Sequence[str], cwd: str, env: dict[str, str]) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {proc.returncode}\nstdout: {proc.stdout}\n"
            f"stderr: {proc.stderr}"
        )
    return proc.stdout


def tasks_text(tasks: int, done: int | None = None) -> str:
    """A tasks.md of ``tasks`` tasks 1.1 .. 1.N, task 1.``done`` ticked if given."""
    lines = ["## 1. Measured", ""]
    for k in range(1, tasks + 1):
        lines.append(f"- [{'x' if k == done else ' '}] 1.{k} task number {k}")
    return "\n".join(lines) + "\n"


def make_repo(top: str, changes: int, tasks: int, env: dict[str, str]) -> str:
    """A repository with a store and ``changes`` OpenSpec changes, synced; the path of
    the measured change's tasks.md."""
    os.makedirs(top)
    run_checked(["git", "init", "-q", "-b", "main"], top, env)
    run_checked(["git", "taskstore", "init"], top, env)
    names = [CHANGE] + [f"other-{i:03d}" for i in range(changes - 1)]
    for name in names:
        folder = os.path.join(top, "openspec", "changes", name)
        os.makedirs(folder)
        with open(os.path.join(folder, "proposal.md"), "w") as handle:
            handle.write(PROPOSAL.format(title=name))
        with open(os.path.join(folder, "tasks.md"), "w") as handle:
            handle.write(tasks_text(tasks if name == CHANGE else 5))
    run_checked(["git", "taskstore", "openspec", "init"], top, env)
    run_checked(["git", "add", "-A"], top, env)
    run_checked(["git", "commit", "-q", "-m", "openspec"], top, env)
    return os.path.join(top, "openspec", "changes", CHANGE, "tasks.md")


# --- the watcher process -------------------------------------------------------------------


class WatchProcess:
    """``git-taskstore watch --json`` and its events, read on a thread."""

    def __init__(self, top: str, env: dict[str, str]) -> None:
        exe = os.path.join(os.path.dirname(sys.executable), "git-taskstore")
        self.proc = subprocess.Popen(
            [exe, "watch", "--json", "--debounce-ms", str(DEBOUNCE_MS)],
            cwd=top,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self.changed = threading.Condition()
        self.readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "not json", "line": line.rstrip()}
            with self.changed:
                self.events.append(event)
                self.changed.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip())

    def mark(self) -> int:
        with self.changed:
            return len(self.events)

    def wait_for(self, name: str, mark: int = 0, **fields: Any) -> dict[str, Any]:
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        with self.changed:
            while True:
                for event in self.events[mark:]:
                    if event["event"] == name and all(event.get(k) == v for k, v in fields.items()):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(
                        f"the watcher printed no {name} {fields} within {EVENT_TIMEOUT_S:g} s; "
                        f"events: {self.events[-10:]}; stderr: {self.stderr[-10:]}"
                    )
                self.changed.wait(min(left, 0.5))

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=EVENT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        for reader in self.readers:
            reader.join(timeout=5)
        return code


# --- measuring -----------------------------------------------------------------------------


def wait_for_record(jsonl: str, offset: int, record_id: str, done: bool) -> int:
    """Poll the JSONL file until a line after ``offset`` is the record with ``done``;
    the offset read up to."""
    deadline = clock() + EVENT_TIMEOUT_S
    while True:
        try:
            size = os.stat(jsonl).st_size
        except FileNotFoundError:
            size = offset
        if size > offset:
            with open(jsonl, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
            end = data.rfind(b"\n") + 1
            for line in data[:end].splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("id") == record_id and record.get("done") is done:
                    return offset + end
            offset += end
        if clock() > deadline:
            raise RuntimeError(f"{record_id} never became done={done} in {jsonl}")
        time.sleep(POLL_S)


def wait_for_text(path: str, needle: str) -> None:
    deadline = clock() + EVENT_TIMEOUT_S
    while True:
        try:
            with open(path) as handle:
                if needle in handle.read():
                    return
        except FileNotFoundError:
            pass
        if clock() > deadline:
            raise RuntimeError(f"{path} never held {needle!r}")
        time.sleep(POLL_S)


def settle(seconds: float) -> None:
    time.sleep(seconds)


def latencies(top: str, tasks_md: str, watcher: WatchProcess, rounds: int) -> dict[str, Any]:
    jsonl = os.path.join(top, ".taskstore", "openspec_tasks.jsonl")
    to_store: list[float] = []
    to_files: list[float] = []
    first = watcher.mark()
    with Store.open(top, create=False) as store:
        tasks = store.collection("openspec_tasks")
        for r in range(1, rounds + 1):
            record_id = f"{CHANGE}/1.{r}"
            # files -> store
            offset = os.stat(jsonl).st_size
            mark = watcher.mark()
            t0 = clock()
            with open(tasks_md, "w") as handle:
                handle.write(tasks_text(rounds, done=r))
            wait_for_record(jsonl, offset, record_id, True)
            to_store.append((clock() - t0) * 1000)
            watcher.wait_for("sync_completed", mark, change=CHANGE, direction="files_to_store")
            settle(SETTLE_S)
            # store -> files
            mark = watcher.mark()
            tasks.put({"id": record_id, "done": False}, merge=True)
            t0 = clock()
            wait_for_text(tasks_md, f"- [ ] 1.{r} ")
            to_files.append((clock() - t0) * 1000)
            watcher.wait_for("sync_completed", mark, change=CHANGE, direction="store_to_files")
            settle(SETTLE_S)
            progress(f"round {r}: files -> store {to_store[-1]:.0f} ms, "
                     f"store -> files {to_files[-1]:.0f} ms")  # fmt: skip
    events = watcher.events[first:]
    started = [e for e in events if e["event"] == "sync_started"]
    problems = [e for e in events if e["event"] in ("sync_failed", "conflict_detected")]
    if problems:
        raise RuntimeError(f"the watcher reported problems: {problems[:5]}")
    return {
        "files_to_store": _latency(to_store),
        "store_to_files": _latency(to_files),
        "syncs": {
            "edits": 2 * rounds,
            "sync_started": len(started),
            "per_edit": len(started) / (2 * rounds),
            "other_changes": len([e for e in started if e.get("change") != CHANGE]),
        },
    }


def _latency(values: list[float]) -> dict[str, Any]:
    median = statistics.median(values)
    return {
        "median_ms": median,
        "max_ms": max(values),
        "min_ms": min(values),
        "runs_ms": [round(v, 2) for v in values],
        "debounce_ms": DEBOUNCE_MS,
        "debounce_ratio": median / DEBOUNCE_MS,
    }


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    return ticks / os.sysconf("SC_CLK_TCK")


def proc_run_ns(pid: int) -> int | None:
    """The run time of the process's threads in ns (/proc/<pid>/task/*/schedstat), or
    None where the kernel does not keep it."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as handle:
                total += int(handle.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
    return total


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (bytes) and Threads from /proc/<pid>/status."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) * 1024
            elif name == "Threads":
                found[name] = int(value)
    return found


def idle(pid: int, seconds: float) -> dict[str, Any]:
    cpu0, run0, t0 = proc_cpu_seconds(pid), proc_run_ns(pid), clock()
    time.sleep(seconds)
    cpu1, run1, t1 = proc_cpu_seconds(pid), proc_run_ns(pid), clock()
    wall = t1 - t0
    status = proc_status(pid)
    precise = None if run0 is None or run1 is None else (run1 - run0) / 1e9 / wall * 100
    return {
        "idle": {
            "wall_seconds": wall,
            "cpu_seconds": cpu1 - cpu0,
            "cpu_percent": (cpu1 - cpu0) / wall * 100,
            "cpu_percent_schedstat": precise,
            "clock_tick_s": 1 / os.sysconf("SC_CLK_TCK"),
        },
        "memory": {
            "rss_bytes": status.get("VmRSS"),
            "rss_mb": status.get("VmRSS", 0) / 1_048_576,
            "peak_rss_bytes": status.get("VmHWM"),
            "threads": status.get("Threads"),
        },
    }


# --- report --------------------------------------------------------------------------------


def build_report(params: dict[str, Any], f: dict[str, Any]) -> dict[str, Any]:
    targets: dict[str, dict[str, Any]] = {
        "files_to_store_ms": {
            "value": f["files_to_store"]["median_ms"],
            "limit": TARGET_LATENCY_MS,
        },
        "store_to_files_ms": {
            "value": f["store_to_files"]["median_ms"],
            "limit": TARGET_LATENCY_MS,
        },
        "idle_cpu_percent": {"value": f["idle"]["cpu_percent"], "limit": TARGET_IDLE_CPU_PERCENT},
        "rss_mb": {"value": f["memory"]["rss_mb"], "limit": TARGET_RSS_MB},
    }
    for target in targets.values():
        target["ok"] = target["value"] <= target["limit"]
    targets["syncs_per_edit"] = {
        "value": f["syncs"]["per_edit"],
        "expected": 1.0,
        "ok": f["syncs"]["per_edit"] == 1.0,
    }
    targets["stopped_cleanly"] = {
        "value": f["stop"]["clean"],
        "expected": True,
        "ok": f["stop"]["clean"] is True,
    }
    return {
        "params": params,
        "environment": environment(),
        "figures": f,
        "targets": targets,
        "ok": all(t["ok"] for t in targets.values()),
    }


def render_table(report: dict[str, Any]) -> str:
    f, t, p = report["figures"], report["targets"], report["params"]

    def ok(name: str) -> str:
        return "ok" if t[name]["ok"] else "MISSED"

    def latency_row(name: str, label: str) -> tuple[str, ...]:
        fig = f[name]
        return (
            label,
            f"{fig['median_ms']:.0f} ms",
            f"{fig['max_ms']:.0f} ms",
            f"debounce {DEBOUNCE_MS} ms: {fig['debounce_ratio']:.1f}x",
            f"< {TARGET_LATENCY_MS:g} ms",
            ok(f"{name}_ms"),
        )

    idle_fig, memory = f["idle"], f["memory"]
    precise = idle_fig["cpu_percent_schedstat"]
    rows: list[tuple[str, ...]] = [
        ("figure", "median", "max", "beside", "target", ""),
        latency_row("files_to_store", "files -> store: tasks.md saved -> record in JSONL"),
        latency_row("store_to_files", "store -> files: record put -> tasks.md written"),
        (
            "syncs announced per edit",
            f"{f['syncs']['per_edit']:.2f}",
            "",
            f"{f['syncs']['sync_started']} for {f['syncs']['edits']} edits",
            "== 1 (no echo)",
            ok("syncs_per_edit"),
        ),
        (
            f"idle CPU over {idle_fig['wall_seconds']:.1f} s (utime+stime)",
            f"{idle_fig['cpu_percent']:.2f} %",
            "",
            "" if precise is None else f"schedstat {precise:.3f} %",
            f"< {TARGET_IDLE_CPU_PERCENT:g} %",
            ok("idle_cpu_percent"),
        ),
        (
            "resident memory (VmRSS)",
            f"{memory['rss_mb']:.1f} MB",
            f"{(memory['peak_rss_bytes'] or 0) / 1_048_576:.1f} MB",
            f"{memory['threads']} threads; max is VmHWM",
            f"< {TARGET_RSS_MB:g} MB",
            ok("rss_mb"),
        ),
        (
            "start: process spawned -> watch_started",
            f"{f['start']['ms']:.0f} ms",
            "",
            "",
            "",
            "",
        ),
        (
            "SIGTERM -> exit 0 with watch_stopped",
            f"{f['stop']['ms']:.0f} ms",
            "",
            f"exit {f['stop']['exit_code']}",
            "",
            ok("stopped_cleanly"),
        ),
    ]
    env = report["environment"]
    lines = [
        f"git taskstore watch: {p['rounds']} rounds each way on a change of {p['rounds']} "
        f"tasks, {p['changes']} changes watched, debounce {DEBOUNCE_MS} ms; python "
        f"{env['python']}, {env['cpus']} cpus, load {env['load_average_1min']:.1f}",
        "latency: from the save (or the put) to the other side written, polled every "
        f"{POLL_S * 1000:g} ms; CPU clock tick {idle_fig['clock_tick_s'] * 1000:g} ms",
        "",
    ]
    lines += [*table_lines(rows), "", targets_footer(missed_targets(t))]
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------


def run(rounds: int, changes: int, idle_seconds: float) -> dict[str, Any]:
    if not os.path.exists("/proc/self/stat"):
        raise RuntimeError("this benchmark reads /proc: it runs on Linux only")
    params = {"rounds": rounds, "changes": changes, "idle_seconds": idle_seconds}
    work = tempfile.mkdtemp(prefix="bench-openspec-watch-")
    env = bench_env()
    env["HOME"] = work  # nothing of the caller's home is read or written
    watcher: WatchProcess | None = None
    try:
        t0 = clock()
        progress(f"repository with {changes} changes")
        top = os.path.join(work, "repo")
        tasks_md = make_repo(top, changes, rounds, env)
        progress("starting the watcher")
        started = clock()
        watcher = WatchProcess(top, env)
        watcher.wait_for("watch_started")
        figures: dict[str, Any] = {"start": {"ms": (clock() - started) * 1000}}
        progress(f"{rounds} rounds each way")
        figures.update(latencies(top, tasks_md, watcher, rounds))
        settle(QUIET_BEFORE_IDLE_S)
        progress(f"idle for {idle_seconds:g} s")
        figures.update(idle(watcher.proc.pid, idle_seconds))
        stopping = clock()
        code = watcher.stop()
        figures["stop"] = {
            "ms": (clock() - stopping) * 1000,
            "exit_code": code,
            "clean": code == 0
            and bool(watcher.events)
            and watcher.events[-1]["event"] == "watch_stopped",
        }
        progress(f"done in {clock() - t0:.1f} s")
        return build_report(params, figures)
    finally:
        if watcher is not None and watcher.proc.poll() is None:
            watcher.proc.kill()
            watcher.proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="edits each way (N)")
    parser.add_argument("--changes", type=int, default=20, help="changes watched (C)")
    parser.add_argument(
        "--idle-seconds", type=float, default=5.0, help="how long idle CPU is measured (S)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.changes < 1:
        parser.error("--rounds and --changes must be 1 or more")
    if args.idle_seconds <= 0:
        parser.error("--idle-seconds must be more than 0")
    report = run(args.rounds, args.changes, args.idle_seconds)
    print(json.dumps(report, indent=2) if args.json else render_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
