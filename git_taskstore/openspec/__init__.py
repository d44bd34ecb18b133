"""OpenSpec change folders mirrored in the store: parsing, editing, sync and the watcher."""
