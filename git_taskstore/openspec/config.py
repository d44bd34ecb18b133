"""The OpenSpec sync's settings: ``.taskstore/openspec.json``, committed with the store.

Committed so that every clone syncs the same folders and keeps the same history:
``{"roots": ["openspec"], "history_limit": 1000, "backups": 20}``. Roots are folders
relative to the folder that holds the store (the top of the work tree).
"""

from __future__ import annotations

import os
import re

from ..errors import TaskstoreError
from ..files import atomic_write
from . import CONFIG_NAME
from .lastsync import loads

DEFAULT_HISTORY_LIMIT = 1000
DEFAULT_BACKUPS = 20


def check_root(root: str) -> str:
    """A root as the config keeps it: relative, "/"-separated, inside the top."""
    cleaned = root.replace(os.sep, "/").strip("/")
    parts = cleaned.split("/")
    if not cleaned or os.path.isabs(root) or any(p in ("", ".", "..") for p in parts):
        raise TaskstoreError(
            f"OpenSpec root {root!r} must be a folder inside the work tree, "
            "given relative to its top (e.g. openspec)"
        )
    if not _PLAIN_ROOT.fullmatch(cleaned):
        # Each root becomes a .gitattributes pattern, where a space or a glob character
        # would change its meaning.
        raise TaskstoreError(
            f"OpenSpec root {root!r} may hold only letters, digits, '.', '_', '-' and '/'"
        )
    return cleaned


_PLAIN_ROOT = re.compile(r"[A-Za-z0-9._/-]+")


class NotConfigured(TaskstoreError):
    """The store has no OpenSpec settings yet."""


class Config:
    """The settings. A plain class: the hooks read them, and dataclasses costs 8 ms."""

    def __init__(
        self,
        roots: list[str] | None = None,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        backups: int = DEFAULT_BACKUPS,
    ) -> None:
        self.roots = roots if roots is not None else ["openspec"]
        self.history_limit = history_limit  # sync history records kept
        self.backups = backups  # copies kept of each file the sync replaced

    def to_json(self) -> bytes:
        import orjson

        data = {"roots": self.roots, "history_limit": self.history_limit, "backups": self.backups}
        return orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"


def path_of(store_dir: str) -> str:
    return os.path.join(store_dir, CONFIG_NAME)


def load(store_dir: str) -> Config:
    """The settings; NotConfigured when there are none, TaskstoreError when they are bad."""
    path = path_of(store_dir)
    shown = os.path.join(os.path.basename(store_dir), CONFIG_NAME)
    if os.path.islink(path):
        raise TaskstoreError(f"{shown} is a symbolic link; run `git taskstore openspec init`")
    try:
        with open(path, "rb") as handle:
            data = loads(handle.read(1 << 16))
    except FileNotFoundError:
        raise NotConfigured(
            "OpenSpec sync is not set up in this store: run `git taskstore openspec init`"
        ) from None
    except (OSError, ValueError) as exc:
        raise TaskstoreError(f"{shown} cannot be read ({exc}); fix it or re-run init") from None
    if not isinstance(data, dict):
        raise TaskstoreError(f"{shown} should hold a JSON object; re-run `openspec init`")
    roots = data.get("roots", ["openspec"])
    if not isinstance(roots, list) or not roots or not all(isinstance(r, str) for r in roots):
        raise TaskstoreError(f'{shown}: "roots" should be a list of folder names')
    try:
        config = Config([check_root(r) for r in roots])
    except TaskstoreError as exc:
        raise TaskstoreError(f"{shown}: {exc}") from None
    for key in ("history_limit", "backups"):
        value = data.get(key, getattr(config, key))
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise TaskstoreError(f'{shown}: "{key}" should be a whole number >= 0')
        setattr(config, key, value)
    return config


def save(store_dir: str, config: Config) -> None:
    atomic_write(path_of(store_dir), config.to_json())
