"""``protokit drift``: a promoted module's golden cases, re-run live, against what was recorded."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("drift")
@click.argument("module", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "models", multiple=True, metavar="[OLD=]NEW",
              help="Try a replacement model: NEW for every model the module calls, or OLD=NEW for one "
                   "(provider:name). Repeatable.")
@click.option("--cases", type=click.IntRange(min=1), default=None,
              help="Re-run a random sample of this many golden cases [default: all].")
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="The share of cases whose outputs may change before drift exits 1.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --cases and the intervals.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the report as JSON (for CI).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as an HTML page to this file.")
def command(module: Path, models: tuple[str, ...], cases: int | None, threshold: float, seed: int,
            as_json: bool, html_path: Path | None) -> None:
    """Re-run MODULE's golden cases against the live models and report what changed.

    Exits 0 when no pk.expect gate fails and no more cases changed than --threshold allows,
    1 otherwise. Calls go to the providers (keys from the environment); the cache is off.
    """
    from protokit._files import atomic_write_text
    from protokit.drift import drift, parse_replacements

    report = drift(module, replacements=parse_replacements(models), cases=cases, threshold=threshold, seed=seed)
    if html_path is not None:
        atomic_write_text(html_path, report.html())
    click.echo(json.dumps(report.to_dict(), indent=2, default=str) if as_json else report.text())
    if not report.ok:
        raise SystemExit(1)
