"""A sealed environment for every test: no user config, fixed identities and dates."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from git_taskstore import Store


@pytest.fixture(autouse=True, scope="session")
def sealed_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    home = tmp_path_factory.mktemp("home")
    saved = dict(os.environ)
    for key in list(os.environ):
        # git exports these into hooks; a test run from a hook must not touch that repo.
        if key.startswith(("GIT_", "TASKSTORE_")):
            del os.environ[key]
    os.environ.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.com",
        GIT_AUTHOR_DATE="2026-01-01T00:00:00+00:00",
        GIT_COMMITTER_NAME="Test Committer",
        GIT_COMMITTER_EMAIL="committer@example.com",
        GIT_COMMITTER_DATE="2026-01-01T00:00:00+00:00",
        GIT_EDITOR="false",
        GIT_PAGER="cat",
        PAGER="cat",
        LC_ALL="C.UTF-8",
    )
    real_home = Path(saved.get("HOME", "/nonexistent"))
    before = _home_snapshot(real_home)
    yield
    os.environ.clear()
    os.environ.update(saved)
    assert _home_snapshot(real_home) == before, "a test wrote into the real home directory"


def _home_snapshot(home: Path) -> set[str]:
    # Only the top level: enough to catch a stray .gitconfig or config folder.
    try:
        return {p.name for p in home.iterdir()}
    except OSError:
        return set()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path) as s:
        yield s


@pytest.fixture(scope="module")
def venv_first_on_path(sealed_env: None) -> Iterator[None]:
    """git runs the hooks and git-taskstore-merge by name: they must be this venv's."""
    saved = os.environ["PATH"]
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + saved
    yield
    os.environ["PATH"] = saved
