"""``protokit run``: execute a notebook with papermill, typed parameters and the cache."""

from __future__ import annotations

from pathlib import Path

import click

from protokit.cache import MODES


@click.command("run")
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-p", "--parameter", "pairs", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A parameter, typed by the parameters cell (a list or dict takes YAML/JSON). Repeatable.")
@click.option("-f", "--parameters-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A YAML or JSON file of parameters (-p values win).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Executed notebook [default: .protokit/runs/NAME-<params>.ipynb beside the notebook].")
@click.option("--cache-mode", type=click.Choice(MODES), default=None,
              help="Cache mode for the kernel [default: $PROTOKIT_CACHE_MODE or auto]; replay needs no network.")
def command(notebook: Path, pairs: tuple[tuple[str, str], ...], parameters_file: Path | None,
            output: Path | None, cache_mode: str | None) -> None:
    """Execute NOTEBOOK with papermill; model calls go through the cache and the run is recorded."""
    from protokit.notebook.execute import notebook_parameters, refuse_secret_parameters, run_notebook
    from protokit.notebook.nbfile import read_notebook
    from protokit.notebook.params import cli_parameters

    refuse_secret_parameters(dict(pairs))  # before typing: a type error's message would quote the value
    _, declared = notebook_parameters(read_notebook(notebook))
    values = cli_parameters(declared, pairs, parameters_file)
    out = run_notebook(notebook, values, output_path=output, cache_mode=cache_mode)
    meta = read_notebook(out).metadata.get("protokit", {})
    shown = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "defaults"
    click.echo(f"ran {notebook} ({shown}): {len(meta.get('cache_keys', []))} cached model call(s) used")
    click.echo(f"wrote {out}")
