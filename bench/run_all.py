"""Run every benchmark of the project at one size and print one table.

    python bench/run_all.py [--size small|default] [--json]

Runs each ``bench/bench_*.py`` that exists, one after the other (never in parallel: they
time things), as a subprocess with ``--json`` and the arguments of the size:

    script          small                              default
    bench_sync      --records 2000                     its own defaults (100,000 records)
    bench_writes    --records 5000 --writes 200        its own defaults (100,000 / 2,000)
    bench_merge     --lines 10000                      its own defaults (100,000 lines)
    bench_hooks     --runs 3 --records 1000            its own defaults (20 runs, 100,000 records)
    bench_history   --commits 100                      its own defaults (1,000 commits)
    bench_openspec  --changes 100                      its own defaults (1,000 changes)
    bench_openspec_watch --rounds 5 --idle-seconds 1   its own defaults (20 rounds, 5 s idle)
    (any other)     its own defaults                   its own defaults

small takes a few seconds a script; default takes minutes. The table has one row per
target a script reports (its ``--json`` "targets"): the figure, its value, the floor or
peer the script measured in the same run (every ``*_ratio`` of the figure: floor, peer,
git, python, default mode...), the ratio, the target and whether it is met; plus the
peak memory where a script reports one. A script that fails, times out or prints no
JSON is shown as FAILED with the end of its stderr, and the exit code is then 1; a
known script that does not exist yet is listed as absent. Missed targets do not change
the exit code: they are figures, not assertions. Each script's progress goes to stderr
as it runs; stdout holds the table, or one JSON object with --json.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent

SIZES: dict[str, dict[str, list[str]]] = {
    "bench_sync": {"small": ["--records", "2000"], "default": []},
    "bench_writes": {"small": ["--records", "5000", "--writes", "200"], "default": []},
    "bench_merge": {"small": ["--lines", "10000"], "default": []},
    "bench_hooks": {"small": ["--runs", "3", "--records", "1000"], "default": []},
    "bench_history": {"small": ["--commits", "100"], "default": []},
    "bench_openspec": {"small": ["--changes", "100"], "default": []},
    "bench_openspec_watch": {"small": ["--rounds", "5", "--idle-seconds", "1"], "default": []},
}
TIMEOUT_S = {"small": 600.0, "default": 3600.0}
STDERR_TAIL = 15  # lines of a failed script's stderr kept for the report

COLUMNS = ("benchmark", "figure", "value", "floor / peer", "ratio", "target", "ok")


def progress(message: str) -> None:
    print(f"run_all: {message}", file=sys.stderr, flush=True)


# --- running the scripts -------------------------------------------------------------------


def discover(folder: Path) -> list[str]:
    """Names of the bench_*.py scripts in folder, known ones first in SIZES order."""
    present = sorted(p.stem for p in folder.glob("bench_*.py") if p.is_file())
    known = [name for name in SIZES if name in present]
    return known + [name for name in present if name not in SIZES]


def run_script(folder: Path, name: str, size: str) -> dict[str, Any]:
    """Run one script with --json; never raises: a failure is described in the result."""
    args = [*SIZES.get(name, {}).get(size, []), "--json"]
    command = [sys.executable, str(folder / f"{name}.py"), *args]
    result: dict[str, Any] = {
        "script": f"{name}.py",
        "args": args,
        "exit_code": None,
        "seconds": None,
        "ok": False,
        "error": None,
        "report": None,
    }
    progress(f"{name} {' '.join(args)}")
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=folder.parent,
        )
    except OSError as exc:
        result["error"] = f"could not start: {exc}"
        return result

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line.rstrip("\n"))
            sys.stderr.write(f"  {line}")
            sys.stderr.flush()

    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()
    timed_out = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        proc.kill()

    timer = threading.Timer(TIMEOUT_S[size], on_timeout)
    timer.start()
    try:
        assert proc.stdout is not None
        stdout = proc.stdout.read()
        proc.wait()
    finally:
        timer.cancel()
    pumper.join(timeout=10)
    result["seconds"] = time.perf_counter() - t0
    result["exit_code"] = proc.returncode
    if timed_out.is_set():
        result["error"] = f"timed out after {TIMEOUT_S[size]:.0f} s"
    elif proc.returncode != 0:
        result["error"] = f"exit {proc.returncode}: " + (" | ".join(tail) or "(no stderr)")
    else:
        try:
            report = json.loads(stdout)
        except ValueError as exc:
            result["error"] = f"no JSON on stdout ({exc}): {stdout.strip()[:200]!r}"
        else:
            if not isinstance(report, dict) or not isinstance(report.get("targets"), dict):
                result["error"] = 'its JSON has no "targets" object'
            else:
                result["report"] = report
                result["ok"] = True
    progress(f"{name}: {'done' if result['ok'] else 'FAILED'} in {result['seconds']:.1f} s")
    return result


# --- reading a report ----------------------------------------------------------------------


def unit_of(name: str) -> str:
    """The unit of a target's value, from its name: s, ms, x (a ratio) or '' (a number)."""
    if name.endswith(("_seconds", "_s")):
        return "s"
    if name.endswith("_ms"):
        return "ms"
    if "_vs_" in name or name.endswith(("_ratio", "_speedup")) or name.startswith("speedup"):
        return "x"
    return ""


