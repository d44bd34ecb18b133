"""OpenSpec change folders mirrored in the store: parsing, editing, sync and the watcher."""

from __future__ import annotations

# The collections the sync writes (names here: the hooks need them without the parser).
CHANGES = "openspec_changes"
TASKS = "openspec_tasks"
HISTORY = "openspec_sync_history"
FILES = "openspec_files"
# The sync's settings in the store folder (config.py); its presence says the store mirrors
# OpenSpec folders, which every git hook asks before it imports more.
CONFIG_NAME = "openspec.json"
# The markdown files of a change folder the sync reads, beside specs/**/spec.md.
MARKDOWN = ("proposal.md", "tasks.md", "design.md")
