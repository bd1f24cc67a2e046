"""``protokit runs``, ``protokit runs show ID`` and ``protokit runs resume ID``: list stored comparison runs,
show one, finish one whose batches were pending when its process ended."""

from __future__ import annotations

import json
from pathlib import Path

import click

from protokit.cache import default_path

__all__ = ["command"]

_PATH_HELP = "Cache file holding the runs [default: $PROTOKIT_CACHE or protokit.db]."


def _cost(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


@click.group("runs", invoke_without_command=True)
@click.option("--path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_PATH_HELP)
@click.option("--limit", type=int, default=20, show_default=True, help="Show at most this many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_context
def command(ctx: click.Context, path: Path | None, limit: int, as_json: bool) -> None:
    """List stored comparison runs (newest first); 'protokit runs show ID' shows one."""
    if ctx.invoked_subcommand is not None:
        return
    from protokit.comparisons import list_runs

    runs = list_runs(path or default_path(), limit=limit)
    if as_json:
        click.echo(json.dumps(runs, indent=2))
        return
    if not runs:
        click.echo("no stored runs yet: pk.compare(...) stores each run")
        return
    header = ("id", "date", "status", "models", "cases", "rows", "cost")
    table = [(r["id"], r["created_at"].replace("T", " ").rstrip("Z"), r["status"], ", ".join(r["models"]),
              str(r["cases"]), f"{r['n']}/{r['total']}", _cost(r["cost_usd"])) for r in runs]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]
    for row in (header, *table):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@command.command("show")
@click.argument("run_id")
@click.option("--path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_PATH_HELP)
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the results to this CSV file.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write an HTML report to this file.")
def show(run_id: str, path: Path | None, csv_out: Path | None, html_out: Path | None) -> None:
    """Show a run's verdict and summary (RUN_ID may be a unique prefix)."""
    import pandas as pd

    from protokit.comparisons import load_run

    cmp = load_run(run_id, path=path or default_path())
    click.echo(f"run {cmp.run_id} ({cmp.status}): {len(cmp.results)} rows")
    click.echo(f"models: {', '.join(cmp.models)}")
    if cmp.prompts:
        click.echo(f"prompt variants: {', '.join(cmp.prompts)}")
    click.echo(f"prompt: {cmp.prompt if len(str(cmp.prompt)) < 200 else str(cmp.prompt)[:200] + '…'}")
    click.echo("")
    click.echo(cmp.report())
    click.echo("")
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        click.echo(cmp.summary.set_index(cmp.key).T.to_string(float_format=lambda v: f"{v:.4g}"))
    if csv_out is not None:
        cmp.to_csv(csv_out)
        click.echo(f"wrote {csv_out}")
    if html_out is not None:
        cmp.to_html(html_out)
        click.echo(f"wrote {html_out}")


@command.command("resume")
@click.argument("run_id")
@click.option("--path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_PATH_HELP)
@click.option("--cancel", is_flag=True,
              help="Cancel the run's pending batches at the provider; what they finished is still stored.")
def resume(run_id: str, path: Path | None, cancel: bool) -> None:
    """Finish a run whose batches were pending when its process ended (compare(batch=True)).

    Waits for the batches the run sent (nothing is sent again), reads their answers into the
    cache and stores the rows they answer, scored by the run's built-in scorers (a line says
    which of your own were not applied); Ctrl-C stops waiting and leaves them pending.
    """
    from protokit.comparisons import resume_run

    cmp = resume_run(run_id, path=path or default_path(), cancel=cancel, say=click.echo)
    results = cmp.results
    errors = int(results["error"].notna().sum()) if "error" in results else 0
    total = len(cmp.cases) * len(cmp.candidates) * cmp.samples
    click.echo(f"run {cmp.run_id} ({cmp.status}): {len(results)}/{total} rows, {errors} errors; "
               f"'protokit runs show {cmp.run_id}' shows it")
