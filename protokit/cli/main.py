"""The ``protokit`` command line: a lazy click group, one file per noun.

Commands are imported only when used, so ``protokit --help`` stays fast. Every
failure becomes one ``error:`` line on stderr and a non-zero exit here, in one
place: a :class:`~protokit.errors.ProtokitError` (exit 1), a usage error (exit 2),
an OS or SQLite error (exit 1), Ctrl-C (exit 130), and anything unexpected (exit 1,
with a request to report it). ``PROTOKIT_DEBUG=1`` also prints the traceback.
"""

from __future__ import annotations

import errno
import importlib
import os
import re
import sqlite3
import sys
import traceback
from typing import Any, NoReturn

import click

from protokit._extras import NOTEBOOK, missing_extra, require_lab
from protokit.errors import ProtokitError, safe_text

# name -> "module:attribute"; each module is one noun under protokit/cli/.
COMMANDS: dict[str, tuple[str, str]] = {
    "sandbox": ("protokit.cli.sandbox", "Local OpenAI- and Anthropic-compatible server for offline work."),
    "cache": ("protokit.cli.cache", "Inspect and manage the record/replay cache."),
    "runs": ("protokit.cli.runs", "List stored comparison runs, show one, resume one left waiting on a batch."),
    "lab": ("protokit.cli.lab", "Start JupyterLab on the notebooks."),
    "new": ("protokit.cli.new", "Write a new prototype notebook from a template."),
    "demo": ("protokit.cli.demo", "The whole path offline: compare, validate, promote, test."),
    "run": ("protokit.cli.run", "Execute a notebook with papermill, typed parameters and the cache."),
    "validate": ("protokit.cli.validate", "The promotion gate: check a notebook, each finding with its fix."),
    "promote": ("protokit.cli.promote", "Turn a validated notebook into a module with golden tests."),
    "drift": ("protokit.cli.drift", "Re-run a promoted module's golden cases live; report what changed."),
}

# name -> the modules of the notebook side (`protokit[lab]`) it needs; the others need only the runtime.
NEEDS_LAB: dict[str, tuple[str, ...]] = {
    "lab": ("jupyterlab",),
    "new": ("nbformat",),
    "demo": (*NOTEBOOK, "ipywidgets", "jinja2", "matplotlib", "pytest"),
    "run": NOTEBOOK,
    "validate": NOTEBOOK,
    "promote": (*NOTEBOOK, "jinja2"),
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

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                           list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        # Before the command does anything: one line naming the extra when the notebook side is missing
        # (its --help still shows).
        needs = NEEDS_LAB.get(name or "")
        if needs and not ctx.resilient_parsing and not set(rest) & set(ctx.help_option_names):
            require_lab(f"protokit {name}", *needs)
        return name, command, rest

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table so --help does not import every command module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="protokit")
def cli() -> None:
    """protokit: compare models in Jupyter, record and replay every call, promote notebooks."""


def _one_line(text: object) -> str:
    return re.sub(r"\s*\n\s*", " ", str(text).strip()) or "failed"


def _debug() -> bool:
    return os.environ.get("PROTOKIT_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def _fail(message: object, code: int = 1) -> NoReturn:
    if _debug() and sys.exc_info()[0] is not None:
        traceback.print_exc()
    # ProtokitError texts were redacted when built; again here, the one display place, for texts
    # produced otherwise (a usage error quoting a command-line value, an OS or unexpected error).
    click.echo(f"error: {safe_text(_one_line(message))}", err=True)
    sys.exit(code)


# errno -> what to do about it, for OS errors no command turned into a ProtokitError.
_OS_FIXES = {
    errno.ENOENT: "check that the path exists",
    errno.EACCES: "check its permissions or pick a path you can write to",
    errno.EPERM: "check its permissions or pick a path you can write to",
    errno.EROFS: "it is on a read-only file system; pick another path",
    errno.ENOSPC: "the disk is full; free some space",
    errno.EISDIR: "it is a folder; give a file path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
    errno.EEXIST: "it already exists; pick another path or remove it",
}


def _os_message(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    where = f"{exc.filename}: " if exc.filename is not None else ""
    fix = _OS_FIXES.get(exc.errno or 0, "check the path and its permissions")
    return f"{where}{what[:1].lower()}{what[1:]}; {fix}"


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the console script: every failure is one ``error:`` line and a non-zero exit."""
    try:
        return cli.main(args=argv, prog_name="protokit", standalone_mode=False)
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C and end-of-input at a prompt into Abort.
        interrupted = isinstance(exc.__context__, KeyboardInterrupt)
        _fail("interrupted" if interrupted else "aborted", 130)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "protokit"
        _fail(f"{exc.format_message().rstrip('.')}; see '{command} --help'", exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except ProtokitError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        # The reader went away (`protokit runs | head -1`): nothing left to tell it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except OSError as exc:
        _fail(_os_message(exc))
    except sqlite3.Error as exc:
        _fail(f"SQLite failed: {exc}; if the cache file is damaged, move it away or point PROTOKIT_CACHE "
              "at another path")
    except Exception as exc:
        if isinstance(exc, ImportError):
            # A command that reached the notebook side without asking first: one line naming the extra.
            noun = next((a for a in (sys.argv[1:] if argv is None else argv) if a in COMMANDS), None)
            lab = missing_extra(f"protokit {noun}" if noun else "this command", exc)
            if lab is not None:
                _fail(lab)
        _fail(f"unexpected {type(exc).__name__}: {exc}; this is a protokit bug, please report it with the "
              "command you ran (PROTOKIT_DEBUG=1 shows the traceback)")
