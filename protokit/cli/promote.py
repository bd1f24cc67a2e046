"""``protokit promote``: a validated notebook becomes NAME.py, golden tests and a cassette."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("promote")
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Module name: writes OUT/NAME.py and OUT/tests/test_NAME.py.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Directory to write into.")
@click.option("--check", is_flag=True, default=False,
              help="Write nothing; exit 1 when the notebook changed since NAME.py was generated, or a "
                   "generated file is missing or was edited.")
@click.option("--force", is_flag=True, default=False,
              help="Overwrite files of the same names that promote did not write.")
def command(notebook: Path, name: str, out_dir: Path, check: bool, force: bool) -> None:
    """Validate NOTEBOOK, then write a tested module from it."""
    from protokit.notebook.nbfile import read_notebook
    from protokit.promote import GateError, promote

    read_notebook(notebook)  # a missing or unreadable file is one line, not a gate report
    try:
        result = promote(notebook, name, out_dir, check=check, force=force)
    except GateError as exc:
        click.echo(exc.report.format(), err=True)
        raise
    if check:
        click.echo(f"{result.module_path} is up to date with {notebook}")
        return
    for note in result.notes:
        click.echo(f"note: {note}")
    for path in result.files:
        click.echo(f"wrote {path}")
    if not result.files:
        click.echo(f"unchanged: {result.module_path} and its tests already match {notebook}")
    n = len(result.cases)
    click.echo(f"{n} golden test case{'s' * (n != 1)}; run them with: pytest {result.test_path}")
