"""Every `git taskstore` command is documented: in its --help and in README.md."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from git_taskstore.cli import COMMANDS, cli

README = Path(__file__).resolve().parents[1] / "README.md"


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
