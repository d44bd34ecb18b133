"""The real OpenSpec CLI (npm @fission-ai/openspec@1.13.2) as a judge, run sealed.

`.ci/run` installs it with npm into a cache outside the repository; ``$OPENSPEC_BIN``
names another binary. Absent, the tests that need it skip with a reason, except under
``CI`` or with ``$OPENSPEC_BIN`` set (as `.ci/run` sets it), where they fail: a judge
that silently never runs judges nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .sealed import outside

VERSION = "1.13.2"
CACHE = Path(".cache") / "git-taskstore-ci" / "openspec"


def binary() -> Path | None:
    """The openspec binary: $OPENSPEC_BIN, else the CI cache under the real home."""
    named = os.environ.get("OPENSPEC_BIN")
    if named:
        return Path(named) if Path(named).exists() else None
    home = outside().get("HOME")
    if home:
        found = Path(home) / CACHE / "node_modules" / ".bin" / "openspec"
        if found.exists() and shutil.which("node"):
            return found
    return None


class OpenSpec:
    """Runs ``openspec`` in one project folder with a sealed home and no telemetry."""

    def __init__(self, exe: Path, project: Path, home: Path) -> None:
        self.exe = exe
        self.project = project
        self.env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "DO_NOT_TRACK": "1",
            "OPENSPEC_TELEMETRY": "0",
            "NO_COLOR": "1",
            "CI": "1",
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.exe), *args],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"openspec {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done

    def json(self, *args: str, check: bool = True) -> Any:
        done = self.run(*args, "--json", check=check)
        return json.loads(done.stdout)

    def init(self) -> None:
        self.run("init", "--tools", "none", "--no-animation", ".")

    def list_changes(self) -> dict[str, dict[str, Any]]:
        """``openspec list --json``: each change's counts and status, by name."""
        listed = self.json("list", "--sort", "name")
        return {change["name"]: change for change in listed["changes"]}

    def validate_changes(self) -> dict[str, bool]:
        """``openspec validate --changes --strict --json``: each change's verdict, by id."""
        report = self.json("validate", "--changes", "--strict", "--no-interactive", check=False)
        return {item["id"]: item["valid"] for item in report["items"]}


@pytest.fixture
def openspec(tmp_path: Path) -> OpenSpec:
    """An initialised OpenSpec project in tmp_path/project, or a skip (a failure under CI)."""
    exe = binary()
    if exe is None:
        reason = (
            f"the OpenSpec CLI {VERSION} is not installed (.ci/run installs it into "
            f"~/{CACHE}; or set OPENSPEC_BIN)"
        )
        if os.environ.get("CI") or os.environ.get("OPENSPEC_BIN"):
            pytest.fail(reason)
        pytest.skip(reason)
    project = tmp_path / "project"
    project.mkdir()
    home = tmp_path / "openspec-home"
    home.mkdir()
    cli = OpenSpec(exe, project, home)
    cli.init()
    return cli


PROPOSAL = (
    "# Change: {title}\n\n## Why\nUsers ask for it.\n\n"
    "## What Changes\n- **auth:** adds it\n\n## Impact\nSmall.\n"
)
SPEC = (
    "## ADDED Requirements\n### Requirement: {name}\nThe system SHALL do {name}.\n\n"
    "#### Scenario: It works\n- **WHEN** asked\n- **THEN** it does\n"
)

# Realistic hand-written changes: id -> {relative file: text}.
CHANGES: dict[str, dict[str, str]] = {
    "nested-tasks": {
        "proposal.md": PROPOSAL.format(title="Nested tasks"),
        "specs/auth/login/spec.md": SPEC.format(name="Login")
        + "\n## REMOVED Requirements\n- `### Requirement: Old login`\n",
        "tasks.md": (
            "# Tasks\n\n## 1. Setup\n- [ ] 1.1 Create module\n  - [X] 1.1.1 Nested done\n"
            "    * [ ] 1.1.2 Deeper\n1. [x] numbered\n2) [ ] numbered paren\n\n"
            "## 2. Docs\n```md\n- [ ] fenced example counts\n```\n- [ ] 2.1 Write docs\n"
        ),
    },
    "crlf-bom": {
        "proposal.md": "\ufeff" + PROPOSAL.format(title="CRLF").replace("\n", "\r\n"),
        "specs/crlf/spec.md": SPEC.format(name="Crlf").replace("\n", "\r\n"),
        "tasks.md": "\ufeff## 1. A\r\n- [ ] 1.1 first  \r\n- [x] 1.2 second\r\n",
    },
    "unicode-text": {
        "proposal.md": PROPOSAL.format(title="Ünïcödé ✓"),
        "specs/uni/spec.md": SPEC.format(name="Ünï"),
        "tasks.md": "- [ ] héllo wörld ✓\n- [X] 日本語のタスク\n- [ ]\u00a0non-breaking\n",
    },
    "odd-markers": {
        "proposal.md": PROPOSAL.format(title="Odd"),
        "specs/odd/spec.md": SPEC.format(name="Odd"),
        "tasks.md": (
            "- [~] tilde\n+ [] empty\n* [ x ] padded\n- [ ](link) spaced link\n"
            "- [x](link) a link\n- [WIP] not a task\n- [ ]\n"
        ),
    },
    "all-done": {
        "proposal.md": "# Proposal\n\n## Why\nW\n\n## What Changes\nC\n",
        "specs/done/spec.md": SPEC.format(name="Done"),
        "tasks.md": "## 1. Only\n- [x] 1.1 a\n- [X] 1.2 b\n",
    },
    "no-tasks": {
        "proposal.md": PROPOSAL.format(title="No tasks"),
        "specs/none/spec.md": SPEC.format(name="None"),
    },
    "no-proposal": {"tasks.md": "- [ ] only tasks\n"},
}


def write_changes(project: Path, changes: dict[str, dict[str, str]] = CHANGES) -> None:
    """Writes each change's files, byte for byte, under project/openspec/changes/."""
    for change, files in changes.items():
        for name, text in files.items():
            path = project / "openspec" / "changes" / change / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode())
