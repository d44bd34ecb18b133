"""Helpers for tests: real git, real processes, a sealed environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
# In CI the repository is cloned with shared/ beside it; a copy in tests/fixtures wins.
LOCAL_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixture_dir(name: str) -> Path:
    for base in (LOCAL_FIXTURES, FIXTURES):
        if (base / name).is_dir():
            return base / name
    raise FileNotFoundError(f"fixture {name!r} not found under {LOCAL_FIXTURES} or {FIXTURES}")


def git(cwd: str | os.PathLike[str], *args: str, check: bool = True) -> str:
    """Run real git; return stdout. A failure shows the command, the code and both streams."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"git {' '.join(args)} exited {proc.returncode}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc.stdout


def init_repo(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return path


def commit_all(repo: str | os.PathLike[str], message: str = "commit") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}"


def cli(
    *args: str,
    cwd: str | os.PathLike[str],
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    """Run the installed command line as a real process (``python -m git_taskstore``)."""
    proc = subprocess.run(
        [sys.executable, "-m", "git_taskstore", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    return Path(path).read_text().splitlines()


def run_python(code: str, *args: str, cwd: str | os.PathLike[str] | None = None) -> Sequence[str]:
    """Run a snippet in a fresh interpreter; return its stdout lines."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return proc.stdout.splitlines()


# Files of a store folder that are not the store's data.
CACHE_NAMES = ("taskstore.db", "taskstore.db-wal", "taskstore.db-shm", "taskstore.lock")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a store folder (or the file itself) except the cache and the lock:
    what must be byte-for-byte unchanged after a refused command."""
    if folder.is_file():
        return {"": folder.read_bytes()}
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(CACHE_NAMES)
    }


def ok(result: Result) -> Result:
    assert result.code == 0, result
    assert "Traceback" not in result.out + result.err, result
    return result


def data(result: Result) -> Any:
    """A successful --json answer: stdout is one JSON document, stderr holds nothing."""
    ok(result)
    assert result.err == "", result
    return json.loads(result.out)  # json.loads refuses trailing data: one document only


def assert_fails(result: Result, code: int, *needles: str) -> str:
    """The user-visible shape of every failure; returns the error line."""
    assert result.code == code, result
    assert "Traceback" not in result.out + result.err, result
    lines = result.err.splitlines()
    assert len(lines) == 1, result
    assert lines[0].startswith("error: "), result
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in the error\n{result}"
    assert result.out == "", result
    return lines[0]


BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(script: str, *args: str) -> dict[str, Any]:
    """Run a benchmark script with --json as a real process; return its report."""
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args, "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report
