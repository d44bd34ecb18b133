"""The ``git taskstore`` command line: thin click commands over the core.

Every command parses its arguments, calls the core, prints, and returns an exit code:
0 success, 1 an expected failure (not found, invalid input, check failed), 2 usage errors.
Answers go to stdout, warnings and errors to stderr. Subcommands are imported on demand so
that a hook or ``--version`` does not load every module.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import logging

from .. import __version__, log

# name -> "module:function", imported when the command runs (or for --help).
COMMANDS: dict[str, str] = {
    "init": "admin:init",
    "put": "records:put",
    "get": "records:get",
    "delete": "records:delete",
    "list": "records:list_",
    "collections": "admin:collections",
    "stats": "admin:stats",
    "status": "admin:status",
    "sync": "admin:sync",
    "flush": "admin:flush",
    "compact": "admin:compact",
    "check": "admin:check",
    "backup": "transfer:backup",
    "export-json": "transfer:export_json",
    "import": "transfer:import_",
    "install-hooks": "gitcmds:install_hooks",
    "uninstall-hooks": "gitcmds:uninstall_hooks",
    "resolve": "gitcmds:resolve",
    "merge": "gitcmds:merge",
    "hook-run": "gitcmds:hook_run",
    "help": "helpcmd:help_",
    "create-prd": "tasks:create_prd",
    "create-task-spec": "tasks:create_task_spec",
    "create-execution": "tasks:create_execution",
    "create-workflow": "tasks:create_workflow",
    "create-dependency": "tasks:create_dependency",
    "set-status": "tasks:set_status",
    "list-prds": "tasks:list_prds",
    "list-task-specs": "tasks:list_task_specs",
    "list-executions": "tasks:list_executions",
    "show": "tasks:show",
    "describe": "tasks:describe",
    "log": "history:log",
    "openspec": "openspec:group",
    "watch": "openspec:watch",
    "diff": "history:diff",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(f"{__name__}.{module_name}")
        command: click.Command = getattr(module, attr)
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", "-V", prog_name="git-taskstore")
@click.option(
    "--store",
    metavar="DIR",
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, param, value: _use_store(value),
    help="The store folder for the command (also accepted after the command name).",
)
def cli() -> None:
    """A git-native store for structured records.

    Records live in .taskstore/<collection>.jsonl at the top of the git work tree (the
    truth, committed to git); .taskstore/taskstore.db is a query cache rebuilt at will.
    Every command takes --store DIR (after the command name) to work on another store,
    as does TASKSTORE_DIR.

    `git taskstore help COMMAND` (or `git taskstore COMMAND -h`) shows the help of a
    command. Right after `git taskstore`, --help is git's own option (it asks for a man
    page): use -h.

    Exit codes: 0 success, 1 an expected failure, 2 a usage error.
    """


def _use_store(value: str | None) -> None:
    # `git taskstore --store DIR list x` as well as `git taskstore list x --store DIR`:
    # every command reads TASKSTORE_DIR when it is given no --store of its own.
    if value:
        os.environ["TASKSTORE_DIR"] = value


def _install_log_handler(logger: logging.Logger) -> None:  # on the first message
    from .logs import install

    install(logger)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``git-taskstore``; returns the exit code."""
    log.configure(_install_log_handler)
    try:
        result: Any = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="git taskstore",
            standalone_mode=False,
        )
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            # `git taskstore` alone (click >= 8.2): the help on stderr and exit 2, as
            # click does, not one "error:" line holding the whole help.
            click.echo(exc.format_message(), err=True)
            return 2
        # One line, like every other error, with the way to more help: -h, because git
        # turns `git taskstore --help` into `man git-taskstore`.
        hint = ""
        if exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} -h')"
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return 1
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): not an error of ours.
        sys.stderr.close()
        return 0
    except Exception as exc:
        from ..errors import TaskstoreError

        if isinstance(exc, TaskstoreError):
            click.echo(f"error: {exc}", err=True)
            return 1
        if isinstance(exc, OSError) and exc.strerror:
            # The file system said no where the core expects nothing to fail (a store
            # folder that is not one, --store /proc): one line naming the file.
            from ..paths import display_path

            where = f"{display_path(os.fsdecode(exc.filename))}: " if exc.filename else ""
            click.echo(
                f"error: {where}{exc.strerror}; check the path and its permissions", err=True
            )
            return 1
        raise
    return result if isinstance(result, int) else 0
