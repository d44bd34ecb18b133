"""The help command: ``git taskstore help [COMMAND]``.

git answers ``git taskstore --help`` itself, by looking for a man page of git-taskstore;
``help`` is the spelling git leaves alone, as ``-h`` is.
"""

from __future__ import annotations

import click


@click.command("help")
@click.argument("command", required=False)
@click.pass_context
def help_(ctx: click.Context, command: str | None) -> int:
    """Show the help of COMMAND, or the list of commands; the same as `COMMAND -h`.

    \b
    git taskstore help
    git taskstore help list
    """
    root = ctx.find_root()
    if command is None:
        click.echo(root.get_help())
        return 0
    group = root.command
    found = group.get_command(root, command) if isinstance(group, click.Group) else None
    if found is None:
        raise click.UsageError(f"no command {command!r}: `git taskstore help` lists them")
    with click.Context(found, info_name=command, parent=root) as sub:
        click.echo(found.get_help(sub))
    return 0
