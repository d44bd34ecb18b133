"""The command line called in this process through ``main(argv)``: no interpreter start.

A test that checks what a command does (its output, its exit code, the files it leaves)
needs no process of its own; a process costs ~175 ms here, a call a few. What only a
process shows (start-up, git finding ``git-taskstore`` on PATH, a terminal) is tested
with ``testing.cli``.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from git_taskstore.entry import main

from . import Result


@contextmanager
def _sealed_call(cwd: str | os.PathLike[str], env: dict[str, str] | None) -> Iterator[None]:
    # A command may set TASKSTORE_DIR (--store before the command name, hook-run) and
    # resolves the store from the current folder: both go back as they were.
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    os.environ.update(env or {})
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def cli(
    *args: str,
    cwd: str | os.PathLike[str],
    input: str | bytes | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    """Run ``git taskstore ARGS...`` in-process with its own stdin, stdout and stderr.

    Same signature and Result as ``testing.cli``, and input may be bytes; stdin is
    empty when no input is given (not a terminal, as under a test runner). A bug's
    exception propagates and fails the test with its traceback.
    """
    out, err = io.BytesIO(), io.BytesIO()
    stdin = input.encode() if isinstance(input, str) else input or b""
    streams = (sys.stdin, sys.stdout, sys.stderr)
    ours = (
        io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"),
        io.TextIOWrapper(out, encoding="utf-8", write_through=True),
        io.TextIOWrapper(err, encoding="utf-8", write_through=True),
    )
    sys.stdin, sys.stdout, sys.stderr = ours
    try:
        with _sealed_call(cwd, env):
            code = main(list(args))
    finally:
        sys.stdin, sys.stdout, sys.stderr = streams
        for wrapper in ours:
            wrapper.flush()
            wrapper.detach()  # else collecting the wrapper closes the BytesIO under it
    return Result(code, out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8"))
