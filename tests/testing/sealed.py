"""The sealed environment every test runs in: no user config, fixed identities and dates."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

# The user's HOME and XDG_CONFIG_HOME before sealing, as JSON. An xdist worker inherits the
# controller's sealed environment, so what lay outside reaches it through this variable.
OUTSIDE_VAR = "SEALED_TESTS_OUTSIDE"
OUTSIDE_NAMES = ("HOME", "XDG_CONFIG_HOME")

# Folders of the real home that programs create their own entries in (pre-commit, pip, git).
WATCHED = ("", ".cache", ".config", ".local", ".local/share")


def sealed_values(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
        "GIT_COMMITTER_NAME": "Test Committer",
        "GIT_COMMITTER_EMAIL": "committer@example.com",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00",
        "GIT_EDITOR": "false",
        "GIT_PAGER": "cat",
        "PAGER": "cat",
        "LC_ALL": "C.UTF-8",
        "PATH": venv_first(os.environ.get("PATH", "")),
    }


def venv_first(path: str) -> str:
    """``path`` with this interpreter's bin folder first: git runs the hooks and
    git-taskstore-merge by name, and they must be this venv's."""
    bin_dir = os.path.dirname(sys.executable)
    rest = [p for p in path.split(os.pathsep) if p and p != bin_dir]
    return os.pathsep.join([bin_dir, *rest])


def seal(environ: MutableMapping[str, str], home: Path) -> None:
    """Replace the user's settings in ``environ`` by the sealed ones, HOME being ``home``."""
    if OUTSIDE_VAR not in environ:
        environ[OUTSIDE_VAR] = json.dumps({name: environ.get(name) for name in OUTSIDE_NAMES})
    for key in list(environ):
        # git exports these into hooks; a test run from a hook must not touch that repo.
        if key.startswith(("GIT_", "TASKSTORE_")):
            del environ[key]
    # The tests start hundreds of Python processes: without bytecode caches each one compiles
    # the package from source again, which doubles what a command costs.
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    environ.update(sealed_values(home))


def outside(environ: Mapping[str, str] = os.environ) -> dict[str, str | None]:
    """HOME and XDG_CONFIG_HOME as they were before the seal (None: not set)."""
    found: dict[str, str | None] = json.loads(environ[OUTSIDE_VAR])
    return found


def home_entries(home: Path) -> set[str]:
    """The names directly inside the watched folders of ``home``: a stray .gitconfig, a
    ~/.cache/pre-commit, a ~/.config/git shows up as a new name."""
    names: set[str] = set()
    for folder in WATCHED:
        try:
            names.update(f"{folder}/{p.name}".lstrip("/") for p in (home / folder).iterdir())
        except OSError:
            continue
    return names
