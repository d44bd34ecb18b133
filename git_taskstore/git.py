"""The one place that talks to git.

Plain ``git`` subprocesses answer the questions about a work tree (where hooks go, what a
config key holds, which attribute applies): they honour everything git honours
(``core.hooksPath``, linked worktrees, includes, GIT_DIR and GIT_INDEX_FILE set by a
hook) and cost a few milliseconds where importing pygit2 costs ~80 ms. pygit2 is imported
only where git objects are read: history, and the text merge of the merge driver.
"""

from __future__ import annotations

import os
import subprocess
from functools import cached_property

from .errors import TaskstoreError

DRIVER_NAME = "taskstore"
DRIVER_DESCRIPTION = "git-taskstore record-level JSONL merge"
DRIVER_ARGS = "%O %A %B %L %P"
DRIVER_SCRIPT = "git-taskstore-merge"


def driver_command() -> str:
    """What merge.taskstore.driver holds: git runs it through the shell.

    A driver git cannot start leaves ours alone in the file, with no markers: a silent
    loss once `git add`ed. So it tries the script installed beside this interpreter, then
    the one on PATH; with neither, it keeps both whole sides between markers (what the
    driver itself writes when even its text merge fails) and reports a conflict.
    `git taskstore resolve` settles that block record by record.
    """
    import shlex
    import sys

    args = f"{DRIVER_SCRIPT} {DRIVER_ARGS}"
    fallback = (
        f"command -v {DRIVER_SCRIPT} >/dev/null 2>&1 && exec {args}; "
        f"echo '{DRIVER_SCRIPT} not found (pip install git-taskstore): both sides of' %P "
        "'kept between markers' >&2; "
        "{ echo '<<<<<<< ours'; awk 1 %A; echo '======='; awk 1 %B; echo '>>>>>>> theirs'; } "
        "> %A.both && mv %A.both %A; exit 1"
    )
    installed = os.path.join(os.path.dirname(sys.executable), DRIVER_SCRIPT)
    if not os.path.exists(installed):
        return fallback
    quoted = shlex.quote(installed)
    return f"[ -x {quoted} ] && exec {quoted} {DRIVER_ARGS}; {fallback}"


class GitError(TaskstoreError):
    """git failed: the message names the command, its exit code and what it printed."""

    def __init__(self, args: list[str], code: int, stdout: bytes, stderr: bytes) -> None:
        self.command = args
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
        detail = (stderr or stdout).decode("utf-8", "replace").strip().replace("\n", " | ")
        super().__init__(f"`{' '.join(args)}` exited {code}: {detail or '(no output)'}")


def run_git(
    *args: str, cwd: str, input: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    cmd = ["git", *args]
    try:
        proc = subprocess.run(cmd, cwd=cwd, input=input, capture_output=True, check=False)
    except FileNotFoundError:
        raise TaskstoreError("git is not installed (or not on PATH)") from None
    if check and proc.returncode != 0:
        raise GitError(cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc


class Repo:
    """A git work tree, as git itself sees it from ``cwd``.

    A plain class: the hooks find the repository, and dataclasses' import (inspect, ast)
    is a tenth of a hook's start-up."""

    def __init__(self, top: str, git_dir: str, common_dir: str, hooks_dir: str) -> None:
        self.top = top  # the top of the work tree
        self.git_dir = git_dir  # this worktree's git dir (.git, or .git/worktrees/NAME)
        self.common_dir = common_dir  # shared by all linked worktrees
        self.hooks_dir = hooks_dir  # where git runs hooks from (core.hooksPath honoured)

    def __repr__(self) -> str:
        return f"Repo(top={self.top!r}, git_dir={self.git_dir!r})"

    @cached_property
    def hooks_path(self) -> str | None:
        """core.hooksPath, if set: asked of git once, by what installs hooks."""
        proc = run_git("config", "--get", "core.hooksPath", cwd=self.top, check=False)
        return (proc.stdout.decode().strip() if proc.returncode == 0 else "") or None

    def config_get(self, key: str) -> str | None:
        proc = run_git("config", "--get", key, cwd=self.top, check=False)
        if proc.returncode == 1:  # unset
            return None
        if proc.returncode != 0:
            raise GitError(
                ["git", "config", "--get", key], proc.returncode, proc.stdout, proc.stderr
            )
        return proc.stdout.decode().rstrip("\n")

    def config_set(self, key: str, value: str) -> bool:
        """Set a key in this clone's config; True if it changed."""
        if self.config_get(key) == value:
            return False
        run_git("config", "--local", key, value, cwd=self.top)
        return True

    def config_bool(self, key: str, default: bool = False) -> bool:
        proc = run_git("config", "--type=bool", "--get", key, cwd=self.top, check=False)
        if proc.returncode != 0:
            return default
        return proc.stdout.strip() == b"true"

    def attribute(self, path: str, name: str) -> str | None:
        """The value of a git attribute for ``path`` (relative to the top), as git sees it."""
        out = run_git("check-attr", name, "--", path, cwd=self.top).stdout.decode()
        value = out.rsplit(": ", 1)[-1].strip()
        return None if value in ("unspecified", "") else value


def find_repo(cwd: str) -> Repo | None:
    """The work tree containing ``cwd``, or None outside git (or in a bare repository)."""
    proc = run_git(
        "rev-parse",
        "--show-toplevel",
        "--git-dir",
        "--git-common-dir",
        "--git-path",
        "hooks",
        cwd=cwd,
        check=False,
    )
    if proc.returncode != 0:
        return None
    lines = proc.stdout.decode().splitlines()
    if len(lines) != 4:
        return None
    top, git_dir, common_dir, hooks = lines
    # git prints these relative to cwd (or absolute); make them absolute once.
    git_dir, common_dir, hooks = (
        os.path.normpath(os.path.join(cwd, p)) for p in (git_dir, common_dir, hooks)
    )
    return Repo(top, git_dir, common_dir, hooks)


def staged_files(repo: Repo, prefix: str) -> list[str]:
    """Paths under ``prefix`` (relative to the top) that the commit being made adds or changes."""
    out = run_git(
        "diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR", "--", prefix, cwd=repo.top
    ).stdout
    return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]


def staged_contents(repo: Repo, paths: list[str]) -> dict[str, bytes]:
    """The staged blob of each path, in one `git cat-file --batch`."""
    if not paths:
        return {}
    request = "".join(f":{p}\n" for p in paths).encode("utf-8", "surrogateescape")
    out = run_git("cat-file", "--batch", cwd=repo.top, input=request).stdout
    contents: dict[str, bytes] = {}
    pos = 0
    for path in paths:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[1] != b"blob":
            continue  # "missing": not in the index after all
        size = int(header[2])
        contents[path] = out[pos : pos + size]
        pos += size + 1  # the blob is followed by a newline
    return contents
