"""Helpers of the write tests: a writer child process driven line by line, file readers."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from git_taskstore import (
    Record,
    Store,
    ValidationError,
)

READ_TIMEOUT_S = 60.0


LONG_DEBOUNCE_MS = 600_000  # never fires during a test: only explicit exports count


VENV_BIN = str(Path(sys.executable).parent)


def jsonl_path(root: Path, collection: str) -> Path:
    return root / ".taskstore" / f"{collection}.jsonl"


def file_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def file_records(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL file, parsed (a line that does not parse fails the test)."""
    data = file_bytes(path) or b""
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def current_in_file(path: Path) -> dict[str, dict[str, Any]]:
    """The current version of each id by the file's rule: greatest updated_at, later
    line on a tie; tombstones included."""
    out: dict[str, dict[str, Any]] = {}
    for record in file_records(path):
        held = out.get(record["id"])
        if held is None or record["updated_at"] >= held["updated_at"]:
            out[record["id"]] = record
    return out


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


WRITER = r"""
import json, os, sys
from git_taskstore import Store

debounce = int(sys.argv[2]) if len(sys.argv) > 2 else None
store = Store.open(sys.argv[1], debounce_ms=debounce)
print(json.dumps({"exported_at_open": store.exported_at_open}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd.pop("op")
    if op == "quit":
        break  # a normal exit without close(): atexit must export
    if op == "die":
        os._exit(0)  # no atexit: pending writes stay in the cache
    try:
        if op == "put":
            out = store.collection(cmd["collection"]).put(cmd["record"])
        elif op == "delete":
            out = store.collection(cmd["collection"]).delete(cmd["id"])
        elif op == "get":
            out = store.collection(cmd["collection"]).get(cmd["id"])
        elif op == "list":
            out = store.collection(cmd["collection"]).list()
        elif op == "flush":
            out = store.flush()
        elif op == "pending":
            out = store.pending()
        elif op == "close":
            out = store.close()
        else:
            out = {"error": "unknown op " + op}
    except Exception as exc:
        out = {"error": type(exc).__name__ + ": " + str(exc)}
    print(json.dumps({"out": out}), flush=True)
"""


class Child:
    """A child process whose stdout lines are read by a thread, with timeouts."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            args,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def read(self, timeout: float = READ_TIMEOUT_S) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer from the child in {timeout}s") from None
        if line is None:
            code = self.proc.wait(timeout=READ_TIMEOUT_S)
            time.sleep(0.05)  # let the stderr pump catch up
            raise AssertionError(f"the child ended (exit {code}): {''.join(self.stderr)}")
        return line

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def wait(self) -> int:
        code = self.proc.wait(timeout=READ_TIMEOUT_S)
        time.sleep(0.05)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=READ_TIMEOUT_S)


class Writer(Child):
    """A process holding a store open, debounced unless told otherwise."""

    def __init__(
        self,
        root: Path,
        debounce_ms: int | None = LONG_DEBOUNCE_MS,
        env: dict[str, str] | None = None,
    ) -> None:
        args = [sys.executable, "-c", WRITER, str(root)]
        if debounce_ms is not None:
            args.append(str(debounce_ms))
        super().__init__(args, root, env)
        self.hello = json.loads(self.read())

    def call(self, op: str, **kwargs: Any) -> Any:
        self.send(json.dumps({"op": op, **kwargs}))
        out = json.loads(self.read())["out"]
        if isinstance(out, dict) and set(out) == {"error"}:
            raise AssertionError(f"{op} failed in the child: {out['error']}")
        return out

    def put(self, collection: str, record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.call("put", collection=collection, record=record)
        return out

    def quit(self) -> int:
        """End normally without close(); return the exit code."""
        self.send(json.dumps({"op": "quit"}))
        return self.wait()

    def die(self) -> int:
        """End with os._exit: no close(), no atexit."""
        self.send(json.dumps({"op": "die"}))
        return self.wait()


@dataclass(kw_only=True)
class Task(Record):
    collection_name: ClassVar[str] = "tasks"
    indexed_fields: ClassVar[tuple[str, ...]] = ("status",)
    id_prefix: ClassVar[str] = "task-"
    title: str = ""
    status: str = "open"

    def validate(self) -> None:
        if not self.title.strip():
            raise ValidationError(f"task {self.id!r} has no title")


def typed_lines(store: Store, collection: str) -> list[dict[str, Any]]:
    return file_records(Path(store.file_path(collection)))
