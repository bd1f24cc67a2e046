"""The ``protokit`` command line: a lazy click group, one file per noun.

Commands are imported only when used, so ``protokit --help`` stays fast. Every
:class:`~protokit.errors.ProtokitError` is turned into one ``error:`` line and
exit code 1 here, in one place.
"""

from __future__ import annotations

import importlib
import io
import sys
from typing import Any

import click

from protokit.errors import ProtokitError, safe_text

# name -> "module:attribute"; each module is one noun under protokit/cli/.
COMMANDS: dict[str, tuple[str, str]] = {
    "sandbox": ("protokit.cli.sandbox", "Local OpenAI- and Anthropic-compatible server for offline work."),
    "cache": ("protokit.cli.cache", "Inspect and manage the record/replay cache."),
    "runs": ("protokit.cli.runs", "List stored comparison runs and show one."),
    "lab": ("protokit.cli.lab", "Start JupyterLab on the notebooks."),
    "new": ("protokit.cli.new", "Write a new prototype notebook from a template."),
    "demo": ("protokit.cli.demo", "The whole path offline: compare, validate, promote, test."),
    "run": ("protokit.cli.run", "Execute a notebook with papermill, typed parameters and the cache."),
    "validate": ("protokit.cli.validate", "The promotion gate: check a notebook, each finding with its fix."),
    "promote": ("protokit.cli.promote", "Turn a validated notebook into a module with golden tests."),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[cmd_name][0])
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table so --help does not import every command module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="protokit")
def cli() -> None:
    """protokit: compare models in Jupyter, record and replay every call, promote notebooks."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the console script; prints ProtokitError as one line."""
    try:
        return cli.main(args=argv, prog_name="protokit", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        shown = io.StringIO()
        exc.show(file=shown)
        # A usage error may quote a value given on the command line.
        click.echo(safe_text(shown.getvalue()), err=True, nl=False)
        sys.exit(exc.exit_code)
    except ProtokitError as exc:
        # Its message was redacted when it was built (ProtokitError); again here, the one display
        # place, for errors whose text is produced otherwise (a subclass's __str__).
        click.echo(f"error: {safe_text(str(exc))}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