def fmt(value: Any, unit: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if unit == "s":
        return fmt(value * 1000, "ms") if abs(value) < 1 else f"{value:.3f} s"
    if unit == "ms":
        if abs(value) < 1:
            return f"{value * 1000:.0f} us"
        return f"{value:.1f} ms" if abs(value) < 100 else f"{value:.0f} ms"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "B":
        return f"{value / 1_048_576:.1f} MB"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def find_figure(figures: dict[str, Any], target: str) -> tuple[str, dict[str, Any]] | None:
    """The figure a target is about: the figure of the same name, else of the longest
    leading part of its name (rebuild_vs_floor -> rebuild, driver_process_seconds ->
    driver)."""
    parts = target.split("_")
    for end in range(len(parts), 0, -1):
        key = "_".join(parts[:end])
        figure = figures.get(key)
        if isinstance(figure, dict):
            return key, figure
    return None


def main_value(figure: dict[str, Any]) -> tuple[float, str] | None:
    for key, unit in (("seconds", "s"), ("median_ms", "ms"), ("ms", "ms")):
        value = figure.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value), unit
    return None


def comparisons(
    report: dict[str, Any], figure: dict[str, Any], value: float, unit: str
) -> list[tuple[str, str]]:
    """(what it is compared with and its value, the ratio) for every *_ratio of a figure.

    A ratio is the figure's value over the other's, so the other's value is value/ratio.
    """
    out = []
    for key, ratio in figure.items():
        if not key.endswith("_ratio") or isinstance(ratio, bool):
            continue
        if not isinstance(ratio, int | float) or ratio <= 0:
            continue
        label = key[: -len("_ratio")].replace("_", " ")
        named = figure.get(label)
        if isinstance(named, str):  # bench_hooks: "floor": "python" names the floor
            floors = report.get("floors", {})
            described = floors.get(named, {}).get("label") if isinstance(floors, dict) else None
            label = f"{label} {described or named}"
        out.append((f"{label} {fmt(value / ratio, unit)}", fmt(ratio, "x")))
    return out


