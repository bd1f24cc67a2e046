"""The one in-process runner of protokit's command line for tests (imported as ``from _cli import cli``)."""

from __future__ import annotations

import contextlib
import io

from protokit.cli.main import main


def cli(*args: str) -> tuple[int, str]:
    """protokit's main() in-process: (exit code, stdout + stderr)."""
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue()
