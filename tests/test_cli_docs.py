"""Every `git taskstore` command is documented (its -h, README.md), and the README's
commands work as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from testing import git, init_repo

from git_taskstore.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def load(name: str) -> click.Command:
    with click.Context(cli) as ctx:
        command = cli.get_command(ctx, name)
    assert command is not None, f"COMMANDS names {name!r} but it does not load"
    return command


def test_the_group_lists_exactly_the_registered_commands() -> None:
    with click.Context(cli) as ctx:
        assert cli.list_commands(ctx) == sorted(COMMANDS)
        assert cli.get_command(ctx, "no-such-command") is None


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_has_help_text(name: str) -> None:
    command = load(name)
    assert command.name == name, f"{COMMANDS[name]} is registered as {name!r}"
    assert (command.help or "").strip(), f"`git taskstore {name}` has no help text"
    assert command.get_short_help_str().strip()
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert (param.help or "").strip(), f"`git taskstore {name}` {param.opts} has no help"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_is_in_the_readme(name: str) -> None:
    assert f"git taskstore {name}" in README.read_text(encoding="utf-8"), (
        f"README.md does not mention `git taskstore {name}`"
    )


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help_runs(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"], prog_name="git taskstore")
    assert result.exit_code == 0, result.output
    assert result.exception is None, result.exception
    assert result.output.startswith(f"Usage: git taskstore {name}"), result.output
    assert len(result.output.strip().splitlines()) > 2, result.output


def test_group_help_runs() -> None:
    result = CliRunner().invoke(cli, ["--help"], prog_name="git taskstore")
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert f"  {name} " in result.output, f"{name} missing from `git taskstore --help`"


def test_every_command_but_help_takes_store() -> None:
    for name in sorted(set(COMMANDS) - {"help"}):
        command = load(name)
        # A group's own options are its subcommands'.
        leaves = {
            f"{name} {sub}": cmd for sub, cmd in getattr(command, "commands", {}).items()
        } or {name: command}
        for shown, leaf in leaves.items():
            opts = {opt for param in leaf.params for opt in getattr(param, "opts", [])}
            assert "--store" in opts, f"`git taskstore {shown}` takes no --store"


def test_no_text_sends_anyone_to_git_taskstore_dash_dash_help() -> None:
    """git turns `git taskstore --help` into `man git-taskstore`, and no man page ships."""
    texts = {"README.md": README.read_text(encoding="utf-8")}
    texts["git taskstore -h"] = CliRunner().invoke(cli, ["-h"], prog_name="git taskstore").output
    for name in COMMANDS:
        texts[name] = load(name).help or ""
    for where, text in texts.items():
        assert "git taskstore --help" not in text, where


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_first_command_installs_from_the_clone_then_runs_the_main_job(
    tmp_path: Path, venv_first_on_path: None
) -> None:
    """The install part (a venv, `pip install .` from the clone) is the clone's own
    business; what follows it runs here, with this venv's git-taskstore on PATH."""
    first, second = sh_blocks()[:2]
    install, demo = first.strip().split(" && (", 1)
    assert install == "python3 -m venv .venv && . .venv/bin/activate && pip install ."
    assert second.strip() == "pip install -e '.[test]' && pytest"
    proc = subprocess.run(
        ["bash", "-c", "(" + demo],
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split()[0] for line in proc.stdout.splitlines()[-3:]]
    assert rows == ["ID", "t-1", "t-2"], proc.stdout
    assert not list(tmp_path.glob(".taskstore")), "the demo ran outside its own folder"


def test_the_pre_commit_snippet_names_a_rev_that_autoupdate_pins(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    snippet = re.search(r"```yaml\n(repos:.*?)```", text, re.S)
    assert snippet is not None
    rev = re.search(r"^\s+rev: (\S+)$", snippet.group(1), re.M)
    assert rev is not None
    # The rev exists in this repository (a branch of the clone or of its origin).
    assert git(ROOT, "ls-remote", str(ROOT), rev.group(1)).strip(), rev.group(1)
    assert f"rev: {rev.group(1)}" in (ROOT / ".pre-commit-hooks.yaml").read_text()

    user = init_repo(tmp_path / "user")
    config = snippet.group(1).replace("<url of git-taskstore>", str(ROOT))
    (user / ".pre-commit-config.yaml").write_text(config)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    proc = subprocess.run(
        [sys.executable, "-m", "pre_commit", "autoupdate", "--repo", str(ROOT)],
        cwd=user,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tag = subprocess.run(
        ["git", "describe", "--tags", "--abbrev=0", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    expected = tag.stdout.strip() if tag.returncode == 0 else git(ROOT, "rev-parse", "HEAD")
    pinned = re.search(r"^\s+rev: (\S+)$", (user / ".pre-commit-config.yaml").read_text(), re.M)
    assert pinned is not None and pinned.group(1) == expected.strip()
