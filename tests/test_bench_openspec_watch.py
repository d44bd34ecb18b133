"""bench/bench_openspec_watch.py runs at a small size and reports every figure.

Only that it runs and reports is checked, and what is no timing: each edit gave one
sync (no echo) and SIGTERM stopped the watcher cleanly. The latencies, CPU and memory
belong to the benchmark's own output, not to assertions on a shared machine.
"""

from __future__ import annotations

import pytest
from testing import run_bench

# It starts a whole benchmark run: CI runs it, the default loop skips it.
pytestmark = pytest.mark.slow


def test_bench_openspec_watch_runs_at_a_small_size() -> None:
    report = run_bench(
        "bench_openspec_watch.py", "--rounds", "2", "--changes", "3", "--idle-seconds", "0.5"
    )
    assert report["params"] == {"rounds": 2, "changes": 3, "idle_seconds": 0.5}
    targets = report["targets"]
    limits = {"files_to_store_ms": 300, "store_to_files_ms": 300}
    limits |= {"idle_cpu_percent": 1, "rss_mb": 60}
    assert {name: t["limit"] for name, t in targets.items() if "limit" in t} == limits
    for name in limits:
        assert targets[name]["value"] >= 0 and isinstance(targets[name]["ok"], bool), name
    # Not timings: one sync per edit, and a clean stop.
    assert targets["syncs_per_edit"] == {"value": 1.0, "expected": 1.0, "ok": True}
    assert targets["stopped_cleanly"] == {"value": True, "expected": True, "ok": True}
    figures = report["figures"]
    for direction in ("files_to_store", "store_to_files"):
        figure = figures[direction]
        assert len(figure["runs_ms"]) == 2
        assert 0 < figure["median_ms"] <= figure["max_ms"], figure
        assert figure["debounce_ms"] == 100 and figure["debounce_ratio"] > 0
    assert figures["syncs"]["sync_started"] == 4 and figures["syncs"]["other_changes"] == 0
    assert figures["memory"]["rss_bytes"] > 0 and figures["memory"]["peak_rss_bytes"] > 0
    assert figures["idle"]["wall_seconds"] >= 0.5 and figures["stop"]["exit_code"] == 0
