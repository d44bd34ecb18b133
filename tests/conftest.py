"""Every test runs sealed (see testing.sealed) and fails if it writes into the real home."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from testing.sealed import home_entries, outside, seal

from git_taskstore import Collection, Store

pytest_plugins = ("pytester", "testing.openspec")

_SAVED = pytest.StashKey[tuple[dict[str, str], Path]]()


def pytest_configure(config: pytest.Config) -> None:
    # Sealed before collection, so module-level code sees the sealed environment too, and
    # in the xdist controller before it starts its workers, which each seal again.
    home = Path(tempfile.mkdtemp(prefix="sealed-home-"))
    config.stash[_SAVED] = (dict(os.environ), home)
    seal(os.environ, home)
    # As in the processes the tests start (see seal): the rewritten test modules are cached.
    sys.dont_write_bytecode = False


def pytest_unconfigure(config: pytest.Config) -> None:
    saved, home = config.stash[_SAVED]
    os.environ.clear()
    os.environ.update(saved)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(autouse=True)
def real_home_untouched() -> Iterator[None]:
    real = outside()["HOME"]
    before = home_entries(Path(real)) if real else set()
    yield
    new = home_entries(Path(real)) - before if real else set()
    assert not new, (
        f"a test wrote into the real home {real}: {sorted(new)} (this one, or under xdist"
        " one running beside it on another worker)"
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path) as s:
        yield s


@pytest.fixture(scope="module")
def venv_first_on_path() -> None:
    """git runs the hooks and git-taskstore-merge by name: the seal puts this venv's bin
    first on PATH for every test; a module naming this fixture says it relies on that."""
    assert os.environ["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)


@pytest.fixture
def tasks(store: Store) -> Collection:
    return store.collection("tasks")
