"""``protokit run``: execute a notebook with papermill, typed parameters and the cache."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from protokit.cache import MODES

if TYPE_CHECKING:
    from protokit.notebook.params import Parameter


@click.command("run")
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-p", "--parameters", "--parameter", "pairs", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A parameter, typed by the parameters cell (a list or dict takes YAML/JSON; an untyped "
                   "one is read as papermill reads it). Repeatable.")
@click.option("-r", "--parameters-raw", "--parameters_raw", "raw", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A parameter passed as a string, as is. Repeatable.")
@click.option("-f", "--parameters-file", "--parameters_file", "parameters_file", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="A YAML or JSON file of parameters. Repeatable.")
@click.option("-y", "--parameters-yaml", "--parameters_yaml", "yaml_texts", multiple=True, metavar="YAML",
              help="Parameters as a YAML mapping, e.g. -y 'n_cases: 40'. Repeatable. As in papermill, "
                   "later wins: -f, then -y, then -p, then -r.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Executed notebook [default: .protokit/runs/NAME-<params>.ipynb beside the notebook]; with "
                   "--grid, the folder for the runs [default: NAME-grid beside the notebook].")
@click.option("--grid", "grid_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Run once per parameter set of this YAML/JSON file: a mapping of parameter to a list of "
                   "values (every combination) or a list of parameter mappings. -p values apply to every run.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --grid: how many kernels run at once.")
@click.option("--cache-mode", type=click.Choice(MODES), default=None,
              help="Cache mode for the kernel [default: $PROTOKIT_CACHE_MODE or auto]; replay needs no network.")
@click.option("--help-notebook", is_flag=True, default=False,
              help="Show the notebook's parameters (type, default, help) and run nothing.")
@click.pass_context
def command(ctx: click.Context, notebook: Path, pairs: tuple[tuple[str, str], ...],
            raw: tuple[tuple[str, str], ...], parameters_file: tuple[Path, ...], yaml_texts: tuple[str, ...],
            output: Path | None, grid_file: Path | None, jobs: int, cache_mode: str | None,
            help_notebook: bool) -> None:
    """Execute NOTEBOOK with papermill; model calls go through the cache and the run is recorded.

    A cell that calls sys.exit(0) (or sys.exit()) ends the run there, successfully, as under papermill;
    validate and promote refuse it.
    """
    from protokit.errors import ParameterTypeError
    from protokit.notebook.execute import notebook_parameters, refuse_secret_parameters, run_notebook
    from protokit.notebook.nbfile import read_notebook
    from protokit.notebook.params import cli_parameters

    index, declared = notebook_parameters(read_notebook(notebook))
    if help_notebook:
        click.echo(_describe_parameters(notebook, index, declared))
        return
    try:
        # Secrets are refused before typing: a type error's message would quote the value.
        values = cli_parameters(declared, pairs, parameters_file, raw=raw, yaml_texts=yaml_texts,
                                before_typing=refuse_secret_parameters)
    except ParameterTypeError as exc:  # a value given on the command line that does not fit: a usage error
        raise click.UsageError(str(exc), ctx) from None
    if grid_file is not None:
        _run_grid(notebook, grid_file, values, jobs, output, cache_mode)
        return
    if output is not None and output.is_dir():
        raise click.UsageError(f"-o {output} is a folder; give the executed notebook's file name", ctx)
    out = run_notebook(notebook, values, output_path=output, cache_mode=cache_mode)
    meta = read_notebook(out).metadata.get("protokit", {})
    shown = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "defaults"
    click.echo(f"ran {notebook} ({shown}): {len(meta.get('cache_keys', []))} cached model call(s) used")
    if meta.get("exited_at") is not None:
        click.echo(f"note: cell {meta['exited_at']} exited cleanly (sys.exit(0)); as under papermill, the cells "
                   "after it did not run")
    click.echo(f"wrote {out}")


def _describe_parameters(notebook: Path, index: int | None, declared: list[Parameter]) -> str:
    """The parameters as ``papermill --help-notebook`` lists them: name, type, default, help."""
    if index is None:
        return f"{notebook} has no cell tagged `parameters`"
    if not declared:
        return f"{notebook}: the parameters cell (cell {index}) assigns no parameters"
    lines = [f"parameters of {notebook} (cell {index}):"]
    for p in declared:
        definition = f"  {p.name}: {p.type} (default {p.default!r})"
        lines.append(f"{definition:<34}{p.help}".rstrip() if len(definition) <= 30 or not p.help
                     else f"{definition}\n{34 * ' '}{p.help}")
    return "\n".join(lines)


def _run_grid(notebook: Path, grid_file: Path, fixed: dict[str, object], jobs: int, out_dir: Path | None,
              cache_mode: str | None) -> None:
    """Every parameter set of the grid, ``jobs`` kernels at once; the table; exit 1 when any run failed."""
    from protokit.notebook.grid import format_grid, read_grid, run_grid

    grid = read_grid(grid_file)
    click.echo(f"running {notebook} over {len(grid)} parameter set{'s' * (len(grid) != 1)}, {jobs} at a time")
    runs = run_grid(notebook, grid, fixed=fixed, jobs=jobs, out_dir=out_dir, cache_mode=cache_mode)
    click.echo(format_grid(runs))
    failed = sum(r.status != "ok" for r in runs)
    folder = runs[0].output.parent if runs and runs[0].output is not None else out_dir
    click.echo(f"{len(runs) - failed} ok, {failed} failed; notebooks in {folder}")
    if failed:
        raise SystemExit(1)
