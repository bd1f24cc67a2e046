"""``protokit validate``: the promotion gate, every finding with its cell and fix."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("validate")
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-execute", is_flag=True, default=False,
              help="Static checks only; skip the fresh top-to-bottom run.")
def command(notebook: Path, no_execute: bool) -> None:
    """Check NOTEBOOK for promotion; exits 1 when any error is found."""
    from protokit.notebook.gate import validate

    report = validate(notebook, execute_cells=not no_execute)
    click.echo(report.format())
    if not report.ok:
        raise SystemExit(1)
