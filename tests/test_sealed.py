"""The sealed environment holds in xdist workers, and a write into the real home fails."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
from testing import git, init_repo
from testing.sealed import OUTSIDE_VAR, home_entries, outside

TESTS = Path(__file__).resolve().parent

INNER = """
import os
import subprocess
from pathlib import Path

from testing.sealed import outside


def test_a_worker_is_sealed(tmp_path):
    assert os.environ.get("PYTEST_XDIST_WORKER")
    assert os.environ["HOME"] != outside()["HOME"]
    assert "GIT_DIR" not in os.environ and "TASKSTORE_DIR" not in os.environ
    assert "PYTHONDONTWRITEBYTECODE" not in os.environ
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-q", "--allow-empty", "-m", "x"],
                   check=True)
    log = subprocess.run(["git", "-C", str(tmp_path), "log", "--format=%an|%cn|%aI"],
                         capture_output=True, text=True, check=True).stdout
    assert log == "Test Author|Test Committer|2026-01-01T00:00:00+00:00\\n"


def test_writing_into_the_real_home():
    (Path(outside()["HOME"]) / ".gitconfig").write_text("[user]\\n")
"""


def test_workers_are_sealed_and_a_write_into_the_real_home_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    # What a developer's shell may hold, and what git exports into a hook that runs pytest.
    monkeypatch.delenv(OUTSIDE_VAR)
    monkeypatch.setenv("HOME", str(user_home))
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere.git"))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Someone Else")
    monkeypatch.setenv("TASKSTORE_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # the inner run imports testing/
    pytester.makeconftest((TESTS / "conftest.py").read_text())
    pytester.makepyfile(test_inner=INNER)
    # One worker: a write shows up in the tests that run beside it on other workers too.
    result = pytester.runpytest_subprocess("-n", "1", "-p", "xdist", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    wrote = f"AssertionError: a test wrote into the real home {user_home}: ['.gitconfig']"
    result.stdout.re_match_lines([".*" + re.escape(wrote)])


def test_home_entries_sees_new_names_in_the_watched_folders(tmp_path: Path) -> None:
    (tmp_path / ".cache").mkdir()
    before = home_entries(tmp_path)
    assert before == {".cache"}
    (tmp_path / ".cache" / "pre-commit").mkdir()
    (tmp_path / ".gitconfig").write_text("")
    (tmp_path / ".cache" / "pre-commit" / "deeper").mkdir()  # below the watched level
    assert home_entries(tmp_path) - before == {".cache/pre-commit", ".gitconfig"}


def test_this_run_is_sealed(tmp_path: Path) -> None:
    assert json.loads(os.environ[OUTSIDE_VAR]) == outside()
    assert os.environ["HOME"] != outside()["HOME"]
    assert os.environ["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    repo = init_repo(tmp_path / "repo")
    assert git(repo, "config", "--list", "--show-origin", "--global", check=False) == ""
