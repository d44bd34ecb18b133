"""Helpers shared by the benchmark scripts in this folder.

The scripts run as ``python bench/bench_x.py``, so this folder is on ``sys.path`` and they
import these with ``from common import ...``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

# Task-like vocabulary for generated records. A script that needs more values extends these
# (``TAGS + (...)``); one that draws from a different list keeps its own, so that its data
# set stays the same.
STATUSES = ("todo", "in_progress", "blocked", "review", "done", "cancelled")
TAGS = ("backend", "frontend", "api", "auth", "db", "infra", "ci", "docs", "bug", "perf")
WORDS = (
    "add", "fix", "remove", "refactor", "migrate", "document", "test", "cache", "login",
    "export", "import", "retry", "timeout", "flaky", "report", "dashboard", "queue",
    "worker", "schema", "index", "endpoint", "webhook", "token", "session", "upload",
)  # fmt: skip


def environment(**extra: Any) -> dict[str, Any]:
    """What a report says of the machine: python, cpus, load (other work on the machine
    shows in wall times), and what else a script names."""
    return {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        **extra,
    }


def clock() -> float:
    """Return a monotonic time in seconds for measuring intervals."""
    return time.perf_counter()


def progress_for(name: str) -> Callable[[str], None]:
    """Return a printer that writes ``name: message`` lines to stderr, flushed at once."""

    def progress(message: str) -> None:
        print(f"{name}: {message}", file=sys.stderr, flush=True)

    return progress


def fmt_s(seconds: float | None, ms_digits: int = 1) -> str:
    """Format seconds as ms below one second, else as s; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.{ms_digits}f} ms"
    return f"{seconds:.3f} s"


def fmt_mb(value: float | None) -> str:
    """Format a byte count as whole MiB (``MB``); ``-`` for None."""
    return "-" if value is None else f"{value / 1_048_576:.0f} MB"


def fmt_x(value: float | None) -> str:
    """Format a ratio as ``1.23x``; ``-`` for None."""
    return "-" if value is None else f"{value:.2f}x"


def ratio(a: float | None, b: float | None) -> float | None:
    """Return ``a / b``, or None when ``a`` is None or ``b`` is None or zero."""
    return a / b if a is not None and b else None


def table_lines(rows: Sequence[Sequence[str]]) -> list[str]:
    """Align rows into columns, the first row a header underlined with dashes."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def targets_footer(missed: Iterable[str]) -> str:
    """Return ``all targets met``, or ``targets missed: a, b`` naming the missed ones."""
    names = list(missed)
    return "all targets met" if not names else "targets missed: " + ", ".join(names)


def missed_targets(targets: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Return the names of the targets whose ``ok`` is false."""
    return [name for name, target in targets.items() if not target["ok"]]


@contextmanager
def timed_parts(wrapped: Sequence[tuple[Any, str, str]]) -> Iterator[dict[str, float]]:
    """Time the stages of a run by wrapping the functions that do them, each ``(owner,
    attribute, label)``: seconds by label. For one extra, uncounted run: a wrapper costs
    about a microsecond a call."""
    parts: dict[str, float] = {}
    patched: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            try:
                return original(*args, **kwargs)
            finally:
                parts[label] = parts.get(label, 0.0) + clock() - t0

        patched.append((owner, name, original))
        setattr(owner, name, wrapper)

    for owner, name, label in wrapped:
        wrap(owner, name, label)
    try:
        yield parts
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)
