"""bench/bench_hooks.py runs at a small size and reports every figure.

Only that it runs and reports is checked: the timings belong to the benchmark's own
output, beside floors measured in the same run, not to assertions on a shared machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from testing import run_bench

# Each starts a whole benchmark run: CI runs them, the default loop skips them.
pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_hooks.py"

HOOK_TARGETS = {
    "hook_post_checkout_ms",
    "hook_post_checkout_docs_ms",
    "hook_post_merge_ms",
    "hook_post_rewrite_ms",
    "hook_pre_commit_ms",
    "hook_pre_push_ms",
}


def test_bench_hooks_runs_and_reports_every_target() -> None:
    report = run_bench("bench_hooks.py", "--runs", "2", "--records", "1000")
    limits = {name: 100 for name in HOOK_TARGETS} | {"cli_version_ms": 60, "cli_list_ms": 120}
    limits |= {"hook_post_checkout_ratio": 3, "cli_list_open_libs_vs_imports": 1.5}
    assert {name: t["limit"] for name, t in report["targets"].items()} == limits
    for name, target in report["targets"].items():
        assert set(target) == {"value", "limit", "ok"}, name
        assert target["value"] > 0, name
        assert isinstance(target["ok"], bool), name
    ratios = {"cli_list_open_libs_vs_imports", "hook_post_checkout_ratio"}  # not figures
    figures = {"cli_list_open_ms", "cli_list_open_libs_ms"}
    assert set(report["figures"]) == set(limits) - ratios | figures
    for figure in report["figures"].values():
        assert figure["median_ms"] > 0 and figure["floor_ratio"] > 0
    assert report["floors"]["python"]["median_ms"] > 0
    assert report["floors"]["git"]["median_ms"] > 0
    assert report["floors"]["imports"]["median_ms"] > 0
    assert report["params"] == {"runs": 2, "records": 1000}


def test_bench_hooks_prints_a_table() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--runs", "1", "--records", "10"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "hooks/post-checkout" in proc.stdout
    assert "floor python: python -c pass" in proc.stdout
    assert "< 100 ms" in proc.stdout
