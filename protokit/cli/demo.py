"""``protokit demo``: compare, validate, promote and test the quickstart notebook, offline."""

from __future__ import annotations

from pathlib import Path

import click

from protokit.models.env import KEY_VARS


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("protokit-demo"),
              show_default=True, help="Folder for the executed notebook, cache, module and tests.")
@click.option("--live", is_flag=True,
              help=f"Use real models (needs {' or '.join(KEY_VARS)}) instead of the simulated ones.")
@click.option("--name", default="triage", show_default=True, help="Name of the promoted module.")
def command(out_dir: Path, live: bool, name: str) -> None:
    """Run the whole protokit path on notebooks/quickstart.ipynb.

    Offline by default: a local sandbox serves three SIMULATED models of different
    quality, latency and price. The notebook is executed with papermill (every model
    call recorded in the cache), validated by a replaying re-execution, promoted to
    OUT/NAME.py with golden tests, and those tests are run with no network and no keys.
    """
    from protokit.demo import format_summary, run_demo

    result = run_demo(out_dir, live=live, name=name, say=lambda line: click.echo(line))
    click.echo(format_summary(result))