def target_rows(name: str, report: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    figures = report.get("figures")
    figures = figures if isinstance(figures, dict) else {}
    for target_name, target in report["targets"].items():
        if not isinstance(target, dict):
            rows.append([name, target_name, fmt(target, ""), "", "", "", "?"])
            continue
        unit = unit_of(target_name)
        value = target.get("value")
        if "limit" in target:
            compare = str(target.get("compare", "<="))
            goal = f"{fmt(value, unit)} {compare} {fmt(target['limit'], unit)}"
        elif "expected" in target:
            goal = f"== {fmt(target['expected'], unit)}"
        else:
            goal = ""
        ok = target.get("ok")
        verdict = "ok" if ok is True else "MISSED" if ok is False else "?"
        shown, compared = fmt(value, unit), [("-", "-")]
        # A target with a limit is about a figure (a timing, a ratio); one with an
        # expected value is a check, shown as it is.
        found = find_figure(figures, target_name) if "limit" in target else None
        if found is not None:
            main = main_value(found[1])
            if main is not None:
                shown = fmt(main[0], main[1])
                compared = comparisons(report, found[1], *main) or compared
        rows.append([name, target_name, shown, compared[0][0], compared[0][1], goal, verdict])
        for label, ratio in compared[1:]:
            rows.append(["", "", "", label, ratio, "", ""])
    return rows


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    else:
        yield path, value


def peak_memory(report: dict[str, Any]) -> dict[str, Any] | None:
    """The largest peak RSS a report holds, and the floor or baseline beside it."""
    found = [
        (path, value)
        for path, value in _walk(report.get("figures", {}))
        if isinstance(value, int)
        and not isinstance(value, bool)
        and ("maxrss" in path.lower() or "peak_rss" in path.lower())
    ]
    if not found:
        return None
    ours = [item for item in found if not any(w in item[0] for w in ("floor", "baseline"))]
    theirs = [item for item in found if item not in ours]
    path, value = max(ours or found, key=lambda item: item[1])
    out: dict[str, Any] = {"path": path, "bytes": value}
    if theirs and ours:
        other_path, other = max(theirs, key=lambda item: item[1])
        out.update(beside_path=other_path, beside_bytes=other)
    return out


def rows_for(name: str, result: dict[str, Any] | None) -> list[list[str]]:
    if result is None:
        return [[name, "(absent: not written yet)", "", "", "", "", ""]]
    label = f"{name} ({result['seconds']:.1f} s)" if result["seconds"] is not None else name
    if not result["ok"]:
        return [[label, "FAILED", result["error"] or "", "", "", "", "FAILED"]]
    report = result["report"]
    rows = target_rows(label, report)
    if not rows:
        rows = [[label, "(no targets)", "", "", "", "", ""]]
    memory = result.get("peak_memory")
    if memory:
        beside = ""
        if "beside_bytes" in memory:
            beside = f"{memory['beside_path']} {fmt(memory['beside_bytes'], 'B')}"
        rows.append(
            ["", f"peak memory ({memory['path']})", fmt(memory["bytes"], "B"), beside, "", "", ""]
        )
    for row in rows[1:]:
        row[0] = ""
    return rows


# --- output --------------------------------------------------------------------------------


def render_table(summary: dict[str, Any]) -> str:
    rows = [list(COLUMNS)] + [
        row for entry in summary["benchmarks"].values() for row in entry["rows"]
    ]
    for name in summary["absent"]:
        rows += rows_for(name, None)
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        f"git-taskstore benchmarks, size {summary['size']}: "
        f"{len(summary['benchmarks'])} script(s) in {summary['seconds']:.0f} s; "
        f"python {summary['python']}, {summary['cpus']} cpus",
        "",
    ]
    for index, row in enumerate(rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    lines.append("")
    failed = [name for name, entry in summary["benchmarks"].items() if not entry["ok"]]
    missed = [
        f"{name}:{target}"
        for name, entry in summary["benchmarks"].items()
        for target, value in entry["targets"].items()
        if isinstance(value, dict) and value.get("ok") is False
    ]
    if failed:
        lines.append("FAILED: " + ", ".join(failed))
    lines.append("all targets met" if not missed else "targets missed: " + ", ".join(missed))
    return "\n".join(lines)


def run(size: str, folder: Path = BENCH_DIR) -> dict[str, Any]:
    t0 = time.perf_counter()
    names = discover(folder)
    benchmarks: dict[str, Any] = {}
    for name in names:
        result = run_script(folder, name, size)
        report = result.pop("report")
        entry = {
            **result,
            "targets": report["targets"] if report else {},
            "targets_met": report.get("ok") if report else None,
            "peak_memory": peak_memory(report) if report else None,
        }
        entry["rows"] = rows_for(name, {**entry, "report": report})
        benchmarks[name] = entry
    return {
        "size": size,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "seconds": time.perf_counter() - t0,
        "benchmarks": benchmarks,
        "absent": [name for name in SIZES if name not in names],
        "columns": list(COLUMNS),
        "ok": all(entry["ok"] for entry in benchmarks.values()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size", choices=("small", "default"), default="default")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    # For tests of this runner: take the scripts from another folder.
    parser.add_argument("--bench-dir", type=Path, default=BENCH_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    summary = run(args.size, args.bench_dir.resolve())
    print(json.dumps(summary, indent=2) if args.json else render_table(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
